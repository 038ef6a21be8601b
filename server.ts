/**
 * udping server: a UDP echo service with the classic lab's impairments.
 *
 * ```sh
 * deno run --allow-net server.ts                        # echo on 127.0.0.1:12000
 * deno run --allow-net server.ts --upper --loss 0.3     # the UDP Pinger lab
 * deno run --allow-net server.ts --host :: 12000        # every IPv6 and IPv4 interface
 * ```
 *
 * As a module, {@linkcode serve} runs it in-process:
 *
 * ```ts
 * import { serve } from "./server.ts";
 * const server = await serve({ port: 0, mode: "upper" });
 * console.log(server.addr.port, server.stats.received);
 * await server.close();
 * ```
 *
 * @module
 */

import { settings } from "./settings.ts";
import { checkPort, describeError, formatAddress, parsePort, resolveHost } from "./net.ts";
import { openSocket } from "./datagram.ts";
import {
  checkNumber,
  type CommandLine,
  numericFlags,
  type OptionRules,
  parseCommandLine,
  runMain,
} from "./cli.ts";
import { UsageError } from "./net.ts";

/** How the server answers: echo byte for byte, uppercase ASCII letters,
 * prepend a prefix, or never answer. */
export type ReplyMode = "echo" | "upper" | "prefix" | "silent";

/** What {@linkcode serve} does; every field has a default. */
export interface ServeOptions {
  /** Address to bind (default 127.0.0.1 from settings.ts). */
  host?: string;
  /** Port to bind; 0 picks a free one (default 12000 from settings.ts). */
  port?: number;
  mode?: ReplyMode;
  /** Text put before each reply in `prefix` mode. */
  prefix?: string;
  /** Probability (0 to 1) of dropping each request. */
  loss?: number;
  /** Milliseconds to hold each reply back. */
  delay?: number;
  /** Milliseconds of random spread around `delay` (uniform, ±jitter). */
  jitter?: number;
  /** Seed for repeatable drops and delays; random when left out. */
  seed?: number;
  /** Receives one line per datagram; no logging when left out. */
  log?: (line: string) => void;
}

/** The server's live counters. `received = replied + dropped + ignored +
 * failed + held` at every moment. */
export interface ServerStats {
  received: number;
  /** Replies sent. */
  replied: number;
  /** Requests dropped by `--loss`. */
  dropped: number;
  /** Requests not answered on purpose (`silent` mode). */
  ignored: number;
  /** Replies whose send failed (logged; the loop goes on). */
  failed: number;
  /** Replies held back by `--delay`, not yet sent. */
  held: number;
  /** Distinct client addresses (ip:port) seen, counted up to
   * {@linkcode MAX_TRACKED_CLIENTS}. */
  clients: number;
}

/** A running server. */
export interface Server {
  /** The bound address; its port is the real one when port 0 was asked. */
  addr: Deno.NetAddr;
  /** Live counters. */
  stats: Readonly<ServerStats>;
  /** Stops receiving, abandons held replies and closes the socket. */
  close(): Promise<void>;
  /** Settles when the receive loop has ended. */
  finished: Promise<void>;
}

/** How many distinct clients the counter remembers; past it, memory stays
 * put and `clients` stops growing. */
export const MAX_TRACKED_CLIENTS = 65536;
/** Longest `--prefix`: a reply may exceed its request by this much at most. */
export const MAX_PREFIX_BYTES = 64;
/** Bytes of a datagram shown in its log line. */
const PREVIEW_BYTES = 48;

/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the
 * same sequence of numbers in [0, 1), so `--seed` makes a lab run repeatable.
 */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** What happens to one request. */
export interface Fate {
  drop: boolean;
  /** Milliseconds to hold the reply back. */
  delay: number;
}

/**
 * Decides one request's fate. It draws exactly two numbers per request,
 * whatever the options, so that a seeded run is predictable: the first
 * decides the drop (drawn < loss), the second the jitter.
 */
export function decideFate(
  random: () => number,
  impairments: { loss?: number; delay?: number; jitter?: number },
): Fate {
  const drop = random() < (impairments.loss ?? 0);
  const spread = (impairments.jitter ?? 0) * (2 * random() - 1);
  return { drop, delay: Math.max(0, (impairments.delay ?? 0) + spread) };
}

const encoder = new TextEncoder();

/** The reply to `request` in `mode`; `undefined` in silent mode. */
export function makeReply(
  request: Uint8Array,
  mode: ReplyMode,
  prefix: Uint8Array = new Uint8Array(),
): Uint8Array | undefined {
  switch (mode) {
    case "silent":
      return undefined;
    case "echo":
      return request.slice();
    case "upper":
      // ASCII letters only: other bytes, UTF-8 sequences included, pass
      // through untouched and the reply keeps the request's length.
      return request.map((byte) => (byte >= 0x61 && byte <= 0x7a ? byte - 0x20 : byte));
    case "prefix": {
      const reply = new Uint8Array(prefix.length + request.length);
      reply.set(prefix);
      reply.set(request, prefix.length);
      return reply;
    }
  }
}

/**
 * A datagram's first bytes as safe, readable text for a log line: printable
 * ASCII as is, `\n` `\r` `\t` `\\` `\"` escaped, every other byte (control
 * characters, terminal escapes, non-ASCII) as `\xNN`, cut with `…`.
 */
export function escapePreview(data: Uint8Array, limit = PREVIEW_BYTES): string {
  let text = "";
  for (const byte of data.subarray(0, limit)) {
    if (byte === 0x5c) text += "\\\\";
    else if (byte === 0x22) text += '\\"';
    else if (byte === 0x0a) text += "\\n";
    else if (byte === 0x0d) text += "\\r";
    else if (byte === 0x09) text += "\\t";
    else if (byte >= 0x20 && byte < 0x7f) text += String.fromCharCode(byte);
    else text += `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return data.length > limit ? `${text}…` : text;
}

/** The limits of each numeric option, shared by {@linkcode serve} and the
 * command line. */
export const OPTION_RULES = {
  loss: { flag: "--loss", rule: { min: 0, max: 1 } },
  delay: { flag: "--delay", rule: { min: 0 } },
  jitter: { flag: "--jitter", rule: { min: 0 } },
  seed: { flag: "--seed", rule: { min: 0, max: 2 ** 32 - 1, integer: true } },
} as const satisfies OptionRules;

/** Checks the options, throwing a {@linkcode UsageError} for a bad one. */
function checkServeOptions(options: ServeOptions): void {
  for (const [name, { rule }] of Object.entries(OPTION_RULES)) {
    const value = options[name as keyof typeof OPTION_RULES];
    if (value !== undefined) checkNumber(name, value, rule);
  }
  const prefixBytes = encoder.encode(options.prefix ?? "").length;
  if (prefixBytes > MAX_PREFIX_BYTES) {
    throw new UsageError(`prefix must be at most ${MAX_PREFIX_BYTES} bytes, got ${prefixBytes}`);
  }
  if (options.port !== undefined) checkPort(options.port, { allowZero: true });
}

/**
 * Starts the server and returns once it is bound.
 *
 * One bad datagram or one failed send never stops it: every datagram is
 * handled in a guarded step, a failed send is logged and counted.
 *
 * @example
 * ```ts
 * import { serve } from "./server.ts";
 * const server = await serve({ port: 0, mode: "upper", loss: 0.3, seed: 1 });
 * // ... ping 127.0.0.1:server.addr.port ...
 * await server.close();
 * ```
 */
export async function serve(options: ServeOptions = {}): Promise<Server> {
  checkServeOptions(options);
  const { address } = await resolveHost(options.host ?? settings.host);
  const socket = openSocket(address, options.port ?? settings.port);
  const addr = socket.addr as Deno.NetAddr;
  const mode = options.mode ?? (options.prefix !== undefined ? "prefix" : "echo");
  const prefix = encoder.encode(options.prefix ?? "");
  const random = createRandom(options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]!);
  const { log } = options;
  const stats: ServerStats = {
    received: 0,
    replied: 0,
    dropped: 0,
    ignored: 0,
    failed: 0,
    held: 0,
    clients: 0,
  };
  const clients = new Set<string>();
  const heldTimers = new Set<ReturnType<typeof setTimeout>>();
  let closing = false;

  async function sendReply(reply: Uint8Array, to: Deno.NetAddr, source: string): Promise<void> {
    try {
      await socket.send(reply, to);
      stats.replied++;
    } catch (error) {
      stats.failed++;
      // A send to a vanished client or after close must not end the loop;
      // say so unless we are shutting down anyway.
      if (!closing) {
        log?.(`${new Date().toISOString()} ${source} send failed: ${describeError(error)}`);
      }
    }
  }

  function handle(data: Uint8Array, from: Deno.NetAddr): Promise<void> | undefined {
    stats.received++;
    const source = formatAddress(from.hostname, from.port);
    if (clients.size < MAX_TRACKED_CLIENTS && !clients.has(source)) {
      clients.add(source);
      stats.clients = clients.size;
    }
    const fate = decideFate(random, options);
    let action: string;
    let pending: Promise<void> | undefined;
    if (mode === "silent") {
      stats.ignored++;
      action = "not answered (silent)";
    } else if (fate.drop) {
      stats.dropped++;
      action = "dropped";
    } else {
      const reply = makeReply(data, mode, prefix)!;
      if (fate.delay > 0) {
        stats.held++;
        const timer = setTimeout(() => {
          heldTimers.delete(timer);
          stats.held--;
          void sendReply(reply, from, source);
        }, fate.delay);
        heldTimers.add(timer);
        action = `delayed ${fate.delay.toFixed(fate.delay < 10 ? 1 : 0)} ms`;
      } else {
        pending = sendReply(reply, from, source);
        action = "replied";
      }
    }
    if (log) {
      log(
        `${new Date().toISOString()} ${source} ${data.length} bytes "${
          escapePreview(data)
        }" ${action}`,
      );
    }
    return pending;
  }

  // One buffer for every datagram, sized past the largest IPv6 payload: the
  // runtime silently cuts a datagram to the buffer it is given.
  const buffer = new Uint8Array(65536);
  const finished = (async () => {
    while (!closing) {
      let received: [Uint8Array, Deno.Addr];
      try {
        received = await socket.receive(buffer);
      } catch (error) {
        if (closing || error instanceof Deno.errors.BadResource) break;
        log?.(`${new Date().toISOString()} receive failed: ${describeError(error)}`);
        continue;
      }
      try {
        await handle(received[0], received[1] as Deno.NetAddr);
      } catch (error) {
        log?.(`${new Date().toISOString()} datagram not handled: ${describeError(error)}`);
      }
    }
  })();

  return {
    addr,
    stats,
    async close() {
      if (closing) return finished;
      closing = true;
      for (const timer of heldTimers) clearTimeout(timer);
      heldTimers.clear();
      try {
        socket.close();
      } catch {
        // Already closed: nothing left to release.
      }
      await finished;
    },
    finished,
  };
}

/** The lines printed when the server stops. */
export function serverSummary(addr: Deno.NetAddr, stats: ServerStats): string[] {
  const clients = stats.clients >= MAX_TRACKED_CLIENTS ? `${stats.clients}+` : `${stats.clients}`;
  return [
    "",
    `--- ${formatAddress(addr.hostname, addr.port)} udping server statistics ---`,
    `${stats.received} received, ${stats.replied} replied, ${stats.dropped} dropped, ` +
    `${stats.ignored} ignored, ${stats.failed} failed sends, ${clients} clients`,
  ];
}

function printUsage(): void {
  console.log(`udping server: a UDP echo service with lab impairments.

Usage:
  deno run --allow-net server.ts [port] [options]

Options:
  --host HOST        address to listen on (default ${settings.host}; 0.0.0.0 or :: for the network)
  --port PORT        port to listen on, 0-65535, 0 = any free one (default ${settings.port}); also positional
  --upper            reply in ASCII uppercase (the classic UDP Pinger lab)
  --prefix TEXT      reply with TEXT (at most ${MAX_PREFIX_BYTES} bytes) before the request
  --silent           never reply, only log what arrives
  --loss P           drop each request with probability P, 0-1 (default 0)
  --delay MS         hold each reply back MS milliseconds (default 0)
  --jitter MS        vary the delay uniformly by up to ±MS milliseconds (default 0)
  --seed N           repeatable drops and delays (default: random)
  -q, --quiet        no log line per datagram
  -h, --help         print this help

Stops on Ctrl+C or SIGTERM with a summary, exit status 0.
Exit status 2: bad arguments, or the address cannot be bound.`);
}

const FLAGS = {
  host: { type: "string" },
  port: { type: "string" },
  upper: { type: "boolean" },
  prefix: { type: "string" },
  silent: { type: "boolean" },
  loss: { type: "string" },
  delay: { type: "string" },
  jitter: { type: "string" },
  seed: { type: "string" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
} as const;

/** Turns a command line into {@linkcode ServeOptions}. */
export function parseServeOptions(line: CommandLine): ServeOptions {
  const { values, positionals } = line;
  if (positionals.length > 1) {
    throw new UsageError(`unexpected argument '${positionals[1]}' (see --help)`);
  }
  const portText = (values.port as string | undefined) ?? positionals[0];
  const modes = [
    values.upper && "--upper",
    values.prefix !== undefined && "--prefix",
    values.silent && "--silent",
  ].filter(Boolean);
  if (modes.length > 1) throw new UsageError(`choose one reply mode, not ${modes.join(" and ")}`);
  return {
    host: (values.host as string | undefined) ?? settings.host,
    port: portText === undefined ? settings.port : parsePort(portText, { allowZero: true }),
    mode: values.upper
      ? "upper"
      : values.silent
      ? "silent"
      : values.prefix !== undefined
      ? "prefix"
      : "echo",
    prefix: values.prefix as string | undefined,
    ...numericFlags(line, OPTION_RULES),
  };
}

/**
 * The command line: serves until SIGINT or SIGTERM, then prints the summary
 * and returns 0. A second signal exits at once.
 */
export async function main(args: string[]): Promise<number> {
  const line = parseCommandLine(args, FLAGS);
  if (line.values.help) {
    printUsage();
    return 0;
  }
  const options = parseServeOptions(line);
  const quiet = Boolean(line.values.quiet);
  const server = await serve({ ...options, log: quiet ? undefined : (text) => console.log(text) });
  // Listen for signals before saying "listening": a supervisor (or a test)
  // may signal as soon as it reads that line.
  let stopping = false;
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const stop = () => {
    if (stopping) Deno.exit(0);
    stopping = true;
    void server.close();
  };
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  const where = formatAddress(server.addr.hostname, server.addr.port);
  const impairments = [
    options.loss ? `loss ${options.loss}` : "",
    options.delay ? `delay ${options.delay} ms` : "",
    options.jitter ? `jitter ±${options.jitter} ms` : "",
    options.seed !== undefined ? `seed ${options.seed}` : "",
  ].filter(Boolean);
  console.log(
    `udping server listening on ${where} (udp), mode ${options.mode}` +
      (impairments.length > 0 ? `, ${impairments.join(", ")}` : ""),
  );
  if (server.addr.hostname === "0.0.0.0" || server.addr.hostname === "::") {
    console.error(
      "notice: listening on every interface: this echo service is reachable from the network",
    );
  }

  await server.finished;
  for (const signal of signals) Deno.removeSignalListener(signal, stop);
  for (const text of serverSummary(server.addr, server.stats)) console.log(text);
  return 0;
}

if (import.meta.main) {
  await runMain("server.ts", () => main(Deno.args));
}
