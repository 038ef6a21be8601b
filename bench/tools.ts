/**
 * The small helpers every bench script shares: whether a command succeeds,
 * whether a tool is installed (the bench installs nothing: a missing peer
 * is named and what needs it is left out), free ports, and the median and table of the printed results.
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

/** Whether `tool` is installed; when it is not, says so, with the Debian
 * package that has it, and that what needs it is left out. Installs
 * nothing. */
export async function available(tool: string, debianPackage: string): Promise<boolean> {
  if (await has(tool)) return true;
  console.log(
    `bench: ${tool} is missing (Debian package ${debianPackage}); what needs it is left out`,
  );
  return false;
}

/** Runs `command` to completion in `cwd` and returns its standard output
 * (its standard error goes to the bench's). */
export async function stdoutOf(command: string[], cwd: string): Promise<string> {
  const output = await new Deno.Command(command[0]!, {
    args: command.slice(1),
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return new TextDecoder().decode(output.stdout);
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

/** The median of the figures that are numbers (NaN when there are none). */
export function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : NaN;
}

/** Prints a Markdown table under its title, each column as wide as its widest cell. */
export function table(title: string, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length))
  );
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(`\n${title}\n`);
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const row of rows) console.log(line(row));
}
