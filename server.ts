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
import { checkPort, describeError, formatAddress, parsePort, resolveHost } from "./lib/net.ts";
import { openSocket } from "./lib/socket.ts";
import { startFastLoop } from "./lib/fast_server.ts";
import { findRequest, writeStamp } from "./protocol.ts";
import {
  checkNumber,
  type CommandLine,
  numericFlags,
  type OptionRules,
  parseCommandLine,
  runMain,
  VERSION,
} from "./lib/cli.ts";
import { UsageError } from "./lib/net.ts";

/** How the server answers: echo byte for byte, uppercase ASCII letters,
 * prepend a prefix, or never answer.
 *
 * @example
 * ```ts
 * import { type ReplyMode, serve } from "./server.ts";
 * const mode: ReplyMode = "upper";
 * const server = await serve({ port: 0, mode });
 * await server.close();
 * ```
 */
export type ReplyMode = "echo" | "upper" | "prefix" | "silent";

/**
 * What {@linkcode serve} does; every field has a default.
 *
 * @example
 * ```ts
 * import { serve, type ServeOptions } from "./server.ts";
 * const options: ServeOptions = { port: 0, mode: "upper", loss: 0.3, seed: 42 };
 * const server = await serve(options);
 * await server.close();
 * ```
 */
export interface ServeOptions {
  /** Address to bind (default 127.0.0.1 from settings.ts). */
  host?: string;
  /** Port to bind; 0 picks a free one (default 12000 from settings.ts). */
  port?: number;
  /** How to answer (default echo, or prefix when `prefix` is given). */
  mode?: ReplyMode;
  /** Text put before each reply in `prefix` mode. */
  prefix?: string;
  /** Probability (0 to 1) of dropping each request. */
  loss?: number;
  /** Milliseconds to hold each reply back. */
  delay?: number;
  /** Milliseconds of random spread around `delay` (uniform, ±jitter). */
  jitter?: number;
  /** Probability (0 to 1) of sending a reply twice. */
  duplicate?: number;
  /** Probability (0 to 1) of holding a reply back until the next one is
   * sent (at most {@linkcode MAX_REORDER_HOLD_MS}). */
  reorder?: number;
  /** Seed for repeatable impairments; random when left out. */
  seed?: number;
  /** Replies per second per source address (default
   * {@linkcode DEFAULT_RATE}); excess requests are dropped and counted.
   * 0 turns the limit off. */
  rate?: number;
  /** Serve through the C library's blocking socket calls (Linux, needs
   * `--allow-ffi`): about twice the replies per second; no impairments.
   * Its loop blocks this process's event loop while it waits (up to 100 ms
   * at a time), so give it a process of its own. */
  fast?: boolean;
  /** Receives one line per datagram; no logging when left out. */
  log?: (line: string) => void;
}

/** The server's live counters. `received = replied + dropped + limited +
 * ignored + failed + held` at every moment.
 *
 * @example
 * ```ts
 * import { serve, type ServerStats } from "./server.ts";
 * const server = await serve({ port: 0 });
 * const stats: Readonly<ServerStats> = server.stats;
 * console.log(stats.received, stats.replied);
 * await server.close();
 * ```
 */
export interface ServerStats {
  /** Datagrams received. */
  received: number;
  /** Requests answered (a duplicated reply counts once here). */
  replied: number;
  /** Requests dropped by `--loss`, as if lost on the way in. */
  dropped: number;
  /** Requests not answered because their source was over `--rate`. */
  limited: number;
  /** Requests not answered on purpose (`silent` mode). */
  ignored: number;
  /** Replies whose send failed (logged; the loop goes on). */
  failed: number;
  /** Replies held back by `--delay` or `--reorder`, not yet sent. */
  held: number;
  /** Replies sent a second time by `--duplicate`. */
  duplicated: number;
  /** Replies sent after the next request's reply by `--reorder`. */
  reordered: number;
  /** Distinct client addresses (ip:port) seen, counted up to
   * {@linkcode MAX_TRACKED_CLIENTS}. */
  clients: number;
}

/**
 * A running server.
 *
 * @example
 * ```ts
 * import { type Server, serve } from "./server.ts";
 * const server: Server = await serve({ port: 0 });
 * console.log(server.addr.port);
 * await server.close();
 * ```
 */
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
 * put and `clients` stops growing.
 *
 * @example
 * ```ts
 * import { MAX_TRACKED_CLIENTS } from "./server.ts";
 * console.log(`clients are counted up to ${MAX_TRACKED_CLIENTS}`);
 * ```
 */
export const MAX_TRACKED_CLIENTS = 65536;
/**
 * Longest `--prefix`: a reply may exceed its request by this much at most.
 *
 * @example
 * ```ts
 * import { MAX_PREFIX_BYTES, serve } from "./server.ts";
 * const server = await serve({ port: 0, prefix: "x".repeat(MAX_PREFIX_BYTES) }); // one more byte is refused
 * await server.close();
 * ```
 */
export const MAX_PREFIX_BYTES = 64;
/** Bytes of a datagram shown in its log line. */
const PREVIEW_BYTES = 48;
/** The receive buffer: past the largest IPv6 payload (65527 bytes). */
const RECEIVE_BUFFER_BYTES = 65536;
/** The fate of every request when no impairment is set: no random draws. */
const UNIMPAIRED: Fate = Object.freeze({ drop: false, delay: 0, duplicate: false, reorder: false });

/** Longest a `--reorder` reply waits for a successor before it goes out
 * anyway (then in order): long enough for a lab's 1 s interval.
 *
 * @example
 * ```ts
 * import { MAX_REORDER_HOLD_MS } from "./server.ts";
 * console.log(`a reordered reply waits at most ${MAX_REORDER_HOLD_MS} ms`);
 * ```
 */
export const MAX_REORDER_HOLD_MS = 2000;
/** Client tokens whose request counts the server remembers for stamps;
 * the least recently seen is forgotten first.
 *
 * @example
 * ```ts
 * import { MAX_TRACKED_TOKENS, TokenCounter } from "./server.ts";
 * const tokens = new TokenCounter(MAX_TRACKED_TOKENS);
 * ```
 */
export const MAX_TRACKED_TOKENS = 10_000;
/**
 * Source addresses whose rate-limit buckets the server remembers.
 *
 * @example
 * ```ts
 * import { DEFAULT_RATE, MAX_TRACKED_SOURCES, RateLimiter } from "./server.ts";
 * const limiter = new RateLimiter(DEFAULT_RATE, MAX_TRACKED_SOURCES);
 * ```
 */
export const MAX_TRACKED_SOURCES = 10_000;
/** Replies per second per source address unless `--rate` says otherwise:
 * generous for any pinger, a cap for a reflection attack.
 *
 * @example
 * ```ts
 * import { DEFAULT_RATE, serve } from "./server.ts";
 * const server = await serve({ port: 0, rate: DEFAULT_RATE * 10 });
 * await server.close();
 * ```
 */
export const DEFAULT_RATE = 1000;

/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the
 * same sequence of numbers in [0, 1), so `--seed` makes a lab run repeatable.
 *
 * @example
 * ```ts
 * import { createRandom } from "./server.ts";
 * const random = createRandom(42);
 * random(); // the same number in [0, 1) on every run
 * ```
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

/**
 * What happens to one request.
 *
 * @example
 * ```ts
 * import { createRandom, decideFate, type Fate } from "./server.ts";
 * const fate: Fate = decideFate(createRandom(7), { duplicate: 0.5 });
 * console.log(fate.duplicate);
 * ```
 */
export interface Fate {
  /** Dropped on arrival (`--loss`). */
  drop: boolean;
  /** Milliseconds to hold the reply back. */
  delay: number;
  /** Sent twice (`--duplicate`). */
  duplicate: boolean;
  /** Held back until the next reply has gone out (`--reorder`). */
  reorder: boolean;
}

/**
 * The impairments {@linkcode decideFate} applies.
 *
 * @example
 * ```ts
 * import { createRandom, decideFate, type Impairments } from "./server.ts";
 * const lab: Impairments = { loss: 0.3, delay: 50, jitter: 10 };
 * decideFate(createRandom(1), lab);
 * ```
 */
export type Impairments = Pick<ServeOptions, "loss" | "delay" | "jitter" | "duplicate" | "reorder">;

/** Every impairment option, in the order they are drawn. */
const IMPAIRMENT_NAMES: (keyof Impairments)[] = ["loss", "delay", "jitter", "duplicate", "reorder"];

/** The names of the impairments `options` sets. */
function impairmentsSet(options: Impairments): string[] {
  return IMPAIRMENT_NAMES.filter((name) => (options[name] ?? 0) > 0);
}

/**
 * Decides one request's fate. The server calls it for every request once
 * any impairment is set. It draws exactly four numbers per request, whatever
 * the options, so that a seeded run is predictable: the first decides the
 * drop (drawn < loss), the second the jitter, the third the duplicate (drawn
 * < duplicate), the fourth the reorder (drawn < reorder).
 *
 * @example
 * ```ts
 * import { createRandom, decideFate } from "./server.ts";
 * const fate = decideFate(createRandom(1), { loss: 0.3, delay: 20 });
 * fate.drop; // true for about 30% of requests
 * ```
 */
export function decideFate(random: () => number, impairments: Impairments): Fate {
  const drop = random() < (impairments.loss ?? 0);
  const spread = (impairments.jitter ?? 0) * (2 * random() - 1);
  const duplicate = random() < (impairments.duplicate ?? 0);
  const reorder = random() < (impairments.reorder ?? 0);
  return { drop, delay: Math.max(0, (impairments.delay ?? 0) + spread), duplicate, reorder };
}

/**
 * A map that holds at most `capacity` entries and forgets the least recently
 * used one first: the server keeps per-client state in these so that a
 * flood of new clients cannot grow its memory. (A Map keeps insertion
 * order, so re-inserting on each use makes the first key the oldest.)
 *
 * @example
 * ```ts
 * import { LruMap } from "./server.ts";
 * const recent = new LruMap<string, number>(2);
 * recent.set("a", 1);
 * recent.set("b", 2);
 * recent.set("c", 3); // "a" is forgotten
 * recent.get("a"); // undefined
 * ```
 */
export class LruMap<Key, Value> {
  readonly #entries = new Map<Key, Value>();
  readonly #capacity: number;
  /** The most recently used key: touching it again needs no reordering,
   * which makes a single busy client cheap. */
  #newest: Key | undefined;

  /** A map of at most `capacity` entries. */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** The value for `key`, now the most recently used. */
  get(key: Key): Value | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined && key !== this.#newest) this.set(key, value);
    return value;
  }

  /** Sets `key`, forgetting the least recently used entry when full. */
  set(key: Key, value: Value): void {
    if (key !== this.#newest) this.#entries.delete(key);
    this.#entries.set(key, value);
    this.#newest = key;
    if (this.#entries.size > this.#capacity) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }

  /** How many entries it holds. */
  get size(): number {
    return this.#entries.size;
  }
}

/**
 * Counts requests per client token (its numeric value) in bounded memory.
 *
 * @example
 * ```ts
 * import { TokenCounter } from "./server.ts";
 * const tokens = new TokenCounter();
 * tokens.hit(0xbeef); // 1
 * tokens.hit(0xbeef); // 2
 * ```
 */
export class TokenCounter {
  readonly #counts: LruMap<number, number>;

  /** Remembers at most `capacity` tokens. */
  constructor(capacity = MAX_TRACKED_TOKENS) {
    this.#counts = new LruMap(capacity);
  }

  /** Counts one more request for `token` and returns its total. */
  hit(token: number): number {
    const count = (this.#counts.get(token) ?? 0) + 1;
    this.#counts.set(token, count);
    return count;
  }

  /** How many tokens it remembers. */
  get size(): number {
    return this.#counts.size;
  }
}

/** Counts distinct client addresses (ip and port) up to
 * {@linkcode MAX_TRACKED_CLIENTS}, without building a string per datagram.
 *
 * @example
 * ```ts
 * import { ClientCounter } from "./server.ts";
 * const clients = new ClientCounter();
 * clients.see({ transport: "udp", hostname: "127.0.0.1", port: 5000 }); // 1
 * ```
 */
export class ClientCounter {
  readonly #ports = new Map<string, Set<number>>();
  #count = 0;

  /** Notes a datagram from `from`; returns how many clients were seen. */
  see(from: Deno.NetAddr): number {
    if (this.#count >= MAX_TRACKED_CLIENTS) return this.#count;
    let ports = this.#ports.get(from.hostname);
    if (ports === undefined) this.#ports.set(from.hostname, ports = new Set());
    if (!ports.has(from.port)) {
      ports.add(from.port);
      this.#count++;
    }
    return this.#count;
  }
}

/**
 * A token bucket per source address: each source may have `rate` replies
 * a second, with bursts of up to a second's worth. Sources are kept in an
 * {@linkcode LruMap}; a forgotten source starts again with a full bucket.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "./server.ts";
 * const limiter = new RateLimiter(2);
 * [limiter.allow("a", 0), limiter.allow("a", 0), limiter.allow("a", 0)]; // [true, true, false]
 * ```
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #buckets: LruMap<string, { tokens: number; updatedAt: number }>;

  /** `ratePerSecond` replies per source; at most `capacity` sources remembered. */
  constructor(ratePerSecond: number, capacity = MAX_TRACKED_SOURCES) {
    this.#rate = ratePerSecond;
    this.#buckets = new LruMap(capacity);
  }

  /** Whether `source` may have a reply at `now` (ms); takes a token if so. */
  allow(source: string, now: number): boolean {
    const bucket = this.#buckets.get(source) ?? { tokens: this.#rate, updatedAt: now };
    bucket.tokens = Math.min(
      this.#rate,
      bucket.tokens + ((now - bucket.updatedAt) / 1000) * this.#rate,
    );
    bucket.updatedAt = now;
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    this.#buckets.set(source, bucket);
    return allowed;
  }
}

const encoder = new TextEncoder();

/**
 * Turns a request into its reply in place: `buffer` holds the prefix (in
 * `prefix` mode) and then the request's `length` bytes. Returns the reply,
 * a view of `buffer`, or `undefined` in silent mode. A reply is never
 * longer than the request plus the prefix.
 *
 * @example
 * ```ts
 * import { replyInPlace } from "./server.ts";
 * const buffer = new TextEncoder().encode("ping");
 * replyInPlace(buffer, 0, 4, "upper"); // the bytes of "PING", in buffer itself
 * ```
 */
export function replyInPlace(
  buffer: Uint8Array,
  prefixLength: number,
  length: number,
  mode: ReplyMode,
): Uint8Array | undefined {
  switch (mode) {
    case "silent":
      return undefined;
    case "echo":
      return buffer.subarray(prefixLength, prefixLength + length);
    case "upper":
      // ASCII letters only: other bytes, UTF-8 sequences included, pass
      // through untouched and the reply keeps the request's length.
      for (let at = prefixLength; at < prefixLength + length; at++) {
        const byte = buffer[at]!;
        if (byte >= 0x61 && byte <= 0x7a) buffer[at] = byte - 0x20;
      }
      return buffer.subarray(prefixLength, prefixLength + length);
    case "prefix":
      return buffer.subarray(0, prefixLength + length);
  }
}

/** The reply to `request` in `mode` as a new array; `undefined` in silent
 * mode.
 *
 * @example
 * ```ts
 * import { makeReply } from "./server.ts";
 * const request = new TextEncoder().encode("ping");
 * makeReply(request, "prefix", new TextEncoder().encode("OK...")); // the bytes of "OK...ping"
 * ```
 */
export function makeReply(
  request: Uint8Array,
  mode: ReplyMode,
  prefix: Uint8Array = new Uint8Array(),
): Uint8Array | undefined {
  const prefixLength = mode === "prefix" ? prefix.length : 0;
  const buffer = new Uint8Array(prefixLength + request.length);
  buffer.set(prefix.subarray(0, prefixLength));
  buffer.set(request, prefixLength);
  return replyInPlace(buffer, prefixLength, request.length, mode);
}

/**
 * A datagram's first bytes as safe, readable text for a log line: printable
 * ASCII as is, `\n` `\r` `\t` `\\` `\"` escaped, every other byte (control
 * characters, terminal escapes, non-ASCII) as `\xNN`, cut with `…`.
 *
 * @example
 * ```ts
 * import { escapePreview } from "./server.ts";
 * escapePreview(new TextEncoder().encode("\x1b[2Jhi\n")); // "\\x1b[2Jhi\\n"
 * ```
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
 * command line.
 *
 * @example
 * ```ts
 * import { OPTION_RULES } from "./server.ts";
 * OPTION_RULES.loss.rule; // { min: 0, max: 1 }
 * ```
 */
export const OPTION_RULES = {
  loss: { flag: "--loss", rule: { min: 0, max: 1 } },
  duplicate: { flag: "--duplicate", rule: { min: 0, max: 1 } },
  reorder: { flag: "--reorder", rule: { min: 0, max: 1 } },
  delay: { flag: "--delay", rule: { min: 0 } },
  jitter: { flag: "--jitter", rule: { min: 0 } },
  seed: { flag: "--seed", rule: { min: 0, max: 2 ** 32 - 1, integer: true } },
  rate: { flag: "--rate", rule: { min: 0 } },
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
  if (options.fast) {
    if (Deno.build.os !== "linux") throw new UsageError("--fast works on Linux only");
    const impairments = impairmentsSet(options);
    if (impairments.length > 0) {
      throw new UsageError(`--fast leaves out the impairments: drop --${impairments.join(", --")}`);
    }
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
      throw new UsageError(
        "--fast needs --allow-ffi (deno run --allow-net --allow-ffi server.ts --fast)",
      );
    }
  }
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
  const { address, family } = await resolveHost(options.host ?? settings.host);
  const socket = openSocket(address, options.port ?? settings.port);
  const addr = socket.addr as Deno.NetAddr;
  const mode = options.mode ?? (options.prefix !== undefined ? "prefix" : "echo");
  const prefix = mode === "prefix" ? encoder.encode(options.prefix ?? "") : new Uint8Array();
  const impaired = impairmentsSet(options).length > 0;
  const random = createRandom(options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]!);
  const { log } = options;
  const stats: ServerStats = {
    received: 0,
    replied: 0,
    dropped: 0,
    limited: 0,
    ignored: 0,
    failed: 0,
    held: 0,
    duplicated: 0,
    reordered: 0,
    clients: 0,
  };
  const clients = new ClientCounter();
  const tokens = new TokenCounter();
  const rate = options.rate ?? DEFAULT_RATE;
  const limiter = rate > 0 ? new RateLimiter(rate) : undefined;
  const heldTimers = new Set<ReturnType<typeof setTimeout>>();
  /** The one reply `--reorder` holds until the next reply has gone out. */
  let reorderSlot: { reply: Outgoing; timer: ReturnType<typeof setTimeout> } | undefined;
  let closing = false;

  /** A reply on its way out, with what is needed to stamp it at send time. */
  interface Outgoing {
    data: Uint8Array;
    to: Deno.NetAddr;
    fate: Fate;
    stamp?: { offset: number; length: number; count: number; receivedAt: number };
  }

  const now = () => performance.timeOrigin + performance.now();
  const logLine = (from: Deno.NetAddr, text: string) =>
    log?.(`${new Date().toISOString()} ${formatAddress(from.hostname, from.port)} ${text}`);

  /** Writes a reply's stamp, if it has one, as it goes out. */
  function stampNow({ data, stamp }: Outgoing): void {
    if (stamp === undefined) return;
    const held = (now() - stamp.receivedAt) * 1000;
    writeStamp(data, stamp.offset, stamp.length, {
      count: stamp.count,
      received: stamp.receivedAt,
      held,
    });
  }

  async function transmit(reply: Outgoing): Promise<void> {
    stampNow(reply);
    try {
      await socket.send(reply.data, reply.to);
      stats.replied++;
      if (reply.fate.duplicate) {
        await socket.send(reply.data, reply.to);
        stats.duplicated++;
      }
    } catch (error) {
      stats.failed++;
      // A send to a vanished client or after close must not end the loop;
      // say so unless we are shutting down anyway.
      if (!closing) logLine(reply.to, `send failed: ${describeError(error)}`);
    }
  }

  /** Sends a reply whose time has come, or parks it for `--reorder`; a
   * parked reply goes out right after the next one. */
  async function dispatch(reply: Outgoing): Promise<void> {
    if (reply.fate.reorder && reorderSlot === undefined) {
      stats.held++;
      const timer = setTimeout(() => {
        reorderSlot = undefined;
        stats.held--;
        void transmit(reply);
      }, MAX_REORDER_HOLD_MS);
      reorderSlot = { reply, timer };
      return;
    }
    await transmit(reply);
    if (reorderSlot !== undefined) {
      const parked = reorderSlot;
      reorderSlot = undefined;
      clearTimeout(parked.timer);
      stats.held--;
      stats.reordered++;
      await transmit(parked.reply);
    }
  }

  /**
   * Decides what becomes of a request that sits in `buffer` after the
   * prefix, and returns the reply to send now, if any. The reply is built
   * in `buffer` itself; one that must wait (delay, reorder) gets a copy.
   */
  function handle(buffer: Uint8Array, length: number, from: Deno.NetAddr): Outgoing | undefined {
    stats.received++;
    stats.clients = clients.see(from);
    // The log shows the request as it came, before an in-place reply.
    const preview = log
      ? escapePreview(buffer.subarray(prefix.length, prefix.length + length))
      : "";
    const fate = impaired ? decideFate(random, options) : UNIMPAIRED;
    let action: string;
    let sendNow: Outgoing | undefined;
    if (mode === "silent") {
      stats.ignored++;
      action = "not answered (silent)";
    } else if (fate.drop) {
      stats.dropped++;
      action = "dropped";
    } else if (limiter && !limiter.allow(from.hostname, performance.now())) {
      stats.limited++;
      action = `not answered (over ${rate}/s)`;
    } else {
      const head = findRequest(buffer.subarray(prefix.length, prefix.length + length));
      const receivedAt = head?.stampWanted ? now() : 0;
      let data = replyInPlace(buffer, prefix.length, length, mode)!;
      const waits = fate.delay > 0 || fate.reorder;
      if (waits) data = data.slice(); // the buffer takes the next request
      const reply: Outgoing = { data, to: from, fate };
      if (head !== null) {
        const count = tokens.hit(head.tokenValue);
        if (head.stampWanted) {
          const offset = head.paddingOffset + prefix.length;
          reply.stamp = { offset, length: length - head.paddingOffset, count, receivedAt };
        }
      }
      if (fate.delay > 0) {
        stats.held++;
        const timer = setTimeout(() => {
          heldTimers.delete(timer);
          stats.held--;
          void dispatch(reply);
        }, fate.delay);
        heldTimers.add(timer);
        action = `delayed ${fate.delay.toFixed(fate.delay < 10 ? 1 : 0)} ms`;
      } else {
        sendNow = reply;
        action = "replied";
      }
      if (log && fate.duplicate) action += ", duplicated";
      if (log && fate.reorder) action += ", held for reorder";
    }
    if (log) logLine(from, `${length} bytes "${preview}" ${action}`);
    return sendNow;
  }

  /**
   * The receive loop: one datagram at a time, in arrival order (which the
   * log and `--reorder` rely on), in one buffer that is reused only after
   * its reply has gone out. (Several loops in parallel were measured: no
   * faster, since each receive and send is a runtime op either way.)
   */
  async function receiveLoop(): Promise<void> {
    // Room for the prefix and the largest IPv6 payload: the runtime silently
    // cuts a datagram to the buffer it is given.
    const buffer = new Uint8Array(prefix.length + RECEIVE_BUFFER_BYTES);
    buffer.set(prefix);
    const into = buffer.subarray(prefix.length);
    while (!closing) {
      let received: [Uint8Array, Deno.Addr];
      try {
        received = await socket.receive(into);
      } catch (error) {
        if (closing || error instanceof Deno.errors.BadResource) return;
        log?.(`${new Date().toISOString()} receive failed: ${describeError(error)}`);
        continue;
      }
      try {
        const reply = handle(buffer, received[0].length, received[1] as Deno.NetAddr);
        // Unimpaired, nothing parked: straight out, without dispatch's frames.
        if (reply?.fate === UNIMPAIRED && reorderSlot === undefined) await transmit(reply);
        else if (reply) await dispatch(reply);
      } catch (error) {
        log?.(`${new Date().toISOString()} datagram not handled: ${describeError(error)}`);
      }
    }
  }

  if (options.fast) {
    // The C library's socket replaces the runtime's: close it first.
    socket.close();
    const loop = startFastLoop(address, family, addr.port, prefix, {
      handle(buffer, length, from) {
        const reply = handle(buffer, length, from);
        if (reply) stampNow(reply);
        return reply?.data;
      },
      sent(ok, to, reason) {
        if (ok) return void stats.replied++;
        stats.failed++;
        if (!closing) logLine(to, `send failed: ${reason}`);
      },
    });
    return {
      addr: loop.addr,
      stats,
      async close() {
        closing = true;
        await loop.close();
      },
      finished: loop.finished,
    };
  }

  const finished = receiveLoop();

  return {
    addr,
    stats,
    async close() {
      if (closing) return finished;
      closing = true;
      for (const timer of heldTimers) clearTimeout(timer);
      heldTimers.clear();
      if (reorderSlot) clearTimeout(reorderSlot.timer);
      reorderSlot = undefined;
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

/**
 * The lines printed when the server stops.
 *
 * @example
 * ```ts
 * import { serve, serverSummary } from "./server.ts";
 * const server = await serve({ port: 0 });
 * await server.close();
 * console.log(serverSummary(server.addr, server.stats).join("\n"));
 * ```
 */
export function serverSummary(addr: Deno.NetAddr, stats: ServerStats): string[] {
  const clients = stats.clients >= MAX_TRACKED_CLIENTS ? `${stats.clients}+` : `${stats.clients}`;
  return [
    "",
    `--- ${formatAddress(addr.hostname, addr.port)} udping server statistics ---`,
    `${stats.received} received, ${stats.replied} replied, ${stats.dropped} dropped, ` +
    `${stats.limited} rate-limited, ${stats.ignored} ignored, ${stats.failed} failed sends, ` +
    `${clients} clients`,
    ...(stats.duplicated + stats.reordered > 0
      ? [`${stats.duplicated} duplicated, ${stats.reordered} reordered`]
      : []),
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
  --duplicate P      send each reply twice with probability P, 0-1 (default 0)
  --reorder P        hold each reply back until after the next one with probability P,
                     0-1 (default 0; at most ${MAX_REORDER_HOLD_MS} ms)
  --seed N           repeatable impairments (default: random)
  --rate N           replies per second per source address, excess dropped
                     (default ${DEFAULT_RATE}; 0 = no limit)
  --fast             about twice the replies/s through the C library (Linux; run with
                     --allow-net --allow-ffi); no impairments
  -q, --quiet        no log line per datagram
  -h, --help         print this help
  -V, --version      print the version

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
  duplicate: { type: "string" },
  reorder: { type: "string" },
  seed: { type: "string" },
  rate: { type: "string" },
  fast: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

/** Turns a command line into {@linkcode ServeOptions}. */
function parseServeOptions(line: CommandLine): ServeOptions {
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
    fast: Boolean(values.fast),
    ...numericFlags(line, OPTION_RULES),
  };
}

/**
 * The command line: serves until SIGINT or SIGTERM, then prints the summary
 * and returns 0. A second signal exits at once.
 *
 * @example
 * ```ts
 * import { main } from "./server.ts";
 * await main(["--port", "12000", "--upper"]); // serves until SIGINT or SIGTERM
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const line = parseCommandLine(args, FLAGS);
  if (line.values.help) {
    printUsage();
    return 0;
  }
  if (line.values.version) {
    console.log(`udping server ${VERSION}`);
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
    options.duplicate ? `duplicate ${options.duplicate}` : "",
    options.reorder ? `reorder ${options.reorder}` : "",
    options.seed !== undefined ? `seed ${options.seed}` : "",
    options.fast ? "fast path (C library)" : "",
    options.rate === 0
      ? "no rate limit"
      : `at most ${options.rate ?? DEFAULT_RATE} replies/s per source`,
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
