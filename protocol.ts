/**
 * The udping wire codec: pure functions, no I/O.
 *
 * A request is one line of ASCII text, readable in a packet capture and
 * typeable in netcat:
 *
 * ```
 *  0      4 5       5+a 6+a        6+a+b 7+a+b    15+a+b 16+a+b      size
 * +------+-+---------+-+--------------+-+-----------+-+-----------------+
 * | PING |␠| seq (a) |␠|   sent (b)   |␠| token (8) |␠| padding ...     |
 * +------+-+---------+-+--------------+-+-----------+-+-----------------+
 *
 *  PING     the four letters, any case in a reply
 *  seq      decimal, 1, 2, 3, ... modulo 2^32; 1 to 10 digits
 *  sent     the client's send time in ms since the Unix epoch, with three
 *           decimals (µs): "1764064800123.456"; informational only, the
 *           client times the round trip with its own monotonic clock
 *  token    8 hexadecimal digits drawn at random per client run, so a
 *           client can tell its replies from another run's
 *  padding  optional: digits and lowercase letters ("0123…xyz0123…") that
 *           bring the datagram up to the requested size, so that what an
 *           uppercasing server did shows in its reply
 * ```
 *
 * Example: `PING 3 1764064800123.456 9F86D081 0123456789abcdefghijklmnopqrstu`
 *
 * ## The stamp: which way was a request lost?
 *
 * A request whose padding starts with `?` asks the server to stamp it. A
 * udping server overwrites the padding in place, never growing the datagram,
 * with as much of this as fits, and leaves the rest of the padding as it was:
 *
 * ```
 *  padding (L bytes, L >= 1):
 * +---+-----------------------------------------------------------------+
 * | ? | 0123456789abcdefghijklmnopqrstuvwxyz0123...                       |  request
 * +---+-------+---+----------+---+--------+---+-----------+---+---------+
 * | = | count | , | received | , | held   | , | refused   | ; | rest .. |  reply
 * +---+-------+---+----------+---+--------+---+-----------+---+---------+
 *       1-10        17 (opt.)      1-10      1-10 (only when not 0)
 *
 *  The stamp is the longest of "=count;", "=count,received;" and
 *  "=count,received,held;" that fits; with refusals to tell, it is
 *  "=count,received,held,refused;" or, when that does not fit,
 *  "=count,,,refused;" (the refusals matter more than the times). The ";"
 *  ends it.
 *  count     requests with this token the server has received so far,
 *            this one included
 *  received  the server's clock when it received this request, ms since the
 *            Unix epoch with three decimals
 *  held      µs from receipt to send: the server's own share of the RTT
 *  refused   requests from this client the server refused by its rate
 *            limit and has not told it of yet (written only when not 0), so
 *            the client can tell them from upstream loss; the server keeps
 *            the ones a stamp has no room for until one has
 * ```
 *
 * Example: `PING 3 1764064800123.456 9F86D081 =3,1764064800123.501,12;JKLMN`
 * and, after refusals, `PING 3000 1764064800123.456 9F86D081 =2998,,,2;9abcdefghijklmnop`
 *
 * A plain echo server returns the `?` untouched, so the client knows the
 * direction of a loss is unknown rather than guessing. Padding too short for
 * `=count` stays as it is.
 *
 * A reply is whatever the server sends back. {@linkcode findRecord} finds the
 * first `PING <seq> <sent> <token>` record anywhere in it, case-insensitively,
 * so a byte-for-byte echo server, an uppercasing one and one that adds a
 * prefix (`OK...PING 3 …`, `Data received: PING 3 …`) all work.
 *
 * @module
 */

/**
 * The 2^32 modulus of sequence numbers.
 */
export const SEQ_MODULUS = 2 ** 32;

/**
 * What {@linkcode findRecord} reads back out of a reply.
 */
export interface PingRecord {
  /** The sequence number, 0 to 2^32 - 1. */
  seq: number;
  /** The sender's clock when it sent the request, ms since the Unix epoch. */
  sent: number;
  /** The run's token, 8 uppercase hexadecimal digits. */
  token: string;
  /** The padding after the token, as received (empty when there is none). */
  padding: string;
  /** Where the record starts in the datagram, in bytes. */
  offset: number;
  /** Where the padding starts in the datagram, in bytes. */
  paddingOffset: number;
}

/**
 * What a server wrote into a stamped reply; see the module's diagram.
 */
export interface Stamp {
  /** Requests with this token the server had received, this one included. */
  count: number;
  /** The server's receive time, ms since the Unix epoch. */
  received?: number;
  /** Microseconds the server held the request. */
  held?: number;
  /** Requests refused by the server's rate limit since its last stamp to
   * this client. */
  refused?: number;
}

/**
 * The character that asks for a stamp, first in the padding.
 */
export const STAMP_REQUEST = "?";

const PADDING_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";
const encoder = new TextEncoder();
// latin1 maps every byte to one character, so offsets in the text are offsets
// in the datagram and no reply, however garbled, can make decoding throw.
const latin1 = new TextDecoder("latin1");

/**
 * A fresh random token: 8 uppercase hexadecimal digits.
 *
 * @example
 * ```ts
 * import { randomToken } from "./protocol.ts";
 * import { match } from "node:assert/strict";
 * match(randomToken(), /^[0-9A-F]{8}$/);
 * ```
 */
export function randomToken(): string {
  const [value] = crypto.getRandomValues(new Uint32Array(1));
  return formatToken(value ?? 0);
}

/**
 * Formats a 32-bit number as a token: 8 uppercase hexadecimal digits.
 *
 * @example
 * ```ts
 * import { formatToken } from "./protocol.ts";
 * import { equal } from "node:assert/strict";
 * equal(formatToken(0xbeef), "0000BEEF");
 * ```
 */
export function formatToken(value: number): string {
  return (value >>> 0).toString(16).toUpperCase().padStart(8, "0");
}

/**
 * The text of a request without padding: `PING <seq> <sent> <token>`.
 *
 * @example
 * ```ts
 * import { formatRecord } from "./protocol.ts";
 * import { equal } from "node:assert/strict";
 * equal(formatRecord(3, 1764064800123.456, "9F86D081"), "PING 3 1764064800123.456 9F86D081");
 * ```
 */
export function formatRecord(seq: number, sent: number, token: string): string {
  return `PING ${seq} ${sent.toFixed(3)} ${token}`;
}

/**
 * Encodes a request of `size` bytes: the record, then a space and padding
 * when `size` leaves room for them. A `size` smaller than the record gives
 * the record alone: it is never cut. With `stamp`, the padding starts with
 * the `?` that asks a udping server to stamp the reply.
 *
 * @example
 * ```ts
 * import { encodeRequest } from "./protocol.ts";
 * import { equal } from "node:assert/strict";
 * const bytes = encodeRequest({ seq: 1, sent: Date.now(), token: "0000BEEF", size: 64 });
 * equal(bytes.length, 64);
 * ```
 */
export function encodeRequest(
  request: { seq: number; sent: number; token: string; size: number; stamp?: boolean },
): Uint8Array {
  const record = formatRecord(request.seq, request.sent, request.token);
  const room = request.size - record.length - 1;
  if (room < 0) return encoder.encode(record);
  const marker = request.stamp && room > 0 ? STAMP_REQUEST : "";
  return encoder.encode(`${record} ${marker}${padding(room - marker.length)}`);
}

/**
 * `length` characters of the padding alphabet, repeated.
 *
 * @example
 * ```ts
 * import { padding } from "./protocol.ts";
 * import { equal } from "node:assert/strict";
 * equal(padding(12), "0123456789ab");
 * ```
 */
export function padding(length: number): string {
  const whole = PADDING_ALPHABET.repeat(Math.ceil(length / PADDING_ALPHABET.length));
  return whole.slice(0, length);
}

// The record may be preceded by anything (a server's prefix). The token must
// not run on into a ninth hex digit, so "… ABCDEF012" is not read as token
// ABCDEF01; the padding runs to the end of the line.
const RECORD =
  /PING (\d{1,10}) (\d{1,16}(?:\.\d{1,6})?) ([0-9A-F]{8})(?![0-9A-F])(?: ([^\r\n]*))?/gi;

/**
 * Finds the first well-formed ping record anywhere in a reply, in any letter
 * case, or returns `null` when there is none.
 *
 * @example
 * ```ts
 * import { findRecord } from "./protocol.ts";
 * import { equal } from "node:assert/strict";
 * const reply = new TextEncoder().encode("OK...PING 7 1764064800123.456 9F86D081");
 * equal(findRecord(reply)?.seq, 7);
 * ```
 */
export function findRecord(reply: Uint8Array): PingRecord | null {
  const text = latin1.decode(reply);
  for (const match of text.matchAll(RECORD)) {
    const seq = Number(match[1]);
    const sent = Number(match[2]);
    if (seq >= SEQ_MODULUS || !Number.isFinite(sent)) continue;
    const padding = match[4] ?? "";
    const paddingOffset = match.index + match[0].length - padding.length;
    const token = (match[3] ?? "").toUpperCase();
    return { seq, sent, token, padding, offset: match.index, paddingOffset };
  }
  return null;
}

/** The longest stamp: "=" + 10 + "," + 17 + "," + 10 + "," + 10 + ";". */
const MAX_STAMP_LENGTH = 52;

/** Most digits of a stamp's refused field. */
const REFUSED_DIGITS = 10;

/**
 * Formats as much of a stamp as fits in `room` characters: the count alone,
 * then with the receive time, then with the hold time. Refusals (when not
 * 0) come before the times: the full stamp, or else the count and the
 * refusals alone (`=count,,,refused;`), whenever `refused` is at most
 * {@linkcode refusalsThatFit}; otherwise they are left out. `undefined`
 * when not even `=count` fits.
 *
 * @example
 * ```ts
 * import { formatStamp } from "./protocol.ts";
 * import { equal } from "node:assert/strict";
 * equal(formatStamp({ count: 3, received: 1764064800123.5, held: 12 }, 30), "=3,1764064800123.500,12;");
 * equal(formatStamp({ count: 3, received: 1764064800123.5 }, 5), "=3;");
 * equal(formatStamp({ count: 3, received: 1764064800123.5, held: 12, refused: 2 }, 9), "=3,,,2;");
 * ```
 */
export function formatStamp(stamp: Stamp, room: number): string | undefined {
  // Each form ends with ";": the padding after a stamp starts with digits,
  // which would otherwise run on into its last number.
  const forms = [`=${stamp.count}`];
  if (stamp.received !== undefined) {
    forms.push(`${forms[0]},${stamp.received.toFixed(3)}`);
    if (stamp.held !== undefined) forms.push(`${forms[1]},${Math.round(stamp.held)}`);
  }
  const fits = (form: string) => form.length + 1 <= room;
  if (stamp.refused) {
    const told = [`${forms[0]},,,${stamp.refused}`];
    if (forms.length === 3) told.push(`${forms[2]},${stamp.refused}`);
    const longest = told.filter(fits).at(-1);
    if (longest !== undefined) return `${longest};`;
  }
  const longest = forms.filter(fits).at(-1);
  return longest === undefined ? undefined : `${longest};`;
}

/**
 * The most refusals a stamp counting `count` requests can tell in `room`
 * bytes of padding (the shortest form, `=count,,,refused;`): 0 when it has
 * no room for them. A server tells at most this many and keeps the rest
 * for a later stamp.
 *
 * @example
 * ```ts
 * import { refusalsThatFit } from "./protocol.ts";
 * import { equal } from "node:assert/strict";
 * equal(refusalsThatFit(3000, 27), 9_999_999_999); // the default 64 bytes at seq 3000
 * equal(refusalsThatFit(3000, 10), 9); // "=3000,,,9;"
 * equal(refusalsThatFit(3000, 9), 0);
 * ```
 */
export function refusalsThatFit(count: number, room: number): number {
  const digits = Math.min(room, MAX_STAMP_LENGTH) - `=${count},,,;`.length;
  return digits < 1 ? 0 : 10 ** Math.min(digits, REFUSED_DIGITS) - 1;
}

/**
 * Writes a stamp over the padding of `datagram` (which starts at
 * `paddingOffset` and runs `paddingLength` bytes), in place. Returns whether
 * it fitted.
 *
 * @example
 * ```ts
 * import { encodeRequest, findRecord, writeStamp } from "./protocol.ts";
 * import { equal } from "node:assert/strict";
 * const reply = encodeRequest({ seq: 1, sent: 0, token: "0000BEEF", size: 64, stamp: true });
 * const { paddingOffset } = findRecord(reply)!;
 * equal(writeStamp(reply, paddingOffset, reply.length - paddingOffset, { count: 1 }), true);
 * ```
 */
export function writeStamp(
  datagram: Uint8Array,
  paddingOffset: number,
  paddingLength: number,
  stamp: Stamp,
): boolean {
  const text = formatStamp(stamp, Math.min(paddingLength, MAX_STAMP_LENGTH));
  if (text === undefined) return false;
  encoder.encodeInto(text, datagram.subarray(paddingOffset, paddingOffset + text.length));
  return true;
}

/**
 * What the padding of a reply says about the stamp.
 */
export type StampReading =
  | { kind: "stamped"; stamp: Stamp }
  /** The `?` came back: the server does not stamp. */
  | { kind: "not-stamped" }
  /** No stamp was asked for, or the padding is garbled. */
  | { kind: "none" };

const STAMP = /^=(\d{1,10})(?:,(\d{1,16}\.\d{3})(?:,(\d{1,10})(?:,(\d{1,10}))?)?|,,,(\d{1,10}))?;/;

const STAMP_MARK = 0x3d; // "="
const STAMP_REQUEST_BYTE = 0x3f; // "?"

/** Longest stretch of padding a stamp can fill. */
const STAMP_BYTES = MAX_STAMP_LENGTH;

/**
 * Reads the stamp, if any, at the start of the padding of `datagram`, which
 * starts at byte `paddingOffset`: decodes only the bytes a stamp can fill,
 * whatever the datagram's size.
 *
 * @example
 * ```ts
 * import { encodeRequest, findRecord, readStampAt } from "./protocol.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * const request = encodeRequest({ seq: 1, sent: 0, token: "0000BEEF", size: 64, stamp: true });
 * deepStrictEqual(readStampAt(request, findRecord(request)!.paddingOffset), { kind: "not-stamped" });
 * ```
 */
export function readStampAt(datagram: Uint8Array, paddingOffset: number): StampReading {
  const first = datagram[paddingOffset];
  if (first !== STAMP_MARK && first !== STAMP_REQUEST_BYTE) return { kind: "none" };
  return readStamp(latin1.decode(datagram.subarray(paddingOffset, paddingOffset + STAMP_BYTES)));
}

/**
 * Reads the stamp, if any, at the start of a reply's padding.
 *
 * @example
 * ```ts
 * import { readStamp } from "./protocol.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * deepStrictEqual(readStamp("=3,1764064800123.500,12;abc"), {
 *   kind: "stamped",
 *   stamp: { count: 3, received: 1764064800123.5, held: 12 },
 * });
 * deepStrictEqual(readStamp("=2998,,,2;vwx"), { kind: "stamped", stamp: { count: 2998, refused: 2 } });
 * deepStrictEqual(readStamp("?0123"), { kind: "not-stamped" });
 * ```
 */
export function readStamp(padding: string): StampReading {
  if (padding.startsWith(STAMP_REQUEST)) return { kind: "not-stamped" };
  const match = STAMP.exec(padding);
  if (match === null) return { kind: "none" };
  const stamp: Stamp = { count: Number(match[1]) };
  if (match[2] !== undefined) stamp.received = Number(match[2]);
  if (match[3] !== undefined) stamp.held = Number(match[3]);
  const refused = match[4] ?? match[5];
  if (refused !== undefined) stamp.refused = Number(refused);
  return { kind: "stamped", stamp };
}

/**
 * What a server needs from a request's record.
 */
export interface RequestHead {
  /** The sequence number. */
  seq: number;
  /** The token as a number (its 8 hex digits), a cheap map key. */
  tokenValue: number;
  /** Where the padding starts, in bytes. */
  paddingOffset: number;
  /** The padding starts with the `?` that asks for a stamp. */
  stampWanted: boolean;
}

const SPACE = 0x20;
const isDigit = (byte: number | undefined) => byte !== undefined && byte >= 0x30 && byte <= 0x39;

/** The value of a hex digit in either case, or -1. */
function hexValue(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/** The end of a run of at most `most` digits starting at `from`, or -1
 * when there is none or it is longer. */
function digitsEnd(bytes: Uint8Array, from: number, most: number): number {
  let at = from;
  while (isDigit(bytes[at])) at++;
  return at === from || at - from > most ? -1 : at;
}

/**
 * Reads the record at the very start of a request, the way a server sees
 * one: with the same rules as {@linkcode findRecord} but over bytes, without
 * decoding text, so the server's hot path allocates nothing. Returns `null`
 * for a datagram that does not start with a record.
 *
 * @example
 * ```ts
 * import { findRequest } from "./protocol.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * deepStrictEqual(findRequest(new TextEncoder().encode("PING 1 0.000 0000BEEF ?012")), {
 *   seq: 1,
 *   tokenValue: 0xbeef,
 *   paddingOffset: 22,
 *   stampWanted: true,
 * });
 * ```
 */
export function findRequest(request: Uint8Array): RequestHead | null {
  const b = request;
  if (
    b.length < 5 || ((b[0]! | 0x20) !== 0x70) || ((b[1]! | 0x20) !== 0x69) ||
    ((b[2]! | 0x20) !== 0x6e) || ((b[3]! | 0x20) !== 0x67) || b[4] !== SPACE
  ) {
    return null;
  }
  const seqEnd = digitsEnd(b, 5, 10);
  if (seqEnd < 0 || b[seqEnd] !== SPACE) return null;
  let seq = 0;
  for (let at = 5; at < seqEnd; at++) seq = seq * 10 + b[at]! - 0x30;
  if (seq >= SEQ_MODULUS) return null;
  let at = digitsEnd(b, seqEnd + 1, 16);
  if (at < 0) return null;
  if (b[at] === 0x2e) {
    at = digitsEnd(b, at + 1, 6);
    if (at < 0) return null;
  }
  if (b[at] !== SPACE) return null;
  let tokenValue = 0;
  for (let digit = 1; digit <= 8; digit++) {
    const value = hexValue(b[at + digit]);
    if (value < 0) return null;
    tokenValue = tokenValue * 16 + value;
  }
  const tokenEnd = at + 9;
  if (hexValue(b[tokenEnd]) >= 0) return null;
  const padded = b[tokenEnd] === SPACE;
  return {
    seq,
    tokenValue,
    paddingOffset: padded ? tokenEnd + 1 : tokenEnd,
    stampWanted: padded && b[tokenEnd + 1] === STAMP_REQUEST.charCodeAt(0),
  };
}
