/**
 * The small process helpers every bench script shares: whether a command
 * succeeds, whether a tool is installed, and installing its Debian package
 * when it is missing.
 *
 * @module
 */

/** Whether `command args…` runs and exits 0 (its output discarded). */
export async function succeeds(command: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

/** Whether `tool` is on the PATH. */
export const has = (tool: string): Promise<boolean> => succeeds("sh", ["-c", `command -v ${tool}`]);

/** Installs a Debian package when its tool is missing, saying so; whether
 * the tool is there now. */
export async function ensure(tool: string, debianPackage: string): Promise<boolean> {
  if (await has(tool)) return true;
  console.log(`bench: ${tool} is missing; installing ${debianPackage} with apt-get`);
  await succeeds("apt-get", ["update", "-qq"]);
  await succeeds("apt-get", ["install", "-y", "-qq", debianPackage]);
  const installed = await has(tool);
  if (!installed) {
    console.log(`bench: could not install ${debianPackage}; what needs it is left out`);
  }
  return installed;
}
