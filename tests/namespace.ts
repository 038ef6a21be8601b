/**
 * What the hostile tests (`tests/*_hostile_test.ts`) share: a private
 * network namespace, the peer that forges source addresses, and the
 * server.ts processes they watch.
 *
 * Some attacks need datagrams with a forged source address (another
 * server's, the server's own, port 0). Those run in a private network
 * namespace that has only loopback: a test file runs itself as
 * `unshare -n deno run tests/<file> <scenario>` ({@linkcode inNamespace}),
 * which starts the servers there, forges datagrams with
 * `tests/peers/forge.py` (a raw socket) and prints what it measured as JSON
 * ({@linkcode runScenario}); the test asserts on it. Without `unshare` (or
 * python3) those tests are ignored, and the reason is printed. Nothing is
 * ever sent beyond loopback.
 *
 * A file with scenarios ends with
 *
 * ```ts ignore
 * if (import.meta.main) await runScenario({ loops: loopsScenario });
 * ```
 *
 * and its tests read `await inNamespace<LoopCase[]>(import.meta.url, "loops")`.
 *
 * @module
 */

import { assert } from "./assert.ts";
import { ROOT, waitUntil } from "./helpers.ts";

const decoder = new TextDecoder();
const FORGE = `${ROOT}tests/peers/forge.py`;

/** Whether this is Linux, where /proc and network namespaces exist. */
export const LINUX = Deno.build.os === "linux";

/** Port `port` of 127.0.0.1, as a datagram's address. */
export const here = (port: number): Deno.NetAddr => ({
  transport: "udp",
  hostname: "127.0.0.1",
  port,
});

/** Resolves after `ms`: paces senders; never stands in for an assertion. */
export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------ forging

/** The Python interpreter itself: a version manager's `python3` shim can
 * take a second to start, too slow to run once per forged datagram. */
function findPython(): string | undefined {
  const given = Deno.env.get("HOSTILE_PYTHON");
  if (given) return given;
  try {
    const output = new Deno.Command("python3", {
      args: ["-c", "import sys; print(sys.executable)"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    return output.success ? decoder.decode(output.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** The Python interpreter the peers run on, or `undefined` without one. */
export const PYTHON = findPython();

let unavailable: { reason: string | undefined } | undefined;

/**
 * Why forged datagrams cannot be sent here, or `undefined` when they can;
 * the first call that finds a reason prints it. A test file asks once,
 * outside the namespace: `import.meta.main ? undefined : forgingUnavailable()`.
 */
export function forgingUnavailable(): string | undefined {
  if (unavailable === undefined) {
    unavailable = { reason: probeForging() };
    if (unavailable.reason) {
      console.error(
        `tests/namespace.ts: ignoring the tests that forge source addresses: ${unavailable.reason}`,
      );
    }
  }
  return unavailable.reason;
}

function probeForging(): string | undefined {
  if (!LINUX) return "network namespaces are Linux only";
  if (PYTHON === undefined) return "python3 is not installed";
  try {
    const probe = new Deno.Command("unshare", {
      args: ["-n", PYTHON, FORGE, "up"],
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    if (probe.success) return undefined;
    return `'unshare -n python3 forge.py up' failed: ${decoder.decode(probe.stderr).trim()}`;
  } catch (error) {
    return `cannot run unshare: ${error}`;
  }
}

/** Runs `forge.py` (inside the namespace) and returns what it printed. */
export async function forge(args: string[]): Promise<string> {
  const output = await new Deno.Command(PYTHON ?? "python3", {
    args: [FORGE, ...args],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).output();
  if (!output.success) {
    throw new Error(`forge.py ${args[0]} failed: ${decoder.decode(output.stderr)}`);
  }
  return decoder.decode(output.stdout);
}

/** Bytes as hexadecimal digits, for a Python peer's command line. */
export const hexOf = (bytes: Uint8Array) =>
  Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");

/** Sends `payload` to `to` with the forged source `from`. */
export async function forgeDatagram(
  from: { hostname: string; port: number },
  to: { hostname: string; port: number },
  payload: Uint8Array,
): Promise<void> {
  const hex = hexOf(payload);
  await forge(["send", from.hostname, String(from.port), to.hostname, String(to.port), hex]);
}

// ------------------------------------------------------------ scenarios

/** Runs `scenario` of the test file `file` (its `import.meta.url`) in a
 * fresh network namespace and returns the JSON it printed. */
export async function inNamespace<T>(file: string, scenario: string): Promise<T> {
  const output = await new Deno.Command("unshare", {
    args: [
      "-n",
      Deno.execPath(),
      "run",
      "--allow-net",
      "--allow-run",
      "--allow-read",
      "--allow-env",
      "--allow-sys=networkInterfaces",
      new URL(file).pathname,
      scenario,
    ],
    cwd: ROOT,
    env: { HOSTILE_PYTHON: PYTHON ?? "python3" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(90_000),
  }).output();
  const stdout = decoder.decode(output.stdout);
  if (!output.success) {
    throw new Error(
      `scenario ${scenario} failed (${output.code}):\n${stdout}\n${decoder.decode(output.stderr)}`,
    );
  }
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as T;
}

/** The namespace side of a test file: runs the scenario its first argument
 * names, prints what it returned as JSON, and exits. */
export async function runScenario(
  scenarios: Record<string, () => Promise<unknown>>,
): Promise<never> {
  const scenario = scenarios[Deno.args[0] ?? ""];
  if (scenario === undefined) {
    const file = new URL(Deno.mainModule).pathname.slice(ROOT.length);
    console.error(`usage: unshare -n deno run ${file} ${Object.keys(scenarios).join("|")}`);
    Deno.exit(2);
  }
  await forge(["up"]);
  console.log(JSON.stringify(await scenario()));
  Deno.exit(0);
}

// ------------------------------------------------------------ waiting

/**
 * Waits until `probe()` has not changed for `quietMs`: the end of an
 * exchange of datagrams. On loopback a loop turns in well under a
 * millisecond, so a quarter second without change means it has stopped.
 * Gives up after `withinMs`: an endless loop is then seen in the count.
 */
export async function settled(
  probe: () => number,
  { quietMs = 250, withinMs = 3_000 } = {},
): Promise<void> {
  const deadline = performance.now() + withinMs;
  let value = probe();
  let since = performance.now();
  while (performance.now() < deadline) {
    await pause(10);
    const now = performance.now();
    const next = probe();
    if (next !== value) [value, since] = [next, now];
    else if (now - since >= quietMs) return;
  }
}

// ------------------------------------------------------------ server processes

/** A server.ts subprocess whose log lines are read as they come. */
export interface LiveServer extends AsyncDisposable {
  port: number;
  pid: number;
  /** The stdout lines so far. */
  lines: string[];
  /** Stops it (SIGINT) and returns its status and everything it printed. */
  stop(): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Starts `server.ts --port 0 ...args`, in a fresh network namespace when
 * `isolated`, and waits for its "listening on" line (or its exit). */
export async function spawnServer(
  args: string[],
  { permissions = ["--allow-net"], isolated = false } = {},
): Promise<LiveServer> {
  const deno = [Deno.execPath(), "run", ...permissions, "server.ts", "--port", "0", ...args];
  const [command, ...rest] = isolated ? ["unshare", "-n", ...deno] : deno;
  const child = new Deno.Command(command!, {
    args: rest,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const lines: string[] = [];
  const stderr = new Response(child.stderr).text();
  const reading = (async () => {
    let partial = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      lines.push(...parts);
    }
    if (partial) lines.push(partial);
  })();
  let exited = false;
  const status = child.status.then((status) => (exited = true, status));
  let port = 0;
  await waitUntil(() => {
    const match = lines.map((line) => /listening on .*:(\d+) /.exec(line)).find(Boolean);
    if (match) port = Number(match[1]);
    return port !== 0 || exited;
  }, `server.ts ${args.join(" ")} to listen`);
  let stopped: ReturnType<LiveServer["stop"]> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      if (!exited) child.kill("SIGINT");
      const [{ code }] = await Promise.all([status, reading]);
      return { code, stdout: lines.join("\n"), stderr: await stderr };
    })();
  if (port === 0) {
    const { code, stderr } = await stop();
    throw new Error(`server.ts ${args.join(" ")} ended (${code}) before listening: ${stderr}`);
  }
  return {
    port,
    pid: child.pid,
    lines,
    stop,
    [Symbol.asyncDispose]: async () => void await stop(),
  };
}

/** The counters of a stopped server's summary (0 for a line not printed). */
export function summaryCounters(stdout: string): Record<string, number> {
  const main =
    /(\d+) received, (\d+) replied, (\d+) dropped, (\d+) rate-limited, (\d+) ignored, (\d+) failed sends/
      .exec(stdout);
  assert(main, `no summary in:\n${stdout.slice(-2000)}`);
  const extra = /(\d+) refused sources, (\d+) loops/.exec(stdout);
  const again = /(\d+) duplicated, (\d+) reordered/.exec(stdout);
  const [received, replied, dropped, limited, ignored, failed] = main.slice(1).map(Number);
  return {
    received: received!,
    replied: replied!,
    dropped: dropped!,
    limited: limited!,
    ignored: ignored!,
    failed: failed!,
    refused: Number(extra?.[1] ?? 0),
    loops: Number(extra?.[2] ?? 0),
    overflow: Number(/(\d+) overflow/.exec(stdout)?.[1] ?? 0),
    duplicated: Number(again?.[1] ?? 0),
  };
}
