/**
 * udping client: pings a UDP echo service and reports round-trip times and
 * loss the way `ping` does. Also a line-by-line chat mode and a
 * fire-and-forget beacon.
 *
 * ```sh
 * deno run --allow-net client.ts [host] [port] [options]
 * deno run --allow-net client.ts 127.0.0.1 12000 -c 100 -i 0.2
 * deno run --allow-net client.ts --chat
 * deno run --allow-net client.ts --send "hello {seq} at {now}" -i 1
 * ```
 *
 * As a module, {@linkcode ping} yields typed events and a summary:
 *
 * ```ts
 * import { ping } from "./client.ts";
 * for await (const event of ping({ host: "127.0.0.1", port: 12000, count: 3 })) {
 *   if (event.type === "summary") console.log(event.summary.rtt.avg);
 * }
 * ```
 *
 * @module
 */

import { settings } from "./settings.ts";
import {
  encodeRequest,
  findRecord,
  findRequest,
  randomToken,
  readStampAt,
  SEQ_MODULUS,
} from "./protocol.ts";
import { PingTally, type TallySummary } from "./lib/stats.ts";
import {
  checkPort,
  describeError,
  formatAddress,
  parsePort,
  resolveHost,
  sameAddress,
  unbracket,
  UsageError,
} from "./lib/net.ts";
import { type Datagram, openSocket, Receiver, sleepUntil } from "./lib/socket.ts";
import {
  colored,
  eventLine,
  floodMark,
  headerLine,
  jsonDocument,
  jsonLine,
  pictureLines,
  PingRecords,
  plain,
  type RunOptions,
  summaryLines,
  targetSummaryLine,
} from "./lib/report.ts";
import {
  checkNumber,
  EXIT_ERROR,
  numericFlags,
  type OptionRules,
  parseCommandLine,
  runMain,
  VERSION,
} from "./lib/cli.ts";

/**
 * Resolves `host` and opens the socket a client sends from: an ephemeral
 * port on every address of the host's family, so that replies from the
 * server's address reach it whichever interface they come in on.
 */
async function connectTo(host: string, port: number) {
  const resolved = await resolveHost(host);
  const destination: Deno.NetAddr = { transport: "udp", hostname: resolved.address, port };
  const socket = openSocket(resolved.family === 6 ? "::" : "0.0.0.0", 0);
  return { resolved, destination, socket };
}

/**
 * What {@linkcode ping} does; every field has a default from settings.ts.
 *
 * @example
 * ```ts
 * import { ping, type PingOptions } from "./client.ts";
 * const options: PingOptions = { host: "127.0.0.1", port: 12000, count: 5, interval: 0.2 };
 * for await (const event of ping(options)) console.log(event.type);
 * ```
 */
export interface PingOptions {
  /** Host name or IP literal of the echo service. */
  host?: string;
  /** The echo service's port, 1-65535. */
  port?: number;
  /** Requests to send; `Infinity` with a `deadline` sends until it. */
  count?: number;
  /** Seconds between sends, on a fixed schedule from the first. */
  interval?: number;
  /** Seconds to wait for each reply before reporting it lost. */
  timeout?: number;
  /** Bytes per request datagram (the record is never cut, so at least its
   * own length is sent). */
  size?: number;
  /** Seconds after which the run ends, whatever is still outstanding. */
  deadline?: number;
  /** The run's token; random by default. */
  token?: string;
  /** Ends the run early; the summary still comes. */
  signal?: AbortSignal;
  /** Like ping -f: send as soon as the previous reply is in, and at least
   * every {@linkcode FLOOD_GAP_MS} ms; `interval` is ignored. */
  flood?: boolean;
  /** Ask a udping server to stamp replies, which tells upstream from
   * downstream loss (default true; needs a little padding). */
  stamp?: boolean;
}

/**
 * Why a datagram was not counted as a reply.
 *
 * @example
 * ```ts
 * import { ping } from "./client.ts";
 * for await (const event of ping({ count: 3 })) {
 *   if (event.type === "stray") console.log(event.reason); // e.g. "wrong-token"
 * }
 * ```
 */
export type StrayReason = "foreign-address" | "no-record" | "wrong-token" | "unknown-seq";

/**
 * What {@linkcode ping} yields, in the order things happen.
 *
 * @example
 * ```ts
 * import { ping, type PingEvent } from "./client.ts";
 * const events: PingEvent[] = [];
 * for await (const event of ping({ count: 3 })) events.push(event);
 * ```
 */
export type PingEvent =
  | {
    type: "reply";
    seq: number;
    /** Round-trip time in ms, from the client's monotonic clock. */
    rtt: number;
    bytes: number;
    from: string;
    /** It came after its timeout had been reported. */
    late: boolean;
    /** A later request's reply came before it. */
    reordered: boolean;
  }
  | { type: "duplicate"; seq: number; rtt: number; bytes: number; from: string }
  | { type: "timeout"; seq: number }
  /** A request went out; `time` is the send time in ms since the epoch. */
  | { type: "sent"; seq: number; bytes: number; time: number }
  | { type: "error"; seq: number; target: string; message: string }
  | { type: "stray"; reason: StrayReason; bytes: number; from: string }
  | { type: "summary"; summary: PingSummary };

/** The figures of a finished run: every counter of {@linkcode TallySummary}
 * and where and how long.
 *
 * @example
 * ```ts
 * import { ping, type PingSummary } from "./client.ts";
 * let summary: PingSummary | undefined;
 * for await (const event of ping({ count: 3 })) if (event.type === "summary") summary = event.summary;
 * console.log(summary?.loss, summary?.rtt.p50);
 * ```
 */
export interface PingSummary extends TallySummary {
  /** The target as given, `host:port`. */
  target: string;
  /** The address pinged, `ip:port`. */
  address: string;
  /** Milliseconds from the first send until the last request was settled. */
  time: number;
}

/** The limits of each numeric option, shared by {@linkcode ping} and the
 * command line.
 *
 * @example
 * ```ts
 * import { OPTION_RULES } from "./client.ts";
 * OPTION_RULES.count.flag; // "-c"
 * ```
 */
export const OPTION_RULES = {
  count: { flag: "-c", rule: { min: 1, integer: true, unbounded: true } },
  interval: { flag: "-i", rule: { min: 0, aboveMin: true } },
  timeout: { flag: "-W", rule: { min: 0, aboveMin: true } },
  size: { flag: "-s", rule: { min: 0, max: 65507, integer: true } },
  deadline: { flag: "-w", rule: { min: 0, aboveMin: true } },
  retries: { flag: "--retries", rule: { min: 0, integer: true } },
} as const satisfies OptionRules;

function checkOption(name: keyof typeof OPTION_RULES, value: number): number {
  return checkNumber(name, value, OPTION_RULES[name].rule);
}

/** With `flood`, the longest wait between sends while a reply is
 * outstanding: ping -f's 100 requests per second at the least.
 *
 * @example
 * ```ts
 * import { FLOOD_GAP_MS } from "./client.ts";
 * console.log(`at least ${1000 / FLOOD_GAP_MS} requests a second`);
 * ```
 */
export const FLOOD_GAP_MS = 10;
/** After the last request is settled, how long the run still listens for
 * a duplicate that was sent right behind its original.
 *
 * @example
 * ```ts
 * import { LINGER_MS } from "./client.ts";
 * console.log(`a run ends ${LINGER_MS} ms after its last request is settled`);
 * ```
 */
export const LINGER_MS = 10;

/**
 * Pings `host:port`, yielding an event for each reply, duplicate, timeout,
 * failed send and stray datagram as it happens, and a `summary` event last.
 * Requests go out on a fixed schedule (request n at start + n·interval),
 * several in flight when the interval is shorter than the timeout.
 *
 * Throws {@linkcode UsageError} for an option out of range or a host that
 * does not resolve, and a `Deno.errors` error (`AddrInUse`, …) when no socket can be opened.
 *
 * @example
 * ```ts
 * import { ping } from "./client.ts";
 * for await (const event of ping({ port: 12000, count: 3, interval: 0.2 })) {
 *   console.log(event.type);
 * }
 * ```
 */
export async function* ping(options: PingOptions = {}): AsyncGenerator<PingEvent, PingSummary> {
  const host = options.host ?? settings.host;
  const port = options.port ?? settings.port;
  const count = checkOption(
    "count",
    options.count ?? (options.deadline === undefined ? settings.count : Infinity),
  );
  const flood = options.flood ?? false;
  const intervalMs = flood
    ? 0
    : checkOption("interval", options.interval ?? settings.interval) * 1000;
  const timeoutMs = checkOption("timeout", options.timeout ?? settings.timeout) * 1000;
  const size = checkOption("size", options.size ?? settings.size);
  const deadlineMs = options.deadline === undefined
    ? Infinity
    : checkOption("deadline", options.deadline) * 1000;
  const token = (options.token ?? randomToken()).toUpperCase();
  const tokenValue = parseInt(token, 16);
  const stamp = options.stamp ?? true;
  const { signal } = options;

  const target = formatAddress(unbracket(host), checkPort(port));
  const { resolved, destination, socket } = await connectTo(host, port);
  const receiver = new Receiver(socket);
  const inFlight = Math.ceil(timeoutMs / (flood ? FLOOD_GAP_MS : intervalMs));
  const tally = new PingTally(Math.min(count, inFlight), timeoutMs);

  /** Decides what a datagram is and records it. */
  const classify = ({ data, from: source }: Datagram, receivedAt: number): PingEvent => {
    const from = formatAddress(source.hostname, source.port);
    const bytes = data.length;
    const stray = (reason: StrayReason): PingEvent => {
      tally.stray();
      return { type: "stray", reason, bytes, from };
    };
    if (source.port !== port || !sameAddress(source.hostname, resolved.address)) {
      return stray("foreign-address");
    }
    // Most servers send the record back at the start of the datagram: read it
    // from bytes. A prefix (OK..., Data received: ) takes the search.
    const record = findRequest(data) ?? findRecord(data);
    if (record === null) return stray("no-record");
    const sameToken = "tokenValue" in record
      ? record.tokenValue === tokenValue
      : record.token === token;
    if (!sameToken) return stray("wrong-token");
    const reading = readStampAt(data, record.paddingOffset);
    const { seq } = record;
    const verdict = tally.reply(
      seq,
      receivedAt,
      reading.kind === "stamped" ? reading.stamp : undefined,
    );
    if (verdict.kind === "unknown-seq") return stray("unknown-seq");
    if (verdict.kind === "duplicate") {
      return { type: "duplicate", seq, rtt: verdict.rtt, bytes, from };
    }
    const { rtt, late, reordered } = verdict;
    return { type: "reply", seq, rtt, bytes, from, late, reordered };
  };

  const start = performance.now();
  const endAt = start + deadlineMs;
  const lingerMs = Math.min(LINGER_MS, timeoutMs);
  let lastSendAt = start;
  const nextSendAt = () => {
    if (tally.transmitted >= count) return Infinity;
    if (!flood) return start + tally.transmitted * intervalMs;
    return tally.outstanding === 0 ? 0 : lastSendAt + FLOOD_GAP_MS;
  };
  let settledAt: number | undefined;
  try {
    while (!signal?.aborted) {
      let now = performance.now();
      if (now >= endAt) break;

      for (let due = nextSendAt(); due <= now; due = nextSendAt()) {
        const seq = (tally.transmitted + 1) % SEQ_MODULUS;
        const sentAt = performance.now();
        const sent = performance.timeOrigin + sentAt;
        const bytes = encodeRequest({ seq, sent, token, size, stamp });
        tally.sent(seq, sentAt, due || sentAt);
        lastSendAt = sentAt;
        try {
          await socket.send(bytes, destination);
          yield { type: "sent", seq, bytes: bytes.length, time: sent };
        } catch (error) {
          tally.sendFailed(seq);
          yield { type: "error", seq, target, message: describeError(error) };
        }
        now = performance.now();
      }

      for (const seq of tally.expire(now)) yield { type: "timeout", seq };
      if (tally.transmitted >= count && tally.settled()) settledAt ??= now;
      const lingerEnd = settledAt === undefined ? Infinity : settledAt + lingerMs;
      if (now >= lingerEnd) break;

      const wake = Math.min(nextSendAt(), tally.nextTimeout(), endAt, lingerEnd);
      const datagram = await receiver.next(wake, signal);
      if (datagram === undefined) continue;

      // Timeouts that fell due while we waited come first, so the lines
      // stay in the order things happened.
      const receivedAt = performance.now();
      for (const seq of tally.expire(receivedAt)) yield { type: "timeout", seq };
      yield classify(datagram, receivedAt);
    }
  } finally {
    receiver.close();
    socket.close();
  }

  const end = settledAt ?? performance.now();
  const summary: PingSummary = {
    target,
    address: formatAddress(resolved.address, port),
    ...tally.summary(),
    time: tally.transmitted > 0 ? end - start : 0,
  };
  yield { type: "summary", summary };
  return summary;
}

/**
 * What {@linkcode chat} does.
 *
 * @example
 * ```ts
 * import { chat, type ChatOptions } from "./client.ts";
 * const options: ChatOptions = { port: 12000, timeout: 0.5, retries: 2 };
 * for await (const event of chat(["hello"], options)) console.log(event.type);
 * ```
 */
export interface ChatOptions {
  /** Host name or IP literal of the server. */
  host?: string;
  /** The server's port, 1-65535. */
  port?: number;
  /** Seconds to wait for a reply to each line. */
  timeout?: number;
  /** How many times to resend a line that got no reply in time. */
  retries?: number;
  /** Ends the chat early. */
  signal?: AbortSignal;
}

/**
 * What {@linkcode chat} yields.
 *
 * @example
 * ```ts
 * import { chat, type ChatEvent } from "./client.ts";
 * const events: ChatEvent[] = [];
 * for await (const event of chat(["hello"], { port: 12000 })) events.push(event);
 * ```
 */
export type ChatEvent =
  | { type: "sent"; line: string; bytes: number; attempt: number }
  | { type: "reply"; text: string; bytes: number; from: string }
  | { type: "no-reply"; line: string; attempts: number };

/**
 * The textbook UDP client: sends each line of `lines` as one datagram and
 * waits up to the timeout for a datagram back from the server, resending
 * `retries` times. Datagrams from any other address are ignored.
 *
 * @example
 * ```ts
 * import { chat } from "./client.ts";
 * for await (const event of chat(["hello", "world"], { port: 12000 })) {
 *   if (event.type === "reply") console.log(event.text);
 * }
 * ```
 */
export async function* chat(
  lines: AsyncIterable<string> | Iterable<string>,
  options: ChatOptions = {},
): AsyncGenerator<ChatEvent> {
  const port = checkPort(options.port ?? settings.port);
  const timeoutMs = checkOption("timeout", options.timeout ?? settings.timeout) * 1000;
  const retries = checkOption("retries", options.retries ?? 0);
  const { resolved, destination, socket } = await connectTo(options.host ?? settings.host, port);
  const receiver = new Receiver(socket);
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  try {
    for await (const line of lines) {
      const data = encoder.encode(line);
      let answered = false;
      for (let attempt = 1; attempt <= retries + 1 && !answered; attempt++) {
        await socket.send(data, destination);
        yield { type: "sent", line, bytes: data.length, attempt };
        const deadline = performance.now() + timeoutMs;
        for (;;) {
          const datagram = await receiver.next(deadline, options.signal);
          if (datagram === undefined) break;
          const { hostname, port: sourcePort } = datagram.from;
          if (sourcePort !== port || !sameAddress(hostname, resolved.address)) continue;
          answered = true;
          yield {
            type: "reply",
            text: decoder.decode(datagram.data),
            bytes: datagram.data.length,
            from: formatAddress(hostname, sourcePort),
          };
          break;
        }
        if (options.signal?.aborted) return;
      }
      if (!answered) yield { type: "no-reply", line, attempts: retries + 1 };
    }
  } finally {
    receiver.close();
    socket.close();
  }
}

/**
 * What {@linkcode beacon} does.
 *
 * @example
 * ```ts
 * import { beacon, type BeaconOptions } from "./client.ts";
 * const options: BeaconOptions = { port: 12000, text: "tick {seq} at {now}", count: 3 };
 * for await (const sent of beacon(options)) console.log(sent.text);
 * ```
 */
export interface BeaconOptions {
  /** Host name or IP literal to send to. */
  host?: string;
  /** The port to send to, 1-65535. */
  port?: number;
  /** The text to send; `{now}` becomes the ISO time, `{seq}` the counter. */
  text: string;
  /** How many datagrams to send. */
  count?: number;
  /** Seconds between sends, on a fixed schedule. */
  interval?: number;
  /** Ends the beacon early. */
  signal?: AbortSignal;
}

/**
 * Expands `{now}` and `{seq}` in a beacon's text.
 *
 * @example
 * ```ts
 * import { expandBeacon } from "./client.ts";
 * expandBeacon("tick {seq}", 3, new Date()); // "tick 3"
 * ```
 */
export function expandBeacon(text: string, seq: number, now: Date): string {
  return text.replaceAll("{now}", now.toISOString()).replaceAll("{seq}", String(seq));
}

/**
 * The textbook beacon: sends `text` every interval, `count` times, and
 * waits for nothing. Yields what it sent.
 *
 * @example
 * ```ts
 * import { beacon } from "./client.ts";
 * for await (const sent of beacon({ port: 12000, text: "tick {seq}", count: 3 })) {
 *   console.log(sent.text);
 * }
 * ```
 */
export async function* beacon(
  options: BeaconOptions,
): AsyncGenerator<{ seq: number; text: string; bytes: number; to: string }> {
  const port = checkPort(options.port ?? settings.port);
  const count = checkOption("count", options.count ?? settings.count);
  const intervalMs = checkOption("interval", options.interval ?? settings.interval) * 1000;
  const { resolved, destination, socket } = await connectTo(options.host ?? settings.host, port);
  const to = formatAddress(resolved.address, port);
  const encoder = new TextEncoder();
  const start = performance.now();
  try {
    for (let seq = 1; seq <= count && !options.signal?.aborted; seq++) {
      await sleepUntil(start + (seq - 1) * intervalMs, options.signal);
      if (options.signal?.aborted) break;
      const text = expandBeacon(options.text, seq, new Date());
      const data = encoder.encode(text);
      await socket.send(data, destination);
      yield { seq, text, bytes: data.length, to };
    }
  } finally {
    socket.close();
  }
}

/**
 * Splits a byte stream into lines (without their `\n` or `\r\n`).
 *
 * @example
 * ```ts
 * import { readLines } from "./client.ts";
 * for await (const line of readLines(Deno.stdin.readable)) console.log(line);
 * ```
 */
export async function* readLines(readable: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of readable.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    for (const part of parts) yield part.replace(/\r$/, "");
  }
  if (rest !== "") yield rest;
}

/**
 * A host and port to ping.
 *
 * @example
 * ```ts
 * import { pingAll, type Target } from "./client.ts";
 * const targets: Target[] = [{ host: "127.0.0.1", port: 12000 }, { host: "::1", port: 12000 }];
 * for await (const { target, event } of pingAll(targets)) console.log(target, event.type);
 * ```
 */
export interface Target {
  /** Host name or IP literal. */
  host: string;
  /** Port, 1-65535. */
  port: number;
}

/** `host:port`, `[v6]:port`: one positional that names a whole target. */
const TARGET = /^(\[[^\]]+\]|[^:\s]+):(\d+)$/;

/**
 * Reads the positional arguments: `[host] [port]` (one target, defaults
 * from settings.ts) or one or more `host:port` (`[v6]:port`) targets.
 *
 * @example
 * ```ts
 * import { parseTargets } from "./client.ts";
 * parseTargets(["a:1", "[::1]:2"]); // [{ host: "a", port: 1 }, { host: "::1", port: 2 }]
 * ```
 */
export function parseTargets(positionals: string[]): Target[] {
  const [first, second] = positionals;
  if (first === undefined) return [{ host: settings.host, port: settings.port }];
  if (!TARGET.test(first)) {
    if (positionals.length > 2) {
      throw new UsageError(`unexpected argument '${positionals[2]}' (see --help)`);
    }
    return [{ host: first, port: second === undefined ? settings.port : parsePort(second) }];
  }
  return positionals.map((text) => {
    const match = TARGET.exec(text);
    if (match === null) throw new UsageError(`'${text}' is not a target: write host:port`);
    return { host: unbracket(match[1]!), port: parsePort(match[2]!) };
  });
}

/**
 * An event of one of several runs, with the target it belongs to.
 *
 * @example
 * ```ts
 * import { pingAll, type TargetEvent } from "./client.ts";
 * const seen: TargetEvent[] = [];
 * for await (const each of pingAll([{ host: "127.0.0.1", port: 12000 }])) seen.push(each);
 * ```
 */
export interface TargetEvent {
  /** The target as given, `host:port`. */
  target: string;
  /** What happened, as {@linkcode ping} yields it. */
  event: PingEvent;
}

/**
 * Pings several targets at once, all on the same schedule, yielding every
 * run's events as they happen, each with its target; each run ends with its
 * own summary event.
 *
 * @example
 * ```ts
 * import { pingAll } from "./client.ts";
 * const targets = [{ host: "127.0.0.1", port: 12000 }, { host: "::1", port: 12000 }];
 * for await (const { target, event } of pingAll(targets, { count: 3 })) {
 *   if (event.type === "summary") console.log(target, event.summary.loss);
 * }
 * ```
 */
export async function* pingAll(
  targets: Target[],
  options: Omit<PingOptions, "host" | "port"> = {},
): AsyncGenerator<TargetEvent> {
  const queue: TargetEvent[] = [];
  let wake: (() => void) | undefined;
  let failure: unknown;
  let running = targets.length;
  const runs = targets.map(async ({ host, port }) => {
    const target = formatAddress(host, port);
    try {
      for await (const event of ping({ ...options, host, port })) {
        queue.push({ target, event });
        wake?.();
      }
    } catch (error) {
      failure ??= error;
    } finally {
      running--;
      wake?.();
    }
  });
  while (running > 0 || queue.length > 0) {
    if (queue.length === 0) await new Promise<void>((resolve) => wake = resolve);
    wake = undefined;
    while (queue.length > 0) yield queue.shift()!;
    if (failure !== undefined) break;
  }
  await Promise.all(runs);
  if (failure !== undefined) throw failure;
}

async function runMany(
  targets: Target[],
  flags: PingFlags,
  values: Record<string, string | boolean | undefined>,
  signal: AbortSignal,
): Promise<number> {
  const output = values.json ? "json" : values["json-lines"] ? "json-lines" : "text";
  const paint = Deno.stdout.isTerminal() && !Deno.noColor && !values["no-color"] ? colored : plain;
  const size = flags.size ?? settings.size;
  if (output === "text") console.log(`PING ${targets.length} targets (udp): ${size} data bytes`);
  const summaries: PingSummary[] = [];
  for await (const { target, event } of pingAll(targets, { ...flags, signal })) {
    if (output === "json-lines") console.log(JSON.stringify({ target, ...event }));
    if (event.type === "summary") summaries.push(event.summary);
    if (output !== "text" || values.quiet) continue;
    const text = eventLine(event, paint);
    if (text !== undefined) console.log(`${target} : ${text}`);
  }
  // Summaries in the order the targets were given.
  const ordered = targets.map(({ host, port }) =>
    summaries.find((summary) => summary.target === formatAddress(host, port))!
  );
  if (output === "json") console.log(JSON.stringify(ordered, null, 2));
  if (output === "text") {
    console.log();
    for (const summary of ordered) console.log(targetSummaryLine(summary));
  }
  return ordered.every((summary) => exitStatus(summary, flags.count, flags.deadline) === 0) ? 0 : 1;
}

function printUsage(): void {
  console.log(`udping client: ping a UDP echo service.

Usage:
  deno run --allow-net client.ts [host] [port] [options]
  deno run --allow-net client.ts host:port host:port ... [options]

Arguments:
  host               the server (default ${settings.host}); a name, IPv4 or IPv6 literal
  port               the server's port, 1-65535 (default ${settings.port})

Ping (default mode):
  -c, --count N      requests to send (default ${settings.count}; with -w and no -c: until the deadline)
  -i, --interval S   seconds between requests, fractions allowed (default ${settings.interval})
  -W, --timeout S    seconds to wait for each reply (default ${settings.timeout})
  -s, --size N       bytes per request, 0-65507 (default ${settings.size})
  -w, --deadline S   stop after S seconds, whatever is outstanding
  -f, --flood        send as soon as each reply is in (at least every ${FLOOD_GAP_MS} ms), print
                     a dot per request and erase it per reply, like ping -f
  -q, --quiet        print only the first line and the summary
  --json             print one JSON document at the end (per-request records unless -q)
  --json-lines       print one JSON object per event as it happens, the summary last
  --no-color         no colour and no RTT picture, even on a terminal (so does NO_COLOR)

Other modes:
  --chat             send each line of standard input, print each reply
  --retries N        with --chat: resend a line N times if no reply came (default 0)
  --send TEXT        send TEXT every interval, -c times; {now} and {seq} expand

Several targets (like fping): client.ts HOST:PORT HOST:PORT ... ([v6]:PORT for IPv6)
                     pings all at once; a line per reply prefixed with its target, then
                     one summary line per target; exit 0 only if every target answered

  -h, --help         print this help
  -V, --version      print the version

Exit status: 0 a reply arrived (chat: every line answered), 1 no reply
(or, with -c and -w, fewer than -c by the deadline), 2 an error.`);
}

const FLAGS = {
  count: { type: "string", short: "c" },
  interval: { type: "string", short: "i" },
  timeout: { type: "string", short: "W" },
  size: { type: "string", short: "s" },
  deadline: { type: "string", short: "w" },
  quiet: { type: "boolean", short: "q" },
  flood: { type: "boolean", short: "f" },
  json: { type: "boolean" },
  "json-lines": { type: "boolean" },
  "no-color": { type: "boolean" },
  chat: { type: "boolean" },
  retries: { type: "string" },
  send: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

type PingFlags = { [Name in keyof typeof OPTION_RULES]: number | undefined };

/**
 * The command line: parses `args`, runs the chosen mode, prints as ping
 * does and returns the exit status.
 *
 * @example
 * ```ts
 * import { main } from "./client.ts";
 * const status = await main(["127.0.0.1", "12000", "-c", "3"]); // 0, 1 or 2
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const line = parseCommandLine(args, FLAGS);
  if (line.values.help) {
    printUsage();
    return 0;
  }
  if (line.values.version) {
    console.log(`udping client ${VERSION}`);
    return 0;
  }
  const targets = parseTargets(line.positionals);
  const [{ host, port }] = targets as [Target];
  if (!line.values.flood && /^[+-]?0*\.?0*$/.test(String(line.values.interval ?? "1"))) {
    throw new UsageError(
      `-i must be a number above 0, got '${line.values.interval}' (-f sends as fast as replies come)`,
    );
  }
  const flags = numericFlags(line, OPTION_RULES);
  const controller = new AbortController();
  const stop = () => controller.abort();
  Deno.addSignalListener("SIGINT", stop);
  try {
    if (line.values.chat) return await runChat(host, port, flags, controller.signal);
    if (typeof line.values.send === "string") {
      const sends = beacon({
        host,
        port,
        text: line.values.send,
        ...flags,
        signal: controller.signal,
      });
      for await (const sent of sends) {
        console.log(`sent ${sent.bytes} bytes to ${sent.to}: seq=${sent.seq} ${sent.text}`);
      }
      return 0;
    }
    if (line.values.json && line.values["json-lines"]) {
      throw new UsageError("choose one of --json and --json-lines");
    }
    if (targets.length > 1) {
      if (line.values.flood) throw new UsageError("-f takes one target");
      return await runMany(targets, flags, line.values, controller.signal);
    }
    return await runPing({
      host,
      port,
      flags,
      flood: Boolean(line.values.flood),
      quiet: Boolean(line.values.quiet),
      output: line.values.json ? "json" : line.values["json-lines"] ? "json-lines" : "text",
      // Deno.noColor reflects NO_COLOR without needing --allow-env.
      color: Deno.stdout.isTerminal() && !Deno.noColor && !line.values["no-color"],
      signal: controller.signal,
    });
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
  }
}

/** How the command line runs a ping. */
interface PingRun {
  host: string;
  port: number;
  flags: PingFlags;
  flood: boolean;
  quiet: boolean;
  output: "text" | "json" | "json-lines";
  /** Colour and the RTT picture: on a terminal only. */
  color: boolean;
  signal: AbortSignal;
}

/**
 * The exit status of a finished run, as ping's.
 *
 * @example
 * ```ts
 * import { exitStatus, ping } from "./client.ts";
 * for await (const event of ping({ count: 3 })) {
 *   if (event.type === "summary") console.log(exitStatus(event.summary)); // 0 if a reply came
 * }
 * ```
 */
export function exitStatus(summary: PingSummary, count?: number, deadline?: number): number {
  const short = deadline !== undefined && count !== undefined && summary.received < count;
  return summary.received > 0 && !short ? 0 : 1;
}

async function runPing(run: PingRun): Promise<number> {
  const { flags, output, quiet } = run;
  const paint = run.color ? colored : plain;
  const size = flags.size ?? settings.size;
  const records = output === "json" && !quiet ? new PingRecords() : undefined;
  const write = (text: string) => Deno.stdout.writeSync(new TextEncoder().encode(text));
  if (output === "text") {
    console.log(headerLine(formatAddress(unbracket(run.host), run.port), size));
  }
  const events = ping({
    host: run.host,
    port: run.port,
    ...flags,
    flood: run.flood,
    signal: run.signal,
  });
  for await (const event of events) {
    if (event.type === "summary") {
      const { summary } = event;
      if (output === "json") {
        console.log(jsonDocument(summary, runOptions(run), records?.list()));
      } else if (output === "json-lines") {
        console.log(jsonLine(event));
      } else {
        if (run.flood && !quiet) write("\n");
        for (const text of summaryLines(summary)) console.log(text);
        if (run.color) { for (const text of pictureLines(summary, paint)) console.log(text); }
      }
      return exitStatus(summary, flags.count, flags.deadline);
    }
    records?.add(event);
    if (output === "json-lines") console.log(jsonLine(event));
    if (output !== "text" || quiet) continue;
    if (run.flood) {
      write(floodMark(event));
      continue;
    }
    const text = eventLine(event, paint);
    if (text !== undefined) console.log(text);
  }
  return EXIT_ERROR;
}

function runOptions(run: PingRun): RunOptions {
  const { flags } = run;
  return {
    count: flags.count ?? (flags.deadline === undefined ? settings.count : null),
    interval: run.flood ? 0 : flags.interval ?? settings.interval,
    timeout: flags.timeout ?? settings.timeout,
    size: flags.size ?? settings.size,
    deadline: flags.deadline ?? null,
    flood: run.flood,
  };
}

async function runChat(
  host: string,
  port: number,
  flags: PingFlags,
  signal: AbortSignal,
): Promise<number> {
  const interactive = Deno.stdin.isTerminal();
  const encoder = new TextEncoder();
  const prompt = () => interactive && Deno.stdout.writeSync(encoder.encode("> "));
  async function* promptedLines() {
    prompt();
    for await (const text of readLines(Deno.stdin.readable)) {
      yield text;
      prompt();
    }
  }
  let unanswered = 0;
  for await (const event of chat(promptedLines(), { host, port, ...flags, signal })) {
    if (event.type === "reply") console.log(`reply from ${event.from}: ${event.text}`);
    if (event.type === "sent" && event.attempt > 1) {
      console.log(`no reply, resending (attempt ${event.attempt})`);
    }
    if (event.type === "no-reply") {
      unanswered++;
      console.log(`no reply after ${event.attempts} attempt(s)`);
    }
  }
  if (interactive) console.log();
  return unanswered === 0 ? 0 : 1;
}

if (import.meta.main) {
  await runMain("client.ts", () => main(Deno.args));
}
