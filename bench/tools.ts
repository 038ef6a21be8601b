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

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** A free UDP port on 127.0.0.1. */
export function freePort(): number {
  const probe = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const { port } = probe.addr as Deno.NetAddr;
  probe.close();
  return port;
}

/** Waits until something on `port` echoes a datagram (5 s at most),
 * each try from a fresh port: a udping server takes the same bytes coming
 * back from one port at once for an echo loop. */
export async function waitForEcho(port: number): Promise<void> {
  const target: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port };
  for (let attempt = 0; attempt < 50; attempt++) {
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    const reply = socket.receive().then(() => true, () => false);
    await socket.send(new TextEncoder().encode("PING 1 0 0000BEEF"), target).catch(() => {});
    const answered = await Promise.race([reply, sleep(100).then(() => false)]);
    socket.close();
    if (answered) return;
  }
  throw new Error(`nothing answers on port ${port}`);
}
