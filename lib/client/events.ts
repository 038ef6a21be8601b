/**
 * What a ping run yields, and how a received datagram becomes one of those
 * events: a reply, a duplicate, or a stray datagram that is counted and
 * otherwise ignored.
 *
 * @module
 */

import { findRecord, readStampAt } from "../../protocol.ts";
import { formatAddress, sameAddress } from "../shared/net.ts";
import type { PingTally, StrayReason, TallySummary } from "./tally.ts";
import { changeKind, checkReply, describeChange, isExactEcho } from "./reply_check.ts";
import { escapeBytes } from "../shared/log.ts";
import { SHOWN_PAYLOAD_BYTES } from "../../settings.ts";

export type { StrayReason };

/** What `ping()` yields, in the order things happen. */
export type PingEvent =
  | {
    type: "reply";
    seq: number;
    /** Round-trip time in ms. */
    rtt: number;
    bytes: number;
    from: string;
    /** It came after its timeout had been reported. */
    late: boolean;
    /** A later request's reply came before it. */
    reordered: boolean;
    /** What the server did to it, when it is not an exact echo
     * (`uppercased`, `prefixed "OK..."`, `truncated to 100 bytes`, ...). */
    changed?: string;
    /** The reply's text, escaped (with `verbose`). */
    payload?: string;
  }
  | { type: "duplicate"; seq: number; rtt: number; bytes: number; from: string }
  | { type: "timeout"; seq: number }
  /** A request went out; `time` is the send time in ms since the epoch. */
  | { type: "sent"; seq: number; bytes: number; time: number }
  | { type: "error"; seq: number; target: string; message: string }
  /** An ICMP port unreachable came back (kernel-stamped socket only). */
  | { type: "unreachable"; seq: number; target: string }
  | {
    type: "stray";
    reason: StrayReason;
    bytes: number;
    from: string;
    /** The datagram's text, escaped (with `verbose`). */
    payload?: string;
  }
  /** Something the user should know about the run (printed on stderr). */
  | { type: "notice"; text: string }
  | { type: "summary"; summary: PingSummary };

/** The figures of a finished run. */
export interface PingSummary extends TallySummary {
  /** The target as given, `host:port`. */
  target: string;
  /** The address pinged, `ip:port`. */
  address: string;
  /** Milliseconds from the first send until the last request was settled. */
  time: number;
  /** Which clock timed the round trips: the kernel's receive timestamps,
   * or the runtime's when the datagram was handed over. */
  clock: "kernel" | "runtime";
}

/** What {@linkcode classify} needs to know of the run. */
export interface Expected {
  /** The server's address and port: datagrams from elsewhere are stray. */
  address: string;
  port: number;
  /** The run's token, as text and as its number. */
  token: string;
  tokenValue: number;
  tally: PingTally;
  /** The requests' size and whether they asked for a stamp: what the
   * server's reply is compared with. */
  size: number;
  stamp: boolean;
  /** The bytes of the latest request sent, once one is: its reply is
   * compared with them. */
  latest?: Uint8Array;
  /** Put each reply's and stray datagram's escaped text in its event. */
  verbose?: boolean;
}

/**
 * Decides what a datagram is and records it in the run's tally.
 *
 * @example
 * ```ts
 * import { classify } from "./events.ts";
 * import { PingTally } from "./tally.ts";
 * import { encodeRequest } from "../../protocol.ts";
 * import { equal } from "node:assert/strict";
 * const tally = new PingTally(1, 1000);
 * tally.sent(1, 0, 0);
 * const data = encodeRequest({ seq: 1, sent: 0, token: "0000BEEF", size: 64 });
 * const from = { transport: "udp" as const, hostname: "127.0.0.1", port: 9 };
 * const expected = { address: "127.0.0.1", port: 9, token: "0000BEEF", tokenValue: 0xbeef, tally, size: 64, stamp: false };
 * equal(classify(data, from, 0.2, expected).type, "reply");
 * ```
 */
export function classify(
  data: Uint8Array,
  source: Deno.NetAddr,
  at: number,
  expected: Expected,
): PingEvent {
  const { tally } = expected;
  const from = formatAddress(source.hostname, source.port);
  const bytes = data.length;
  const stray = (reason: StrayReason): PingEvent => {
    tally.stray(reason);
    const event: PingEvent = { type: "stray", reason, bytes, from };
    if (expected.verbose) event.payload = escapeBytes(data, SHOWN_PAYLOAD_BYTES);
    return event;
  };
  if (source.port !== expected.port || !sameAddress(source.hostname, expected.address)) {
    return stray("foreign-address");
  }
  const record = findRecord(data);
  if (record === null) return stray("no-record");
  if (record.tokenValue !== expected.tokenValue) return stray("wrong-token");
  const reading = readStampAt(data, record.paddingOffset);
  const { seq } = record;
  const replyClass = tally.reply(seq, at, reading.kind === "stamped" ? reading.stamp : undefined);
  if (replyClass.kind === "unknown-seq" || replyClass.kind === "before-request") {
    return stray(replyClass.kind);
  }
  if (replyClass.kind === "duplicate") {
    return { type: "duplicate", seq, rtt: replyClass.rtt, bytes, from };
  }
  const { rtt, late, reordered } = replyClass;
  const event: PingEvent = { type: "reply", seq, rtt, bytes, from, late, reordered };
  const change = checkReply(data, record, expected.size, expected.stamp, expected.latest);
  if (!isExactEcho(change)) {
    event.changed = describeChange(change).join(", ");
    tally.changed(changeKind(change));
  }
  if (expected.verbose) event.payload = escapeBytes(data, SHOWN_PAYLOAD_BYTES);
  return event;
}
