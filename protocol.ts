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
 * What {@linkcode findRecord} reads out of a datagram: the record's fields
 * and where it sits. The token is decoded only when read; the padding is
 * read from the datagram at `paddingOffset` (see {@linkcode readStampAt}).
 */
export interface PingRecord {
  /** The sequence number, 0 to 2^32 - 1. */
  readonly seq: number;
  /** The sender's clock when it sent the request, ms since the Unix epoch. */
  readonly sent: number;
  /** The run's token as a number (its 8 hexadecimal digits): a cheap key. */
  readonly tokenValue: number;
  /** The run's token, 8 uppercase hexadecimal digits. */
  readonly token: string;
  /** Where the record starts in the datagram, in bytes. */
  readonly offset: number;
  /** Where the padding starts in the datagram, in bytes. */
  readonly paddingOffset: number;
  /** The padding starts with the `?` that asks for a stamp. */
  readonly stampWanted: boolean;
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

/** ASCII `a`. */
export const LOWER_A = 0x61;
/** ASCII `z`. */
export const LOWER_Z = 0x7a;
/** How far below its small letter an ASCII capital is: `byte | CASE_OFFSET`
 * is a letter's small form, how records are found in any letter case. */
export const CASE_OFFSET = 0x20;

const PADDING_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";
const encoder = new TextEncoder();
// latin1 maps every byte to one character, so no reply, however garbled,
// can make decoding its padding or stamp throw.
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

/**
 * Finds the first well-formed ping record in a datagram, in any letter case,
 * or returns `null` when there is none. A reply may carry it anywhere (a
 * server's prefix comes first); with `anywhere: false` only a record at the
 * very start counts, the way a server reads a request. One pass over the
 * bytes, no text decoded: this is every reply's and every request's path.
 *
 * @example
 * ```ts
 * import { findRecord } from "./protocol.ts";
 * import { equal } from "node:assert/strict";
 * const reply = new TextEncoder().encode("OK...PING 7 1764064800123.456 9F86D081");
 * equal(findRecord(reply)?.seq, 7);
 * equal(findRecord(reply)?.token, "9F86D081");
 * equal(findRecord(reply, { anywhere: false }), null);
 * ```
 */
export function findRecord(
  datagram: Uint8Array,
  options: { anywhere?: boolean } = {},
): PingRecord | null {
  const last = options.anywhere === false ? 0 : datagram.length - SHORTEST_RECORD;
  for (let at = 0; at <= last; at++) {
    if ((datagram[at]! | CASE_OFFSET) !== PING_WORD[0]) continue;
    const record = recordAt(datagram, at);
    if (record !== null) return record;
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
  // The `?` came back (no udping server): decided without decoding.
  if (first === STAMP_REQUEST_BYTE) return { kind: "not-stamped" };
  if (first !== STAMP_MARK) return { kind: "none" };
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

// The record's grammar, byte by byte (see the module's diagram).
/** "ping" in small letters: each byte of the word, `| CASE_OFFSET`, is one. */
const PING_WORD = [0x70, 0x69, 0x6e, 0x67] as const;
const SPACE = 0x20;
const DOT = 0x2e;
const ZERO = 0x30;
const SEQ_DIGITS = 10;
const SENT_DIGITS = 16;
const SENT_DECIMALS = 6;
const TOKEN_DIGITS = 8;
/** `PING 0 0 00000000`. */
const SHORTEST_RECORD = 17;

const isDigit = (byte: number | undefined) => byte !== undefined && byte >= ZERO && byte <= 0x39;

/** The value of a hex digit in either case, or -1. */
function hexValue(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (isDigit(byte)) return byte - ZERO;
  const lower = byte | CASE_OFFSET;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/** The end of a run of at most `most` digits starting at `from`, or -1
 * when there is none or it is longer. */
function digitsEnd(bytes: Uint8Array, from: number, most: number): number {
  let at = from;
  while (isDigit(bytes[at])) at++;
  return at === from || at - from > most ? -1 : at;
}

/** 10 ** n for each count n of decimals a record's time may have: a table,
 * since `10 ** n` with n not known ahead is a call into the C library's
 * pow() (0.14 µs of each request the server parsed, in a profile). */
const DECIMAL_SCALE = Array.from({ length: SENT_DECIMALS + 1 }, (_, n) => 10 ** n);

/** The number written in `bytes` from `from` to `end`, whose whole part
 * ends at `wholeEnd` (a decimal point there, or `end`), as `Number()`
 * reads its text. */
function decimalValue(bytes: Uint8Array, from: number, wholeEnd: number, end: number): number {
  let digits = 0;
  for (let at = from; at < end; at++) {
    if (at !== wholeEnd) digits = digits * 10 + bytes[at]! - ZERO;
  }
  // Below 2^53 the digits are exact and one division by an exact power of
  // ten rounds once, as Number() does; a longer figure takes the text.
  if (digits <= Number.MAX_SAFE_INTEGER) {
    return digits / DECIMAL_SCALE[Math.max(0, end - wholeEnd - 1)]!;
  }
  return Number(latin1.decode(bytes.subarray(from, end)));
}

/** The record starting at byte `start`, or `null` when none does. */
function recordAt(b: Uint8Array, start: number): PingRecord | null {
  for (let letter = 0; letter < PING_WORD.length; letter++) {
    if ((b[start + letter]! | CASE_OFFSET) !== PING_WORD[letter]) return null;
  }
  if (b[start + PING_WORD.length] !== SPACE) return null;
  const seqStart = start + PING_WORD.length + 1;
  const seqEnd = digitsEnd(b, seqStart, SEQ_DIGITS);
  if (seqEnd < 0 || b[seqEnd] !== SPACE) return null;
  const seq = decimalValue(b, seqStart, seqEnd, seqEnd);
  if (seq >= SEQ_MODULUS) return null;
  const sentStart = seqEnd + 1;
  const wholeEnd = digitsEnd(b, sentStart, SENT_DIGITS);
  if (wholeEnd < 0) return null;
  let sentEnd = wholeEnd;
  if (b[wholeEnd] === DOT) {
    sentEnd = digitsEnd(b, wholeEnd + 1, SENT_DECIMALS);
    if (sentEnd < 0) return null;
  }
  if (b[sentEnd] !== SPACE) return null;
  const tokenStart = sentEnd + 1;
  let tokenValue = 0;
  for (let digit = 0; digit < TOKEN_DIGITS; digit++) {
    const value = hexValue(b[tokenStart + digit]);
    if (value < 0) return null;
    tokenValue = tokenValue * 16 + value;
  }
  // The token must not run on into a ninth hex digit: "… ABCDEF012" is
  // not token ABCDEF01.
  const tokenEnd = tokenStart + TOKEN_DIGITS;
  if (hexValue(b[tokenEnd]) >= 0) return null;
  const sent = decimalValue(b, sentStart, wholeEnd, sentEnd);
  return new FoundRecord(b, seq, sent, tokenValue, start, tokenEnd);
}

/** A record found in `datagram`; its token's text is decoded when read. */
class FoundRecord implements PingRecord {
  readonly paddingOffset: number;
  readonly stampWanted: boolean;

  constructor(
    datagram: Uint8Array,
    readonly seq: number,
    readonly sent: number,
    readonly tokenValue: number,
    readonly offset: number,
    tokenEnd: number,
  ) {
    const padded = datagram[tokenEnd] === SPACE;
    this.paddingOffset = padded ? tokenEnd + 1 : tokenEnd;
    this.stampWanted = padded && datagram[tokenEnd + 1] === STAMP_REQUEST_BYTE;
  }

  get token(): string {
    return formatToken(this.tokenValue);
  }
}
