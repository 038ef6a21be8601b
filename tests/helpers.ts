/**
 * Test helpers: drive the modules over real loopback sockets and the CLIs
 * as subprocesses. No sleeps stand in for assertions: every wait is for a
 * real event with a bound.
 *
 * @module
 */

import { type PingEvent, type PingSummary } from "../client.ts";
import { type Datagram, openSocket, Receiver } from "../lib/shared/socket.ts";

/** The project folder, where deno.json (and its "unstable": ["net"]) lives. */
export const ROOT = new URL("..", import.meta.url).pathname;

/** Collects every value of an async iterable. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const values: T[] = [];
  for await (const value of iterable) values.push(value);
  return values;
}

/** The summary event's figures from a list of ping events. */
export function summaryOf(events: PingEvent[]): PingSummary {
  const last = events.at(-1);
  if (last?.type !== "summary") throw new Error("the run ended without a summary");
  return last.summary;
}

/** The events of one type. */
export function ofType<Type extends PingEvent["type"]>(
  events: PingEvent[],
  type: Type,
): Extract<PingEvent, { type: Type }>[] {
  return events.filter((event): event is Extract<PingEvent, { type: Type }> => event.type === type);
}

/** A bare UDP socket on loopback, for peers that misbehave on purpose. */
export function udpSocket(hostname = "127.0.0.1"): Deno.DatagramConn & Disposable {
  return openSocket(hostname, 0);
}

/** The next datagram on `socket` within `waitMs`, or `undefined`;
 * `bufferSize` must hold the largest datagram expected. */
export async function receiveWithin(
  socket: Deno.DatagramConn,
  waitMs: number,
  bufferSize?: number,
): Promise<Datagram | undefined> {
  using receiver = new Receiver(socket, bufferSize);
  return await receiver.next(performance.now() + waitMs);
}

/** Sends `payload` from a fresh socket and returns the first reply, or
 * `undefined` if none comes within `waitMs`. */
export async function exchange(
  port: number,
  payload: Uint8Array | string,
  { hostname = "127.0.0.1", waitMs = 2000 } = {},
): Promise<Uint8Array | undefined> {
  using socket = udpSocket(hostname);
  const data = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  await socket.send(data, { transport: "udp", hostname, port });
  const reply = await receiveWithin(socket, waitMs, 70000);
  return reply?.data.slice();
}

/** The port a socket is bound to. */
export function portOf(socket: { addr: Deno.Addr }): number {
  return (socket.addr as Deno.NetAddr).port;
}

/** A peer a test started: `await using peer = ...` closes it on every exit. */
export interface Peer extends AsyncDisposable {
  socket: Deno.DatagramConn;
  port: number;
  close(): Promise<void>;
}

/**
 * A hand-written echo peer that runs `answer` for each datagram until
 * closed; `answer` sends whatever the test wants.
 */
export function customServer(
  answer: (socket: Deno.DatagramConn, data: Uint8Array, from: Deno.NetAddr) => Promise<void>,
  hostname = "127.0.0.1",
): Peer {
  const socket = udpSocket(hostname);
  const loop = (async () => {
    for (;;) {
      let received: [Uint8Array, Deno.Addr];
      try {
        received = await socket.receive();
      } catch {
        return; // closed
      }
      await answer(socket, received[0], received[1] as Deno.NetAddr);
    }
  })();
  const close = async () => {
    socket[Symbol.dispose]();
    await loop;
  };
  return { socket, port: portOf(socket), close, [Symbol.asyncDispose]: close };
}

/** How long {@linkcode waitUntil} waits by default. */
export const WAIT_MS = 5_000;

/**
 * Waits until `condition()` holds, checking every millisecond or so;
 * throws an error naming `what` (a text, or a function that says how
 * things stand) if it still does not hold after `waitMs`.
 */
export async function waitUntil(
  condition: () => boolean,
  what: string | (() => string),
  waitMs = WAIT_MS,
): Promise<void> {
  const deadline = performance.now() + waitMs;
  while (!condition()) {
    if (performance.now() >= deadline) {
      const text = typeof what === "string" ? what : what();
      throw new Error(`timed out after ${waitMs} ms waiting for ${text}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * Runs `run` with a signal that aborts after `waitMs`, and throws an error
 * naming `what` if it has not settled by then: a run that would hang fails
 * instead.
 */
export async function within<T>(
  waitMs: number,
  what: string,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const overrun = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      overrun.abort();
      reject(new Error(`${what} was still running after ${waitMs} ms`));
    }, waitMs);
  });
  try {
    return await Promise.race([run(overrun.signal), bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** What a finished subprocess said. */
export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** How long a script run by {@linkcode runScript} may take before it is
 * killed (and its test fails on the exit code). */
export const SCRIPT_TIMEOUT_MS = 30_000;

/** Runs `deno run --allow-net <script> ...args` in the project folder. */
export async function runScript(
  script: string,
  args: string[],
  options: { stdin?: string; permissions?: string[] } = {},
): Promise<Output> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...(options.permissions ?? ["--allow-net"]), script, ...args],
    cwd: ROOT,
    // A script that hangs must fail the test, not stall the suite.
    signal: AbortSignal.timeout(SCRIPT_TIMEOUT_MS),
    env: { NO_COLOR: "1" },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Runs `client.ts 127.0.0.1 <port> ...args`. */
export function runClient(
  port: number,
  args: string[],
  options?: { stdin?: string },
): Promise<Output> {
  return runScript("client.ts", ["127.0.0.1", String(port), ...args], options);
}

/** A server started as a subprocess, with the port it announced;
 * `await using` stops it (SIGTERM) unless the test already has. */
export interface ServerProcess extends AsyncDisposable {
  port: number;
  child: Deno.ChildProcess;
  /** Stops it with `signal` (the first call's; later calls wait for that
   * stop) and returns all it printed. */
  stop(signal?: Deno.Signal): Promise<Output>;
  /** Closes the read end of its standard output, as `| head -1` does once
   * it has its line: what it prints from then on meets a closed pipe. */
  closeOutput(): Promise<void>;
}

/**
 * Starts `server.ts` with `permissions` (`--allow-net`) and `args` (and
 * `--port 0`, a free port, unless `freePort` is false) and waits for its
 * "listening on" line.
 */
export async function startServerProcess(
  args: string[] = [],
  { freePort = true, permissions = ["--allow-net"] } = {},
): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, "server.ts", ...(freePort ? ["--port", "0"] : []), ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let port = 0;
  while (port === 0) {
    const { value, done } = await lines.read();
    if (done) {
      const stderr = new TextDecoder().decode((await child.output()).stderr);
      throw new Error(`server.ts ended before listening: ${stderr}`);
    }
    seen += value;
    const match = /listening on .*:(\d+) /.exec(seen);
    if (match) port = Number(match[1]);
  }
  let stopped: Promise<Output> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") =>
    stopped ??= (async () => {
      try {
        child.kill(signal);
      } catch {
        // It has ended already: what it printed is still to be read.
      }
      let rest = "";
      for (;;) {
        const { value, done } = await lines.read();
        if (done) break;
        rest += value;
      }
      const [status, stderr] = await Promise.all([
        child.status,
        new Response(child.stderr).text(),
      ]);
      return { code: status.code, stdout: seen + rest, stderr };
    })();
  return {
    port,
    child,
    stop,
    closeOutput: () => lines.cancel(),
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

/** Whether `text` holds a raw control character (C0, DEL or C1), the kind
 * that would drive a terminal showing a log. */
export function hasControlCharacter(text: string): boolean {
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code < 0x20 || (code >= 0x7f && code < 0xa0)) return true;
  }
  return false;
}

/** Why a test that needs a private network namespace cannot run here, or
 * `undefined` when it can (root, `unshare` and `ip`). */
export function noNamespace(): string | undefined {
  try {
    const probe = new Deno.Command("unshare", { args: ["-n", "ip", "link", "set", "lo", "up"] })
      .outputSync();
    return probe.success ? undefined : "unshare -n needs root here";
  } catch {
    return "unshare or ip is not installed";
  }
}

/** Starts the textbook Python echo server and reads the port it prints;
 * `await using` stops it. */
export async function startPythonEcho(args: string[] = [], python = "python3") {
  const child = new Deno.Command(python, {
    args: [`${ROOT}tests/peers/udp_echo_server.py`, ...args],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value = "" } = await reader.read();
  return {
    port: Number(value.trim()),
    async [Symbol.asyncDispose]() {
      child.kill("SIGTERM");
      await reader.cancel();
      await child.status;
    },
  };
}
