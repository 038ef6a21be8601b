/**
 * Log text that is safe to print and easy to read: datagram bytes escaped
 * so that no terminal escape from the network reaches the screen, and
 * times in ISO 8601 with the local offset (or UTC when asked).
 *
 * @module
 */

import { PREVIEW_BYTES } from "../settings.ts";
import { formatAddress } from "./net.ts";

const BACKSLASH = 0x5c;
const QUOTE = 0x22;
const NEWLINE = 0x0a;
const RETURN = 0x0d;
const TAB = 0x09;
const FIRST_PRINTABLE = 0x20;
const DELETE = 0x7f;

/**
 * Bytes as safe, readable text: printable ASCII as is, `\n` `\r` `\t` `\\`
 * `\"` escaped, every other byte (control characters, terminal escapes,
 * non-ASCII) as `\xNN`, cut after `limit` bytes with `…`. The server's log
 * and the client's reply text both go through it.
 *
 * @example
 * ```ts
 * import { escapeBytes } from "./log.ts";
 * import { equal } from "node:assert/strict";
 * equal(escapeBytes(new TextEncoder().encode("\x1b[2Jhi\n")), "\\x1b[2Jhi\\n");
 * ```
 */
export function escapeBytes(data: Uint8Array, limit = PREVIEW_BYTES): string {
  let text = "";
  for (const byte of data.subarray(0, limit)) {
    if (byte === BACKSLASH) text += "\\\\";
    else if (byte === QUOTE) text += '\\"';
    else if (byte === NEWLINE) text += "\\n";
    else if (byte === RETURN) text += "\\r";
    else if (byte === TAB) text += "\\t";
    else if (byte >= FIRST_PRINTABLE && byte < DELETE) text += String.fromCharCode(byte);
    else text += `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return data.length > limit ? `${text}…` : text;
}

const two = (n: number) => String(n).padStart(2, "0");

/**
 * A time (ms since the Unix epoch, fractions allowed) as ISO 8601 with
 * microseconds and its local offset, `2026-11-26T04:09:23.523417+05:30`
 * (`+00:00`, not `Z`, at offset 0): the local time zone's offset at that
 * instant, so summer time counts, or `offsetMinutes` east of UTC when
 * given. With `utc`, the same in UTC ending `Z`.
 *
 * @example
 * ```ts
 * import { isoTime } from "./log.ts";
 * import { equal } from "node:assert/strict";
 * const t = Date.UTC(2026, 10, 25, 22, 39, 23, 523) + 0.417;
 * equal(isoTime(t, true), "2026-11-25T22:39:23.523417Z");
 * equal(isoTime(t, false, 330), "2026-11-26T04:09:23.523417+05:30");
 * ```
 */
export function isoTime(ms: number, utc = false, offsetMinutes?: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`ms must be a finite time, got ${ms}`);
  const micros = Math.round(ms * 1000);
  const whole = Math.floor(micros / 1000);
  const micro = String(micros - whole * 1000).padStart(3, "0");
  if (utc) return new Date(whole).toISOString().replace("Z", `${micro}Z`);
  // Rounded: a historical zone offset with seconds (local mean time) cannot
  // be written as ±HH:MM, and the printed time must agree with the offset.
  const offset = Math.round(offsetMinutes ?? -new Date(whole).getTimezoneOffset());
  if (!(Math.abs(offset) < 24 * 60)) {
    throw new RangeError(`offsetMinutes must be within ±1439, got ${offsetMinutes}`);
  }
  const local = new Date(whole + offset * 60_000).toISOString().slice(0, -1);
  const sign = offset < 0 ? "-" : "+";
  const absolute = Math.abs(offset);
  return `${local}${micro}${sign}${two(Math.floor(absolute / 60))}:${two(absolute % 60)}`;
}

/**
 * The current time for a log line: the clock's microseconds, local offset
 * unless `utc`.
 *
 * @example
 * ```ts
 * import { logTime } from "./log.ts";
 * import { match } from "node:assert/strict";
 * match(logTime(true), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
 * ```
 */
export function logTime(utc = false): string {
  return isoTime(performance.timeOrigin + performance.now(), utc);
}

/**
 * A log writer: each line starts with the time and, when given, the
 * address it is about. Writes nothing without `log`.
 *
 * @example
 * ```ts
 * import { logger } from "./log.ts";
 * import { match } from "node:assert/strict";
 * const lines: string[] = [];
 * logger((line) => lines.push(line), true)({ transport: "udp", hostname: "::1", port: 9 }, "hi");
 * match(lines[0]!, /Z \[::1\]:9 hi$/);
 * ```
 */
export function logger(
  log: ((line: string) => void) | undefined,
  utc = false,
): (about: Deno.NetAddr | undefined, text: string) => void {
  return (about, text) => {
    if (!log) return;
    const where = about ? `${formatAddress(about.hostname, about.port)} ` : "";
    log(`${logTime(utc)} ${where}${text}`);
  };
}
