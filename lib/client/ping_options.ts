/**
 * The limits of the client's numeric options, one table for `ping()` and
 * the command line, and the checked plan of a run.
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

/** Each numeric option's flag and limits. */
export const PING_RULES = {
  count: { flag: "-c", rule: { min: 1, max: MAX_COUNT, integer: true } },
  interval: { flag: "-i", rule: { min: MIN_INTERVAL_MS / 1000, max: MAX_SECONDS } },
  timeout: { flag: "-W", rule: { min: 0, aboveMin: true, max: MAX_SECONDS } },
  size: { flag: "-s", rule: { min: 0, max: MAX_UDP_PAYLOAD_V6, integer: true } },
  deadline: { flag: "-w", rule: { min: 0, aboveMin: true, max: MAX_SECONDS } },
  retries: { flag: "--retries", rule: { min: 0, max: MAX_RETRIES, integer: true } },
} as const satisfies Record<string, NumberOption>;

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
 * Checks a run's options against {@linkcode PING_RULES} (a `RangeError`
 * names the option, its limits and the value) and fills in the defaults.
 * `family` is the target's: an IPv4 datagram holds at most 65507 bytes.
 * `labels` name the options in messages (the command line gives each flag
 * as typed); by default an option is named as in {@linkcode PingOptions}.
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
export function planRun(
  options: PingOptions,
  family: 4 | 6,
  labels: Partial<Record<keyof typeof PING_RULES, string>> = {},
): RunPlan {
  const check = (name: keyof typeof PING_RULES, value: number) =>
    checkNumber(labels[name] ?? name, value, PING_RULES[name].rule);
  const count = options.count === undefined
    ? (options.deadline === undefined ? settings.count : Infinity)
    : check("count", options.count);
  const flood = options.flood ?? false;
  const intervalMs = flood ? 0 : check("interval", options.interval ?? settings.interval) * 1000;
  const timeoutMs = check("timeout", options.timeout ?? settings.timeout) * 1000;
  const size = check("size", options.size ?? settings.size);
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
  const deadlineMs = options.deadline === undefined
    ? Infinity
    : check("deadline", options.deadline) * 1000;
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
