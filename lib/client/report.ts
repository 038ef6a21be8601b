/**
 * Everything the client prints, in one place: ping's reply lines and
 * summary, the extra summary lines, the RTT picture, flood dots, JSON.
 * Pure functions from events and figures to text.
 *
 * @module
 */

import { styleText } from "node:util";
import type { PingEvent, PingSummary, StrayReason } from "./events.ts";
import type { HistogramRow, TimelineColumn } from "./stats.ts";
import { isoTime } from "../shared/log.ts";

/** Colours text, or leaves it plain. */
export type Paint = (color: "green" | "red" | "yellow" | "dim", text: string) => string;

/** No colour: for pipes, files, NO_COLOR and `--no-color`. */
export const plain: Paint = (_color, text) => text;

/** ANSI colour, for a terminal. */
export const colored: Paint = (color, text) => styleText(color, text, { validateStream: false });

/**
 * An RTT as iputils ping prints it after `time=`: three decimals below 1 ms,
 * two below 10 ms, one below 100 ms, none above.
 */
export function formatTime(ms: number): string {
  if (ms >= 100 - 0.05) return Math.round(ms).toString();
  if (ms >= 10 - 0.005) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}

/** A number as C's `%g` prints it: 6 significant digits, no trailing zeros. */
export function formatG(value: number): string {
  if (value === 0 || !Number.isFinite(value)) return String(value);
  const exponent = Math.floor(Math.log10(Math.abs(Number(value.toPrecision(6)))));
  if (exponent < -4 || exponent >= 6) {
    const [mantissa = "", power = "0"] = value.toExponential(5).split("e");
    const trimmed = mantissa.includes(".") ? mantissa.replace(/\.?0+$/, "") : mantissa;
    const sign = power.startsWith("-") ? "-" : "+";
    return `${trimmed}e${sign}${power.replace(/^[+-]/, "").padStart(2, "0")}`;
  }
  const fixed = value.toFixed(Math.max(0, 5 - exponent));
  return fixed.includes(".") ? fixed.replace(/\.?0+$/, "") : fixed;
}

/**
 * The first line, naming the host as given and the address pinged, as
 * ping does: `PING localhost (127.0.0.1) port 12000 (udp): 64 data bytes`.
 *
 * @example
 * ```ts
 * import { headerLine } from "./report.ts";
 * import { equal } from "node:assert/strict";
 * equal(headerLine("::1", "::1", 9, 64), "PING ::1 (::1) port 9 (udp): 64 data bytes");
 * ```
 */
export function headerLine(host: string, address: string, port: number, size: number): string {
  return `PING ${host} (${address}) port ${port} (udp): ${size} data bytes`;
}

/** How `-D` writes the time before a line: ping's seconds since the Unix
 * epoch, or ISO 8601 local time with its offset. */
export type TimestampFormat = "unix" | "iso";

/**
 * The time `-D` puts before a line: `[1764064800.123456] ` as iputils
 * ping prints it (seconds and microseconds since the Unix epoch), or
 * `[2025-11-25T10:00:00.123456+01:00] `.
 *
 * @example
 * ```ts
 * import { timestampPrefix } from "./report.ts";
 * import { equal } from "node:assert/strict";
 * equal(timestampPrefix(1764064800123.456, "unix"), "[1764064800.123456] ");
 * equal(timestampPrefix(0.5, "unix"), "[0.000500] ");
 * ```
 */
export function timestampPrefix(ms: number, format: TimestampFormat): string {
  if (format === "iso") return `[${isoTime(ms)}] `;
  const micros = Math.round(ms * 1000);
  const seconds = Math.floor(micros / 1_000_000);
  return `[${seconds}.${String(micros - seconds * 1_000_000).padStart(6, "0")}] `;
}

/** The line ping prints for one event, or `undefined` for events it keeps
 * to itself (sends, strays, the summary). */
export function eventLine(event: PingEvent, paint: Paint = plain): string | undefined {
  switch (event.type) {
    case "reply":
    case "duplicate": {
      const changed = event.type === "reply" && event.changed ? ` (${event.changed})` : "";
      const text = `${event.bytes} bytes from ${event.from}: seq=${event.seq} time=${
        formatTime(event.rtt)
      } ms${changed}`;
      const payload = event.type === "reply" ? payloadLine(event.payload) : "";
      if (event.type === "duplicate") return paint("yellow", `${text} (DUP!)`);
      return paint(event.late ? "yellow" : "green", event.late ? `${text} (late)` : text) + payload;
    }
    case "stray":
      // Only with -v, which puts the text in the event: a service that
      // answers with something else than an echo is then seen answering.
      if (event.payload === undefined) return undefined;
      return paint(
        "yellow",
        `${event.bytes} bytes from ${event.from}: stray (${STRAY_WORDS[event.reason]})`,
      ) + payloadLine(event.payload);
    case "timeout":
      return paint("red", `Request timeout for seq=${event.seq}`);
    case "error":
      return paint("red", `From ${event.target}: seq=${event.seq} ${event.message}`);
    case "unreachable":
      return paint(
        "red",
        `From ${event.target} icmp_seq=${event.seq} Destination Port Unreachable`,
      );
    default:
      return undefined;
  }
}

/** Why a datagram was stray, in the words of its `-v` line. */
const STRAY_WORDS: Record<StrayReason, string> = {
  "foreign-address": "from another address",
  "no-record": "no ping record: not an echo",
  "wrong-token": "another run's token",
  "unknown-seq": "a seq this run did not send or has forgotten",
  "before-request": "received before its request was sent",
};

/** A datagram's escaped text on its own line under the event's, or
 * nothing without `-v`. */
function payloadLine(payload: string | undefined): string {
  return payload === undefined ? "" : `\n    "${payload}"`;
}

/** What ping -f prints for an event: a dot per request, a backspace per
 * reply, so the dots left standing are the losses. */
export function floodMark(event: PingEvent): string {
  if (event.type === "sent") return ".";
  if (event.type === "reply" && !event.late) return "\b \b";
  return "";
}

const ms3 = (ms: number) => ms.toFixed(3);

/**
 * ping's summary: a blank line, the header, the counts and (when a reply
 * came) the rtt line; then udping's own lines: percentiles, jitter and
 * IPDV, the loss split and the server's time, reorder/late/stray counts
 * when any is non-zero, and, when no reply came, what that says of the
 * port ({@linkcode portState}).
 */
export function summaryLines(summary: PingSummary): string[] {
  const counts = [
    `${summary.transmitted} packets transmitted`,
    `${summary.received} received`,
  ];
  if (summary.duplicates > 0) counts.push(`+${summary.duplicates} duplicates`);
  if (summary.errors > 0) counts.push(`+${summary.errors} errors`);
  counts.push(`${formatG(summary.loss)}% packet loss`, `time ${Math.round(summary.time)}ms`);
  const lines = ["", `--- ${summary.target} udp ping statistics ---`, counts.join(", ")];
  const { rtt } = summary;
  if (rtt.count > 0) {
    lines.push(
      `rtt min/avg/max/mdev = ${[rtt.min, rtt.avg, rtt.max, rtt.mdev].map(ms3).join("/")} ms`,
    );
    // IPDV needs two consecutive requests answered; the jitter one reply.
    const variation = [`jitter ${ms3(rtt.jitter)} ms`];
    if (!Number.isNaN(rtt.ipdv)) variation.push(`ipdv ${ms3(rtt.ipdv)} ms`);
    lines.push(
      `rtt p50/p90/p99 = ${[rtt.p50, rtt.p90, rtt.p99].map(ms3).join("/")} ms, ${
        variation.join(", ")
      }`,
    );
  }
  for (const [kind, count] of Object.entries(summary.changed ?? {})) {
    lines.push(`replies: ${count} ${kind} by the server`);
  }
  const split = lossSplitLine(summary);
  if (split) lines.push(split);
  if (summary.reordered + summary.late + summary.stray > 0) {
    lines.push(`reordered ${summary.reordered}, late ${summary.late}, stray ${summary.stray}`);
  }
  const state = portState(summary);
  if (state !== undefined) lines.push(`${summary.target}: ${stateText(state, summary)}`);
  return lines;
}

/**
 * What a run that got no reply says of the port pinged: it sent datagrams
 * that are no echo (`not-an-echo`), an ICMP port unreachable came back
 * (`closed`), or nothing came back at all, on a socket that would have
 * heard a port unreachable (`no-answer`: the kernel-stamped one) or not
 * (`closed-or-filtered`: the runtime's). `undefined` when a reply came,
 * or when no request went out.
 *
 * @example
 * ```ts
 * import { portState } from "./report.ts";
 * import { equal } from "node:assert/strict";
 * const strayByReason = { "foreign-address": 0, "no-record": 0, "wrong-token": 0, "unknown-seq": 0, "before-request": 0 };
 * const silent = { received: 0, transmitted: 3, errors: 0, unreachable: 0, strayByReason };
 * equal(portState({ ...silent, clock: "kernel" }), "no-answer");
 * equal(portState({ ...silent, clock: "runtime" }), "closed-or-filtered");
 * ```
 */
export function portState(
  summary: Pick<
    PingSummary,
    "received" | "transmitted" | "errors" | "unreachable" | "strayByReason" | "clock"
  >,
): PortState | undefined {
  if (summary.received > 0 || summary.transmitted === 0) return undefined;
  if (summary.strayByReason["no-record"] > 0) return "not-an-echo";
  if (summary.unreachable > 0) return "closed";
  // Every send failed: the error lines said why.
  if (summary.errors >= summary.transmitted) return undefined;
  return summary.clock === "kernel" ? "no-answer" : "closed-or-filtered";
}

/** See {@linkcode portState}. */
export type PortState = "not-an-echo" | "closed" | "no-answer" | "closed-or-filtered";

function stateText(state: PortState, summary: PingSummary): string {
  switch (state) {
    case "not-an-echo": {
      const count = summary.strayByReason["no-record"];
      return `answering, but not with an echo (${count} ${
        count === 1 ? "datagram" : "datagrams"
      } with no ping record; -v shows them)`;
    }
    case "closed":
      return "closed (port unreachable)";
    case "no-answer":
      return "no answer (filtered or lost)";
    case "closed-or-filtered":
      return "no answer: the port may be closed or filtered (--allow-ffi tells them apart)";
  }
}

function lossSplitLine(summary: PingSummary): string | undefined {
  const lost = summary.transmitted - summary.received;
  const { lossSplit, serverTime } = summary;
  if (summary.stampProblem) {
    return `lost upstream/downstream and server time: unknown (${summary.stampProblem})`;
  }
  if (lossSplit === null) {
    return lost > 0 && summary.received > 0
      ? "lost upstream/downstream: unknown (the server does not stamp replies)"
      : undefined;
  }
  const parts = [`lost upstream ${lossSplit.upstream}, downstream ${lossSplit.downstream}`];
  if (lossSplit.rateLimited > 0) {
    parts[0] += `, rate-limited by the server ${lossSplit.rateLimited}`;
  }
  if (lossSplit.unknown > 0) parts[0] += `, unknown ${lossSplit.unknown} (after the last reply)`;
  if (serverTime !== null) parts.push(`server time avg ${ms3(serverTime.avg)} ms`);
  return parts.join("; ");
}

/**
 * One target's summary in a run of several, as fping prints it:
 * `127.0.0.1:12000 : xmt/rcv/%loss = 10/10/0%, min/avg/max = 0.08/0.12/0.20`.
 */
export function targetSummaryLine(summary: PingSummary): string {
  const counts = `${summary.transmitted}/${summary.received}/${formatG(Math.round(summary.loss))}%`;
  const { rtt } = summary;
  const times = rtt.count > 0
    ? `, min/avg/max = ${[rtt.min, rtt.avg, rtt.max].map(ms3).join("/")}`
    : "";
  return `${summary.target} : xmt/rcv/%loss = ${counts}${times}`;
}

const LEVELS = "▁▂▃▄▅▆▇█";

/**
 * The run as a sparkline: one character per timeline column, its height the
 * column's mean RTT between the lowest and highest column; `·` for a column
 * whose requests were all lost.
 */
export function sparkline(columns: TimelineColumn[], paint: Paint = plain): string {
  const means = columns.map((column) => column.rtt).filter((rtt) => !Number.isNaN(rtt));
  const low = Math.min(...means);
  const high = Math.max(...means);
  return columns.map((column) => {
    if (column.replies === 0) return column.losses > 0 ? paint("red", "·") : " ";
    const level = high > low
      ? Math.round(((column.rtt - low) / (high - low)) * (LEVELS.length - 1))
      : 0;
    return paint(column.losses > 0 ? "yellow" : "green", LEVELS[level]!);
  }).join("");
}

/** A small horizontal histogram: a row per RTT range with a bar. */
export function histogramLines(rows: HistogramRow[], width = 30): string[] {
  const most = Math.max(...rows.map((row) => row.count));
  const label = (row: HistogramRow) => `${ms3(row.from)} - ${ms3(row.to)} ms`;
  const labelWidth = Math.max(...rows.map((row) => label(row).length));
  return rows.map((row) => {
    const bar = "█".repeat(most > 0 ? Math.round((row.count / most) * width) : 0);
    return `${label(row).padStart(labelWidth)} │${bar} ${row.count}`;
  });
}

/** The picture that ends the summary on a terminal. */
export function pictureLines(summary: PingSummary, paint: Paint): string[] {
  if (summary.transmitted === 0) return [];
  const lines = [
    "",
    `rtt per ${summary.timelineSpan === 1 ? "request" : `${summary.timelineSpan} requests`}: ` +
    sparkline(summary.timeline, paint),
  ];
  if (summary.rtt.count > 0) lines.push(...histogramLines(summary.histogram));
  return lines;
}

/** The options a run was started with, as `--json` reports them. */
export interface RunOptions {
  count: number | null;
  interval: number;
  timeout: number;
  size: number;
  deadline: number | null;
  flood: boolean;
}

/** One request in `--json`'s `pings`. */
export interface PingRecordJson {
  seq: number;
  /** Send time, ms since the Unix epoch. */
  sent: number;
  /** Milliseconds, or null when no reply came. */
  rtt: number | null;
  /** Any of "timeout", "late", "reordered", "duplicate", "error". */
  flags: string[];
}

/**
 * Collects the per-request records of `--json` from the events of a run.
 * It holds one small record per request: `-q` leaves it out.
 */
export class PingRecords {
  readonly #records = new Map<number, PingRecordJson>();

  add(event: PingEvent): void {
    if (event.type === "sent") {
      this.#records.set(event.seq, { seq: event.seq, sent: event.time, rtt: null, flags: [] });
      return;
    }
    if (!("seq" in event)) return;
    const record = this.#records.get(event.seq);
    if (record === undefined) return;
    if (event.type === "reply") {
      record.rtt = event.rtt;
      if (event.late) record.flags.push("late");
      if (event.reordered) record.flags.push("reordered");
    } else if (event.type === "duplicate" && !record.flags.includes("duplicate")) {
      record.flags.push("duplicate");
    } else if (event.type === "timeout" || event.type === "error") {
      record.flags.push(event.type);
    } else if (event.type === "unreachable") {
      record.flags.push("error");
    }
  }

  list(): PingRecordJson[] {
    return [...this.#records.values()];
  }
}

/** The units of every figure in `--json` and `--json-lines`, stated once. */
export const JSON_UNITS = {
  time: "ms, rounded to the µs (3 decimals)",
  options: "as given on the command line: interval, timeout and deadline in seconds",
  loss: "percent, 3 decimals",
  sent: "ms since the Unix epoch",
} as const;

/** A JSON replacer that rounds every fractional number to 3 decimals:
 * times to the µs, the clock's resolution, with no floating-point noise.
 * NaN becomes null. The fields of `asGiven` (the run's options) are left
 * as they were given. */
function rounding(asGiven?: object) {
  return function (this: unknown, _key: string, value: unknown): unknown {
    if (this === asGiven || typeof value !== "number" || Number.isInteger(value)) return value;
    return Number.isFinite(value) ? Math.round(value * 1000) / 1000 : null;
  };
}

/** Any value as JSON, rounded as `--json` is. */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, rounding(), indent);
}

/** The `--json` document: every time in ms to 3 decimals, NaN figures (no
 * reply) as null, the units stated once. */
export function jsonDocument(
  summary: PingSummary,
  options: RunOptions,
  pings?: PingRecordJson[],
): string {
  const document = { ...summary, options, ...(pings ? { pings } : {}), units: JSON_UNITS };
  return JSON.stringify(document, rounding(options), 2);
}

/** One `--json-lines` line for an event, rounded as `--json`. */
export function jsonLine(event: PingEvent): string {
  return JSON.stringify(event, rounding());
}
