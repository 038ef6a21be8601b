/**
 * What the server did to a reply, found by comparing it with the request
 * the client sent (the bytes that went out, or rebuilt from the echoed
 * record): an exact echo, uppercased (the classic lab), a prefix put first,
 * cut short, or some byte altered, as ping reports "wrong data byte". The
 * stamp a udping server writes over the padding is not a change.
 *
 * @module
 */

import { CASE_OFFSET, encodeRequest, LOWER_A, LOWER_Z, type PingRecord } from "../../protocol.ts";
import { escapeBytes } from "../shared/log.ts";

/** What differs between a reply and its request; every field is absent
 * for an exact echo. */
export interface ReplyChange {
  /** Text the server put before the record (`OK...`), escaped. */
  prefix?: string;
  /** ASCII letters were uppercased. */
  upper?: boolean;
  /** The reply stops after this many of the request's bytes. */
  truncated?: number;
  /** The first byte that differs otherwise (0-based in the request). */
  altered?: { at: number; sent: number; got: number };
}

const STAMP_MARK = 0x3d; // "="
const STAMP_END = 0x3b; // ";"

/**
 * Compares `reply`, whose record starts at `record.offset`, with the request
 * of `size` bytes that carried that record. `latest`, the bytes of the
 * latest request sent, is compared with when the reply carries its record,
 * instead of encoding that request again.
 *
 * @example
 * ```ts
 * import { checkReply } from "./reply_check.ts";
 * import { encodeRequest, findRecord } from "../../protocol.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * const request = encodeRequest({ seq: 1, sent: 1e12, token: "0000BEEF", size: 50 });
 * const reply = new TextEncoder().encode("OK..." + new TextDecoder().decode(request).toUpperCase());
 * deepStrictEqual(checkReply(reply, findRecord(reply)!, 50, false), { prefix: "OK...", upper: true });
 * ```
 */
export function checkReply(
  reply: Uint8Array,
  record: PingRecord,
  size: number,
  stamp: boolean,
  latest?: Uint8Array,
): ReplyChange {
  // The reply to the latest request, the usual one, is compared with the
  // bytes that went out: encoding them again took 26 µs of a probe at
  // 10 ms (cold caches), the comparison with them 4.
  const request = latest !== undefined && carriesRecordOf(reply, record, latest)
    ? latest
    : encodeRequest({ seq: record.seq, sent: record.sent, token: record.token, size, stamp });
  const change: ReplyChange = {};
  if (record.offset > 0) change.prefix = escapeBytes(reply.subarray(0, record.offset));
  const body = reply.subarray(record.offset);
  const stampEnd = stampEndOf(body, record.paddingOffset - record.offset);
  const length = Math.min(body.length, request.length);
  for (let at = 0; at < length; at++) {
    if (at >= record.paddingOffset - record.offset && at < stampEnd) continue;
    const sent = request[at]!;
    const got = body[at]!;
    if (got === sent) continue;
    if (sent >= LOWER_A && sent <= LOWER_Z && got === sent - CASE_OFFSET) {
      change.upper = true;
      continue;
    }
    change.altered ??= { at, sent, got };
  }
  if (body.length < request.length) change.truncated = body.length;
  else if (body.length > request.length) {
    change.altered ??= { at: request.length, sent: -1, got: body[request.length]! };
  }
  return change;
}

/**
 * Whether the record of `reply` is, byte for byte, the one `request` starts
 * with: then its fields are the request's, and so is the request they
 * encode. (A sent time's three decimals read back as the same number:
 * times below 2^43 ms, the year 2248, are exact to less than half of 0.001.)
 * An uppercasing server leaves the record as it was: it is all capitals.
 */
function carriesRecordOf(reply: Uint8Array, record: PingRecord, request: Uint8Array): boolean {
  const length = record.paddingOffset - record.offset;
  if (length > request.length) return false;
  for (let at = 0; at < length; at++) {
    if (reply[record.offset + at] !== request[at]) return false;
  }
  return true;
}

/** Where a stamp written at `paddingOffset` ends (after its `;`), or
 * `paddingOffset` when there is none. */
function stampEndOf(body: Uint8Array, paddingOffset: number): number {
  if (body[paddingOffset] !== STAMP_MARK) return paddingOffset;
  const end = body.indexOf(STAMP_END, paddingOffset);
  return end < 0 ? paddingOffset : end + 1;
}

/**
 * Whether `change` is none: the reply was an exact echo (a stamp aside).
 *
 * @example
 * ```ts
 * import { isExactEcho } from "./reply_check.ts";
 * import { equal } from "node:assert/strict";
 * equal(isExactEcho({}), true);
 * equal(isExactEcho({ upper: true }), false);
 * ```
 */
export function isExactEcho(change: ReplyChange): boolean {
  return change.prefix === undefined && !change.upper && change.truncated === undefined &&
    change.altered === undefined;
}

/**
 * What kind of change it is, as the summary counts replies: the kinds
 * (`prefixed "OK..."`, `uppercased`, `truncated`, `altered`) joined by
 * commas, the prefix's text kept, a truncation's length and an altered
 * byte not; empty for an exact echo.
 *
 * @example
 * ```ts
 * import { changeKind } from "./reply_check.ts";
 * import { equal } from "node:assert/strict";
 * equal(changeKind({ prefix: "OK...", upper: true }), 'prefixed "OK...", uppercased');
 * equal(changeKind({ altered: { at: 40, sent: 0x61, got: 0x21 } }), "altered");
 * ```
 */
export function changeKind(change: ReplyChange): string {
  const kinds: string[] = [];
  if (change.prefix !== undefined) kinds.push(`prefixed "${change.prefix}"`);
  if (change.upper) kinds.push("uppercased");
  if (change.truncated !== undefined) kinds.push("truncated");
  if (change.altered) kinds.push("altered");
  return kinds.join(", ");
}

/**
 * The words for a change, as the reply line prints them
 * (`uppercased`, `prefixed "OK..."`, `truncated to 100 bytes`,
 * `byte #40 should be 0x61 but was 0x41`); empty for an exact echo.
 *
 * @example
 * ```ts
 * import { describeChange } from "./reply_check.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * deepStrictEqual(describeChange({ upper: true, truncated: 20 }), ["uppercased", "truncated to 20 bytes"]);
 * ```
 */
export function describeChange(change: ReplyChange): string[] {
  const words: string[] = [];
  if (change.prefix !== undefined) words.push(`prefixed "${change.prefix}"`);
  if (change.upper) words.push("uppercased");
  if (change.truncated !== undefined) words.push(`truncated to ${change.truncated} bytes`);
  const altered = change.altered;
  if (altered) {
    const hex = (byte: number) => `0x${byte.toString(16).padStart(2, "0")}`;
    words.push(
      altered.sent < 0
        ? `${altered.at} bytes sent, more came back`
        : `byte #${altered.at} should be ${hex(altered.sent)} but was ${hex(altered.got)}`,
    );
  }
  return words;
}
