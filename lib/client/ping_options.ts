/**
 * The client's options, checked and defaulted in one place per mode: one
 * table of limits ({@linkcode PING_RULES}) and one planner each for a ping
 * run ({@linkcode planRun}), a chat ({@linkcode planChat}) and a beacon
 * ({@linkcode planBeacon}). The library calls them as it starts; the
 * command line calls the same ones, with each flag as typed, before the
 * first send.
 *
 * @module
 */

import {
  FLOOD_GAP_MS,
  MAX_COUNT,
  MAX_RETRIES,
  MAX_SECONDS,
  MAX_UDP_PAYLOAD_V4,
  MAX_UDP_PAYLOAD_V6,
  MIN_INTERVAL_MS,
  settings,
} from "../../settings.ts";
import { formatRecord, randomToken, SEQ_MODULUS } from "../../protocol.ts";
import { checkNumber, type NumberOption } from "../shared/checks.ts";
import { checkPort } from "../shared/net.ts";
import type { RunOptions } from "./report.ts";

/** Each numeric option's flag and limits. */
export const PING_RULES = {
  count: { flag: "-c", rule: { min: 1, max: MAX_COUNT, integer: true } },
  interval: { flag: "-i", rule: { min: MIN_INTERVAL_MS / 1000, max: MAX_SECONDS } },
  timeout: { flag: "-W", rule: { min: 0, aboveMin: true, max: MAX_SECONDS } },
  size: { flag: "-s", rule: { min: 0, max: MAX_UDP_PAYLOAD_V6, integer: true } },
  deadline: { flag: "-w", rule: { min: 0, aboveMin: true, max: MAX_SECONDS } },
  retries: { flag: "--retries", rule: { min: 0, max: MAX_RETRIES, integer: true } },
} as const satisfies Record<string, NumberOption>;

/** The names options go by in messages (the command line gives each flag
 * as typed); by default an option is named as in its options type. */
export type Labels = Partial<Record<keyof typeof PING_RULES, string>>;

/** Checks one numeric option against its rule, named by `labels`. */
function checker(labels: Labels) {
  return (name: keyof typeof PING_RULES, value: number) =>
    checkNumber(labels[name] ?? name, value, PING_RULES[name].rule);
}

/** What `ping()` does; every field has a default from settings.ts. */
export interface PingOptions {
  /** Host name or IP literal of the echo service.
   * @default {"127.0.0.1"} */
  host?: string;
  /** The host's IP address, when the caller has resolved `host` already
   * (the command line does, to check every target before the first send);
   * `host` then only names the target. */
  address?: string;
  /** The echo service's port, 1-65535.
   * @default {12000} */
  port?: number;
  /** Requests to send; left out with a `deadline`: until the deadline.
   * @default {10} */
  count?: number;
  /** Seconds between sends, on a fixed schedule from the first; at least
   * `MIN_INTERVAL_MS` (`flood` goes faster).
   * @default {1} */
  interval?: number;
  /** Seconds to wait for each reply before reporting it lost.
   * @default {1} */
  timeout?: number;
  /** Bytes per request datagram, sent exactly (at least the record's own
   * length).
   * @default {64} */
  size?: number;
  /** Seconds after which the run ends, whatever is still outstanding. */
  deadline?: number;
  /** The run's token; random by default. */
  token?: string;
  /** Put each reply's text, escaped, in its event (`-v`). */
  verbose?: boolean;
  /** Ends the run early; the summary still comes. */
  signal?: AbortSignal;
  /** Like ping -f: send as soon as the previous reply is in, and at least
   * every `FLOOD_GAP_MS` ms; `interval` is ignored. */
  flood?: boolean;
  /** Ask a udping server to stamp replies, which tells upstream from
   * downstream loss (needs a little padding).
   * @default {true} */
  stamp?: boolean;
  /** Time replies with the kernel's receive timestamps through the C
   * library (Linux, `--allow-ffi`); a `notice` event says when it cannot.
   * @default {false} */
  kernelStamps?: boolean;
}

/** A run's checked plan, in milliseconds. */
export interface RunPlan {
  /** Requests to send (`Infinity`: until the deadline). */
  count: number;
  intervalMs: number;
  timeoutMs: number;
  size: number;
  deadlineMs: number;
  token: string;
  tokenValue: number;
  flood: boolean;
  stamp: boolean;
  /** Why requests of this size cannot ask for a stamp, if they cannot. */
  noStamp: string | undefined;
  /** Requests that may be in flight at once. */
  inFlight: number;
}

/**
 * A run's options with the defaults of settings.ts filled in, in seconds,
 * as `--json` reports them: `count` null runs until the deadline,
 * `deadline` null has none, a flood's interval is 0. Unchecked.
 *
 * @example
 * ```ts
 * import { withDefaults } from "./ping_options.ts";
 * import { equal } from "node:assert/strict";
 * equal(withDefaults({}).count, 10);
 * equal(withDefaults({ deadline: 5 }).count, null);
 * ```
 */
export function withDefaults(options: PingOptions): RunOptions {
  const flood = options.flood ?? false;
  return {
    count: options.count ?? (options.deadline === undefined ? settings.count : null),
    interval: flood ? 0 : options.interval ?? settings.interval,
    timeout: options.timeout ?? settings.timeout,
    size: options.size ?? settings.size,
    deadline: options.deadline ?? null,
    flood,
  };
}

/**
 * Checks a run's options against {@linkcode PING_RULES} (a `RangeError`
 * names the option, its limits and the value) and fills in the defaults
 * ({@linkcode withDefaults}). `family` is the target's: an IPv4 datagram
 * holds at most 65507 bytes.
 *
 * @example
 * ```ts
 * import { planRun } from "./ping_options.ts";
 * import { equal, throws } from "node:assert/strict";
 * equal(planRun({ interval: 0.2 }, 4).intervalMs, 200);
 * throws(() => planRun({ size: 65527 }, 4), /size must be at most 65507 bytes over IPv4/);
 * throws(() => planRun({ size: 65527 }, 4, { size: "-s" }), /^RangeError: -s must be/);
 * ```
 */
export function planRun(options: PingOptions, family: 4 | 6, labels: Labels = {}): RunPlan {
  const check = checker(labels);
  const given = withDefaults(options);
  const count = given.count === null ? Infinity : check("count", given.count);
  const flood = given.flood;
  const intervalMs = flood ? 0 : check("interval", given.interval) * 1000;
  const timeoutMs = check("timeout", given.timeout) * 1000;
  const size = check("size", given.size);
  const least = smallestRequest(count);
  const sizeLabel = labels.size ?? "size";
  if (size < least) {
    throw new RangeError(
      `${sizeLabel} must be at least ${least} bytes (the request's record needs them), got ${size}`,
    );
  }
  if (family === 4 && size > MAX_UDP_PAYLOAD_V4) {
    throw new RangeError(
      `${sizeLabel} must be at most ${MAX_UDP_PAYLOAD_V4} bytes over IPv4, got ${size}`,
    );
  }
  const deadlineMs = given.deadline === null ? Infinity : check("deadline", given.deadline) * 1000;
  const token = (options.token ?? randomToken()).toUpperCase();
  // The stamp's shortest form, "=1;", must fit in the padding after "?".
  const stampable = size - least - 1 >= SHORTEST_STAMP;
  const stamp = (options.stamp ?? true) && stampable;
  const noStamp = stamp || options.stamp === false
    ? undefined
    : `requests of ${size} bytes leave no room for a stamp`;
  const inFlight = Math.min(count, Math.ceil(timeoutMs / (flood ? FLOOD_GAP_MS : intervalMs)));
  return {
    count,
    intervalMs,
    timeoutMs,
    size,
    deadlineMs,
    token,
    tokenValue: parseInt(token, 16),
    flood,
    stamp,
    noStamp,
    inFlight,
  };
}

/** A chat's checked options: the port, the wait for each line's reply in
 * milliseconds, and the resends of a line that got none. */
export interface ChatPlan {
  port: number;
  timeoutMs: number;
  retries: number;
}

/**
 * Checks a chat's options (the same limits as a ping run's) and fills in
 * the defaults: the port and timeout of settings.ts, no resends.
 *
 * @example
 * ```ts
 * import { planChat } from "./ping_options.ts";
 * import { equal, throws } from "node:assert/strict";
 * equal(planChat({ timeout: 0.5 }).timeoutMs, 500);
 * throws(() => planChat({ retries: -1 }, { retries: "--retries" }), /^RangeError: --retries must be/);
 * ```
 */
export function planChat(
  options: { port?: number; timeout?: number; retries?: number },
  labels: Labels = {},
): ChatPlan {
  const check = checker(labels);
  return {
    port: checkPort(options.port ?? settings.port),
    timeoutMs: check("timeout", options.timeout ?? settings.timeout) * 1000,
    retries: check("retries", options.retries ?? 0),
  };
}

/** A beacon's checked options: the port, how many to send (`Infinity`:
 * until the deadline or Ctrl-C), and the interval and deadline in
 * milliseconds. */
export interface BeaconPlan {
  port: number;
  count: number;
  intervalMs: number;
  deadlineMs: number;
}

/**
 * Checks a beacon's options (the same limits as a ping run's) and fills in
 * the defaults: the port and interval of settings.ts, no count and no
 * deadline (it runs until stopped).
 *
 * @example
 * ```ts
 * import { planBeacon } from "./ping_options.ts";
 * import { equal, throws } from "node:assert/strict";
 * equal(planBeacon({}).count, Infinity);
 * throws(() => planBeacon({ interval: 0 }, { interval: "-i" }), /^RangeError: -i must be/);
 * ```
 */
export function planBeacon(
  options: { port?: number; count?: number; interval?: number; deadline?: number },
  labels: Labels = {},
): BeaconPlan {
  const check = checker(labels);
  return {
    port: checkPort(options.port ?? settings.port),
    count: options.count === undefined ? Infinity : check("count", options.count),
    intervalMs: check("interval", options.interval ?? settings.interval) * 1000,
    deadlineMs: options.deadline === undefined
      ? Infinity
      : check("deadline", options.deadline) * 1000,
  };
}

/**
 * The bytes of the longest record a run of `count` requests sends
 * (`PING <seq> <sent> <token>`): the smallest `-s` that is sent as asked.
 *
 * @example
 * ```ts
 * import { smallestRequest } from "./ping_options.ts";
 * import { equal } from "node:assert/strict";
 * equal(smallestRequest(10), "PING 10 1764064800123.456 9F86D081".length);
 * ```
 */
export function smallestRequest(count: number): number {
  const largestSeq = Math.min(count, SEQ_MODULUS - 1);
  return formatRecord(largestSeq, SAMPLE_SENT, "00000000").length;
}

/** Bytes of the shortest stamp a server writes ("=1;"). */
const SHORTEST_STAMP = 3;

/** A send time of the same width as every one until the year 2286. */
const SAMPLE_SENT = 1e12;
