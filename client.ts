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
import { encodeRequest, findRecord, randomToken, SEQ_MODULUS } from "./protocol.ts";
import { lossPercent, RttStats, type RttSummary } from "./stats.ts";
import {
  checkPort,
  describeError,
  formatAddress,
  parsePort,
  resolveHost,
  sameAddress,
  unbracket,
  UsageError,
} from "./net.ts";
import { type Datagram, openSocket, Receiver, sleepUntil } from "./datagram.ts";
import { eventLine, headerLine, summaryLines } from "./report.ts";
import {
  checkNumber,
  EXIT_ERROR,
  numericFlags,
  type OptionRules,
  parseCommandLine,
  runMain,
} from "./cli.ts";

/** What {@linkcode ping} does; every field has a default from settings.ts. */
export interface PingOptions {
  /** Host name or IP literal of the echo service. */
  host?: string;
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
}

/** Why a datagram was not counted as a reply. */
export type StrayReason = "foreign-address" | "no-record" | "wrong-token" | "unknown-seq";

/** What {@linkcode ping} yields, in the order things happen. */
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
  | { type: "error"; seq: number; target: string; message: string }
  | { type: "stray"; reason: StrayReason; bytes: number; from: string }
  | { type: "summary"; summary: PingSummary };

/** The figures of a finished run. */
export interface PingSummary {
  /** The target as given, `host:port`. */
  target: string;
  /** The address pinged, `ip:port`. */
  address: string;
  transmitted: number;
  /** Requests answered at least once, late ones included. */
  received: number;
  duplicates: number;
  late: number;
  reordered: number;
  stray: number;
  /** Sends that failed. */
  errors: number;
  /** Packet loss in percent. */
  loss: number;
  /** Milliseconds from the first send to the end of the run. */
  time: number;
  rtt: RttSummary;
}

/** The limits of each numeric option, shared by {@linkcode ping} and the
 * command line. */
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

const PENDING = 1;
const ANSWERED = 2;
const TIMED_OUT = 3;
const ANSWERED_LATE = 4;
const SEND_FAILED = 5;

/**
 * Remembers, in fixed memory, when each outstanding request was sent and
 * what became of it. A request is found by its seq modulo the ring's size
 * (a power of two, so it divides 2^32 and wrapping seqs stay aligned).
 */
class SentRing {
  readonly #mask: number;
  readonly #seq: Float64Array;
  readonly #index: Float64Array;
  readonly #sentAt: Float64Array;
  readonly #state: Uint8Array;

  constructor(inFlight: number) {
    const size = 2 ** Math.min(22, Math.max(16, Math.ceil(Math.log2(inFlight + 2))));
    this.#mask = size - 1;
    this.#seq = new Float64Array(size).fill(-1);
    this.#index = new Float64Array(size);
    this.#sentAt = new Float64Array(size);
    this.#state = new Uint8Array(size);
  }

  /** Records request number `index` (0-based), sent as `seq`. */
  add(index: number, seq: number, sentAt: number): void {
    const slot = seq & this.#mask;
    this.#seq[slot] = seq;
    this.#index[slot] = index;
    this.#sentAt[slot] = sentAt;
    this.#state[slot] = PENDING;
  }

  /** The slot of `seq`, or -1 when it was never sent or is long forgotten. */
  find(seq: number): number {
    const slot = seq & this.#mask;
    return this.#seq[slot] === seq ? slot : -1;
  }

  /** The slot of request number `index`, or -1 when it was overwritten. */
  slotOfIndex(index: number): number {
    return this.find((index + 1) % SEQ_MODULUS);
  }

  state(slot: number): number {
    return this.#state[slot] ?? 0;
  }
  setState(slot: number, state: number): void {
    this.#state[slot] = state;
  }
  sentAt(slot: number): number {
    return this.#sentAt[slot] ?? 0;
  }
  index(slot: number): number {
    return this.#index[slot] ?? 0;
  }
}

/**
 * Pings `host:port`, yielding an event for each reply, duplicate, timeout,
 * failed send and stray datagram as it happens, and a `summary` event last.
 * Requests go out on a fixed schedule (request n at start + n·interval),
 * several in flight when the interval is shorter than the timeout.
 *
 * Throws {@linkcode UsageError} for an option out of range or a host that
 * does not resolve, and a `SocketError` when no socket can be opened.
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
  const intervalMs = checkOption("interval", options.interval ?? settings.interval) * 1000;
  const timeoutMs = checkOption("timeout", options.timeout ?? settings.timeout) * 1000;
  const size = checkOption("size", options.size ?? settings.size);
  const deadlineMs = options.deadline === undefined
    ? Infinity
    : checkOption("deadline", options.deadline) * 1000;
  const token = (options.token ?? randomToken()).toUpperCase();
  const { signal } = options;

  const target = formatAddress(unbracket(host), checkPort(port));
  const resolved = await resolveHost(host);
  const destination: Deno.NetAddr = { transport: "udp", hostname: resolved.address, port };
  const socket = openSocket(resolved.family === 6 ? "::" : "0.0.0.0", 0);
  const receiver = new Receiver(socket);
  const ring = new SentRing(Math.ceil(timeoutMs / intervalMs));
  const stats = new RttStats();
  const counts = { transmitted: 0, received: 0, duplicates: 0, late: 0, reordered: 0 };
  let stray = 0;
  let errors = 0;
  let timeoutCursor = 0; // the oldest request whose fate may still be open
  let highestIndexAnswered = -1;

  /** Reports, oldest first, the requests whose timeout has passed by `now`. */
  function* expire(now: number): Generator<PingEvent> {
    for (; timeoutCursor < counts.transmitted; timeoutCursor++) {
      const slot = ring.slotOfIndex(timeoutCursor);
      if (slot < 0 || ring.state(slot) !== PENDING) continue;
      if (ring.sentAt(slot) + timeoutMs > now) break;
      ring.setState(slot, TIMED_OUT);
      yield { type: "timeout", seq: (timeoutCursor + 1) % SEQ_MODULUS };
    }
  }

  /** Decides what a datagram is, updating the ring and the counters. */
  const classify = ({ data, from: source }: Datagram, receivedAt: number): PingEvent => {
    const from = formatAddress(source.hostname, source.port);
    const bytes = data.length;
    if (source.port !== port || !sameAddress(source.hostname, resolved.address)) {
      return { type: "stray", reason: "foreign-address", bytes, from };
    }
    const record = findRecord(data);
    if (record === null) return { type: "stray", reason: "no-record", bytes, from };
    if (record.token !== token) return { type: "stray", reason: "wrong-token", bytes, from };
    const slot = ring.find(record.seq);
    const state = slot < 0 ? 0 : ring.state(slot);
    if (state === 0 || state === SEND_FAILED) {
      return { type: "stray", reason: "unknown-seq", bytes, from };
    }
    const seq = record.seq;
    const rtt = receivedAt - ring.sentAt(slot);
    if (state === ANSWERED || state === ANSWERED_LATE) {
      counts.duplicates++;
      return { type: "duplicate", seq, rtt, bytes, from };
    }
    const late = state === TIMED_OUT;
    const index = ring.index(slot);
    const reordered = index < highestIndexAnswered;
    highestIndexAnswered = Math.max(highestIndexAnswered, index);
    ring.setState(slot, late ? ANSWERED_LATE : ANSWERED);
    stats.add(rtt);
    counts.received++;
    if (late) counts.late++;
    if (reordered) counts.reordered++;
    return { type: "reply", seq, rtt, bytes, from, late, reordered };
  };

  const start = performance.now();
  const endAt = start + deadlineMs;
  const scheduledSend = (index: number) => start + index * intervalMs;
  let end = start;
  try {
    while (!signal?.aborted) {
      let now = performance.now();
      if (now >= endAt) break;

      while (counts.transmitted < count && scheduledSend(counts.transmitted) <= now) {
        const index = counts.transmitted++;
        const seq = (index + 1) % SEQ_MODULUS;
        const sentAt = performance.now();
        const bytes = encodeRequest({ seq, sent: performance.timeOrigin + sentAt, token, size });
        ring.add(index, seq, sentAt);
        try {
          await socket.send(bytes, destination);
        } catch (error) {
          errors++;
          ring.setState(ring.find(seq), SEND_FAILED);
          yield { type: "error", seq, target, message: describeError(error) };
        }
        now = performance.now();
      }

      yield* expire(now);
      if (counts.transmitted >= count && timeoutCursor >= counts.transmitted) break;

      const nextSend = counts.transmitted < count ? scheduledSend(counts.transmitted) : Infinity;
      const oldest = ring.slotOfIndex(timeoutCursor);
      const nextTimeout = timeoutCursor < counts.transmitted && oldest >= 0
        ? ring.sentAt(oldest) + timeoutMs
        : Infinity;
      const datagram = await receiver.next(Math.min(nextSend, nextTimeout, endAt), signal);
      if (datagram === undefined) continue;

      // Timeouts that fell due while we waited come first, so the lines
      // stay in the order things happened.
      const receivedAt = performance.now();
      yield* expire(receivedAt);
      const event = classify(datagram, receivedAt);
      if (event.type === "stray") stray++;
      yield event;
    }
  } finally {
    end = performance.now();
    socket.close();
  }

  const summary: PingSummary = {
    target,
    address: formatAddress(resolved.address, port),
    ...counts,
    stray,
    errors,
    loss: lossPercent(counts.transmitted, counts.received),
    time: counts.transmitted > 0 ? end - start : 0,
    rtt: stats.summary(),
  };
  yield { type: "summary", summary };
  return summary;
}

/** What {@linkcode chat} does. */
export interface ChatOptions {
  host?: string;
  port?: number;
  /** Seconds to wait for a reply to each line. */
  timeout?: number;
  /** How many times to resend a line that got no reply in time. */
  retries?: number;
  signal?: AbortSignal;
}

/** What {@linkcode chat} yields. */
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
  const resolved = await resolveHost(options.host ?? settings.host);
  const destination: Deno.NetAddr = { transport: "udp", hostname: resolved.address, port };
  const socket = openSocket(resolved.family === 6 ? "::" : "0.0.0.0", 0);
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
    socket.close();
  }
}

/** What {@linkcode beacon} does. */
export interface BeaconOptions {
  host?: string;
  port?: number;
  /** The text to send; `{now}` becomes the ISO time, `{seq}` the counter. */
  text: string;
  count?: number;
  /** Seconds between sends, on a fixed schedule. */
  interval?: number;
  signal?: AbortSignal;
}

/** Expands `{now}` and `{seq}` in a beacon's text. */
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
  const resolved = await resolveHost(options.host ?? settings.host);
  const destination: Deno.NetAddr = { transport: "udp", hostname: resolved.address, port };
  const to = formatAddress(resolved.address, port);
  const socket = openSocket(resolved.family === 6 ? "::" : "0.0.0.0", 0);
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

/** Splits a byte stream into lines (without their `\n` or `\r\n`). */
export async function* readLines(readable: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of readable.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    for (const part of parts) yield part.replace(/\r$/, "");
  }
  if (rest !== "") yield rest;
}

function printUsage(): void {
  console.log(`udping client: ping a UDP echo service.

Usage:
  deno run --allow-net client.ts [host] [port] [options]

Arguments:
  host               the server (default ${settings.host}); a name, IPv4 or IPv6 literal
  port               the server's port, 1-65535 (default ${settings.port})

Ping (default mode):
  -c, --count N      requests to send (default ${settings.count}; with -w and no -c: until the deadline)
  -i, --interval S   seconds between requests, fractions allowed (default ${settings.interval})
  -W, --timeout S    seconds to wait for each reply (default ${settings.timeout})
  -s, --size N       bytes per request, 0-65507 (default ${settings.size})
  -w, --deadline S   stop after S seconds, whatever is outstanding
  -q, --quiet        print only the first line and the summary

Other modes:
  --chat             send each line of standard input, print each reply
  --retries N        with --chat: resend a line N times if no reply came (default 0)
  --send TEXT        send TEXT every interval, -c times; {now} and {seq} expand

  -h, --help         print this help

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
  chat: { type: "boolean" },
  retries: { type: "string" },
  send: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type PingFlags = { [Name in keyof typeof OPTION_RULES]: number | undefined };

/**
 * The command line: parses `args`, runs the chosen mode, prints as ping
 * does and returns the exit status.
 */
export async function main(args: string[]): Promise<number> {
  const line = parseCommandLine(args, FLAGS);
  if (line.values.help) {
    printUsage();
    return 0;
  }
  const [host = settings.host, portText, ...extra] = line.positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}' (see --help)`);
  const port = portText === undefined ? settings.port : parsePort(portText);
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
    return await runPing(host, port, flags, Boolean(line.values.quiet), controller.signal);
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
  }
}

async function runPing(
  host: string,
  port: number,
  flags: PingFlags,
  quiet: boolean,
  signal: AbortSignal,
): Promise<number> {
  const run = ping({ host, port, ...flags, signal });
  let headerPrinted = false;
  for await (const event of run) {
    if (!headerPrinted) {
      console.log(headerLine(formatAddress(unbracket(host), port), flags.size ?? settings.size));
      headerPrinted = true;
    }
    if (event.type === "summary") {
      for (const text of summaryLines(event.summary)) console.log(text);
      const { received } = event.summary;
      const short = flags.deadline !== undefined && flags.count !== undefined &&
        received < flags.count;
      return received > 0 && !short ? 0 : 1;
    }
    if (quiet) continue;
    const text = eventLine(event);
    if (text !== undefined) console.log(text);
  }
  return EXIT_ERROR;
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
