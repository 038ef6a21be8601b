/**
 * Log text that is safe to print and easy to read: datagram bytes escaped
 * so that no terminal escape from the network reaches the screen, and
 * times in ISO 8601 with the local offset (or UTC when asked).
 *
 * @module
 */

import { PREVIEW_BYTES } from "../../settings.ts";
import { formatAddress } from "./net.ts";

const BACKSLASH = 0x5c;
const QUOTE = 0x22;
const NEWLINE = 0x0a;
const RETURN = 0x0d;
const TAB = 0x09;
const FIRST_PRINTABLE = 0x20;
const DELETE = 0x7f;
/** Bytes from here on are part of a multi-byte UTF-8 sequence, or invalid. */
const FIRST_NON_ASCII = 0x80;
/** The range of a continuation byte, `10xxxxxx`. */
const CONTINUATION_LOW = 0x80;
const CONTINUATION_HIGH = 0xbf;
const CONTINUATION_BITS = 0x3f;

/** Characters shown as their bytes although they are valid UTF-8: C1
 * controls (a terminal acts on U+009B as on ESC [), and the bidirectional
 * controls and line separators, which can make a log line read as
 * something else. */
const SHOWN_AS_BYTES = /[\p{Cc}\p{Bidi_Control}\u2028\u2029]/u;

/**
 * The length of the well-formed UTF-8 sequence that starts at `at`, or 0
 * when none does (Unicode's table 3-7: no overlong forms, no surrogates,
 * nothing above U+10FFFF, no sequence cut short by the end of `data`).
 */
function sequenceLength(data: Uint8Array, at: number): number {
  const lead = data[at]!;
  let length = 0;
  let low = CONTINUATION_LOW;
  let high = CONTINUATION_HIGH;
  if (lead >= 0xc2 && lead <= 0xdf) length = 2;
  else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead === 0xe0) low = 0xa0; // below: an overlong form
    if (lead === 0xed) high = 0x9f; // above: a UTF-16 surrogate
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead === 0xf0) low = 0x90; // below: an overlong form
    if (lead === 0xf4) high = 0x8f; // above: past U+10FFFF
  } else return 0;
  if (at + length > data.length || data[at + 1]! < low || data[at + 1]! > high) return 0;
  for (let next = at + 2; next < at + length; next++) {
    if (data[next]! < CONTINUATION_LOW || data[next]! > CONTINUATION_HIGH) return 0;
  }
  return length;
}

/** A byte as `\xNN`. */
const hex = (byte: number) => `\\x${byte.toString(16).padStart(2, "0")}`;

/**
 * Bytes as safe, readable text: printable ASCII and valid UTF-8 as they
 * are, `\n` `\r` `\t` `\\` `\"` escaped, and as `\xNN` every other byte:
 * control characters (C0, DEL, C1, so terminal escapes), bidirectional
 * controls and line separators, bytes that are not valid UTF-8. Cut after
 * `limit` bytes with `…`, never inside a character. The server's log and
 * the client's reply text both go through it.
 *
 * @example
 * ```ts
 * import { escapeBytes } from "./log.ts";
 * import { equal } from "node:assert/strict";
 * equal(escapeBytes(new TextEncoder().encode("\x1b[2Jhé\n")), "\\x1b[2Jhé\\n");
 * equal(escapeBytes(Uint8Array.of(0x68, 0xc3, 0x28)), "h\\xc3(");
 * ```
 */
export function escapeBytes(data: Uint8Array, limit = PREVIEW_BYTES): string {
  const end = Math.min(data.length, limit);
  let text = "";
  for (let at = 0; at < end;) {
    const byte = data[at]!;
    if (byte < FIRST_NON_ASCII) {
      if (byte === BACKSLASH) text += "\\\\";
      else if (byte === QUOTE) text += '\\"';
      else if (byte === NEWLINE) text += "\\n";
      else if (byte === RETURN) text += "\\r";
      else if (byte === TAB) text += "\\t";
      else if (byte >= FIRST_PRINTABLE && byte < DELETE) text += String.fromCharCode(byte);
      else text += hex(byte);
      at++;
      continue;
    }
    const length = sequenceLength(data, at);
    if (length === 0) {
      text += hex(byte);
      at++;
      continue;
    }
    if (at + length > end) break; // the limit falls inside this character
    let codePoint = byte & (0x7f >> length);
    for (let next = at + 1; next < at + length; next++) {
      codePoint = (codePoint << 6) | (data[next]! & CONTINUATION_BITS);
    }
    const char = String.fromCodePoint(codePoint);
    text += SHOWN_AS_BYTES.test(char)
      ? [...data.subarray(at, at + length)].map(hex).join("")
      : char;
    at += length;
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
  // The fraction from what is left of the second: ms * 1000 is past 2^53
  // for years beyond 2255, and would not be exact.
  let second = Math.floor(ms / 1000);
  let micros = Math.round((ms - second * 1000) * 1000);
  if (micros === 1_000_000) {
    second += 1;
    micros = 0;
  }
  const fraction = String(micros).padStart(6, "0");
  const last = lastSecond;
  if (last.second !== second || last.utc !== utc || last.offsetMinutes !== offsetMinutes) {
    Object.assign(
      last,
      { second, utc, offsetMinutes },
      secondParts(second * 1000, utc, offsetMinutes),
    );
  }
  return `${last.head}${fraction}${last.tail}`;
}

/** The last second {@linkcode isoTime} wrote, in two parts around its
 * fraction: a server logs many lines a second, and writing the date (its
 * zone's offset looked up) took 1.7 µs of each. */
const lastSecond = {
  second: NaN,
  utc: false,
  offsetMinutes: undefined as number | undefined,
  head: "",
  tail: "",
};

/** An ISO time's text up to its fraction, the dot included (a year past
 * 9999 or before 0 is written with six digits and a sign). */
const upToFraction = (iso: string) => iso.slice(0, iso.lastIndexOf(".") + 1);

/** `2026-11-26T04:09:23.` and `+05:30` (or `Z`) for the whole second `whole` (ms). */
function secondParts(
  whole: number,
  utc: boolean,
  offsetMinutes: number | undefined,
): { head: string; tail: string } {
  if (utc) return { head: upToFraction(new Date(whole).toISOString()), tail: "Z" };
  // Rounded: a historical zone offset with seconds (local mean time) cannot
  // be written as ±HH:MM, and the printed time must agree with the offset.
  const offset = Math.round(offsetMinutes ?? -new Date(whole).getTimezoneOffset());
  if (!(Math.abs(offset) < 24 * 60)) {
    throw new RangeError(`offsetMinutes must be within ±1439, got ${offsetMinutes}`);
  }
  const head = upToFraction(new Date(whole + offset * 60_000).toISOString());
  const sign = offset < 0 ? "-" : "+";
  const absolute = Math.abs(offset);
  return { head, tail: `${sign}${two(Math.floor(absolute / 60))}:${two(absolute % 60)}` };
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
