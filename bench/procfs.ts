/**
 * Process figures for the benchmarks, read from Linux's /proc. Deno allows
 * reading /proc only with --allow-all, so `cat` reads it (--allow-run).
 *
 * @module
 */

async function readProc(path: string): Promise<string> {
  const output = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
    .output();
  if (!output.success) throw new Error(`cannot read ${path}`);
  return new TextDecoder().decode(output.stdout);
}

/** Resident and peak resident memory of a process, in MB (0 when unknown). */
export async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  try {
    const status = await readProc(`/proc/${pid}/status`);
    const kb = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
    return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
  } catch {
    return { rss: 0, peak: 0 };
  }
}

/** CPU seconds (user + system) a process has used so far. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  try {
    const fields = (await readProc(`/proc/${pid}/stat`)).split(") ")[1]!.split(" ");
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}
