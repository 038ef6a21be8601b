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
 *  padding  optional: digits and capital letters ("0123…XYZ0123…") that
 *           bring the datagram up to the requested size; an uppercasing
 *           server leaves them as they are
 * ```
 *
 * Example: `PING 3 1764064800123.456 9F86D081 0123456789ABCDEFGHIJKLMNOPQRSTU`
 *
 * A reply is whatever the server sends back. {@linkcode findRecord} finds the
 * first `PING <seq> <sent> <token>` record anywhere in it, case-insensitively,
 * so a byte-for-byte echo server, an uppercasing one and one that adds a
 * prefix (`OK...PING 3 …`, `Data received: PING 3 …`) all work.
 *
 * @module
 */

/** The 2^32 modulus of sequence numbers. */
export const SEQ_MODULUS = 2 ** 32;

/** What {@linkcode findRecord} reads back out of a reply. */
export interface PingRecord {
  /** The sequence number, 0 to 2^32 - 1. */
  seq: number;
  /** The sender's clock when it sent the request, ms since the Unix epoch. */
  sent: number;
  /** The run's token, 8 uppercase hexadecimal digits. */
  token: string;
  /** The padding after the token, as received (empty when there is none). */
  padding: string;
}

const PADDING_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
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
 * const token = randomToken(); // e.g. "9F86D081"
 * ```
 */
export function randomToken(): string {
  const [value] = crypto.getRandomValues(new Uint32Array(1));
  return formatToken(value ?? 0);
}

/** Formats a 32-bit number as a token: 8 uppercase hexadecimal digits. */
export function formatToken(value: number): string {
  return (value >>> 0).toString(16).toUpperCase().padStart(8, "0");
}

/** The text of a request without padding: `PING <seq> <sent> <token>`. */
export function formatRecord(seq: number, sent: number, token: string): string {
  return `PING ${seq} ${sent.toFixed(3)} ${token}`;
}

/**
 * Encodes a request of `size` bytes: the record, then a space and padding
 * when `size` leaves room for them. A `size` smaller than the record gives
 * the record alone: it is never cut.
 *
 * @example
 * ```ts
 * import { encodeRequest } from "./protocol.ts";
 * const bytes = encodeRequest({ seq: 1, sent: Date.now(), token: "0000BEEF", size: 64 });
 * bytes.length; // 64
 * ```
 */
export function encodeRequest(
  request: { seq: number; sent: number; token: string; size: number },
): Uint8Array {
  const record = formatRecord(request.seq, request.sent, request.token);
  const room = request.size - record.length - 1;
  return encoder.encode(room >= 0 ? `${record} ${padding(room)}` : record);
}

/** `length` characters of the padding alphabet, repeated. */
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
 * const reply = new TextEncoder().encode("OK...PING 7 1764064800123.456 9F86D081");
 * findRecord(reply)?.seq; // 7
 * ```
 */
export function findRecord(reply: Uint8Array): PingRecord | null {
  const text = latin1.decode(reply);
  for (const match of text.matchAll(RECORD)) {
    const seq = Number(match[1]);
    const sent = Number(match[2]);
    if (seq >= SEQ_MODULUS || !Number.isFinite(sent)) continue;
    return { seq, sent, token: (match[3] ?? "").toUpperCase(), padding: match[4] ?? "" };
  }
  return null;
}
