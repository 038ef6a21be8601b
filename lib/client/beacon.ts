/**
 * The textbook beacon: send a datagram every interval and wait for
 * nothing. With a text, `{now}` and `{seq}` expand; without one, each
 * datagram is a udping record (sequence number and send time), the
 * heartbeat that `server.ts --heartbeat` watches.
 *
 * A beacon whose process was stalled (Ctrl-Z, a debugger, an overloaded
 * machine) sends the next seq once it runs again, then keeps its interval
 * from there: no burst of the sends it owed, and no seq left out. A stalled
 * sender is not a lossy network, so a heartbeat monitor sees a silence and
 * no loss; the beacon says how many sends the stall skipped.
 *
 * @module
 */

import { MAX_COUNT, MAX_UDP_PAYLOAD_V4, MAX_UDP_PAYLOAD_V6, settings } from "../../settings.ts";
import { encodeRequest, randomToken } from "../../protocol.ts";
import { printLine } from "../shared/output.ts";
import { isoTime } from "../shared/log.ts";
import { describeError, formatAddress, resolveHost } from "../shared/net.ts";
import { planBeacon } from "./ping_options.ts";
import { openClientSocket } from "../shared/socket.ts";
import { sleepUntil } from "../shared/timer.ts";

/** What {@linkcode beacon} does. */
export interface BeaconOptions {
  /** Host name or IP literal to send to. */
  host?: string;
  /** The port to send to, 1-65535. */
  port?: number;
  /** The text to send (`{now}`: local ISO time, `{seq}`: the counter);
   * left out: a udping heartbeat record. */
  text?: string;
  /** How many datagrams to send; left out: until `deadline` or abort. */
  count?: number;
  /** Seconds between sends, on a fixed schedule. */
  interval?: number;
  /** Seconds after which it stops. */
  deadline?: number;
  /** Times in `{now}` in UTC. */
  utc?: boolean;
  /** Ends the beacon. */
  signal?: AbortSignal;
}

/** One datagram the beacon sent, or failed to. */
export interface BeaconSent {
  /** Its counter, from 1. */
  seq: number;
  /** What was sent, as text. */
  text: string;
  /** Its size in bytes. */
  bytes: number;
  /** Where it went, `ip:port`. */
  to: string;
  /** Why the send failed, if it did. */
  error?: string;
  /** Sends the schedule skipped just before this one because the process
   * was stalled; this one went out `behindMs` late. */
  skipped?: number;
  /** How far behind its schedule this send went out, ms, when it skipped. */
  behindMs?: number;
}

/**
 * How many whole intervals went by between a send's due time and `now`:
 * the sends a stalled process missed. A beacon that wakes this late sends
 * once and takes up its interval from `now`.
 *
 * @example
 * ```ts
 * import { missedSends } from "./beacon.ts";
 * import { equal } from "node:assert/strict";
 * equal(missedSends(1000, 1002, 500), 0); // a timer a little late
 * equal(missedSends(1000, 3600, 500), 5); // stalled 2.6 s
 * ```
 */
export function missedSends(due: number, now: number, intervalMs: number): number {
  return Math.max(0, Math.floor((now - due) / intervalMs));
}

/**
 * Expands `{now}` and `{seq}` in a beacon's text.
 *
 * @example
 * ```ts
 * import { expandBeacon } from "./beacon.ts";
 * import { equal } from "node:assert/strict";
 * equal(expandBeacon("tick {seq}", 3, Date.now()), "tick 3");
 * ```
 */
export function expandBeacon(text: string, seq: number, now: number, utc = false): string {
  return text.replaceAll("{now}", isoTime(now, utc)).replaceAll("{seq}", String(seq));
}

/**
 * Sends every interval, `count` times (or until the deadline or abort),
 * yielding what it sent.
 *
 * @example
 * ```ts
 * import { beacon } from "./beacon.ts";
 * import { equal } from "node:assert/strict";
 * const sent = await Array.fromAsync(beacon({ port: 9, text: "tick {seq}", count: 2, interval: 0.01 }));
 * equal(sent[1]?.text, "tick 2");
 * ```
 */
export async function* beacon(options: BeaconOptions): AsyncGenerator<BeaconSent> {
  const { port, count, intervalMs, deadlineMs } = planBeacon(options);
  const { address, family } = await resolveHost(options.host ?? settings.host);
  const destination: Deno.NetAddr = { transport: "udp", hostname: address, port };
  const to = formatAddress(address, port);
  const token = randomToken();
  const encoder = new TextEncoder();
  if (options.text !== undefined) {
    // The text at its longest: {seq} with the most digits it can have.
    const longest = expandBeacon(options.text, Math.min(count, MAX_COUNT), Date.now(), options.utc);
    const bytes = encoder.encode(longest).length;
    const largest = family === 6 ? MAX_UDP_PAYLOAD_V6 : MAX_UDP_PAYLOAD_V4;
    if (bytes > largest) {
      throw new RangeError(
        `text must be at most ${largest} bytes (one datagram over IPv${family}), got ${bytes}`,
      );
    }
  }
  using socket = openClientSocket(family);
  const start = performance.now();
  const { signal } = options;
  // Send `seq` at `start + offset`, the offset counted from the send a
  // stall last moved (computed, not summed, so no rounding builds up).
  let [movedOffset, movedSeq] = [0, 1];
  for (let seq = 1; seq <= count && !signal?.aborted; seq++) {
    const offset = movedOffset + (seq - movedSeq) * intervalMs;
    if (offset >= deadlineMs) break;
    await sleepUntil(start + offset, signal);
    if (signal?.aborted) break;
    const woke = performance.now();
    const skipped = missedSends(start + offset, woke, intervalMs);
    if (skipped > 0) [movedOffset, movedSeq] = [woke - start, seq];
    if (movedOffset >= deadlineMs) break; // the stall outlasted -w
    const now = performance.timeOrigin + woke;
    const data = options.text === undefined
      ? encodeRequest({ seq, sent: now, token, size: 0 })
      : encoder.encode(expandBeacon(options.text, seq, now, options.utc));
    const sent: BeaconSent = { seq, text: new TextDecoder().decode(data), bytes: data.length, to };
    if (skipped > 0) Object.assign(sent, { skipped, behindMs: woke - start - offset });
    try {
      await socket.send(data, destination);
    } catch (error) {
      sent.error = describeError(error);
    }
    yield sent;
  }
}

/**
 * The line that tells a student a stall skipped sends, before the send
 * that follows it.
 *
 * @example
 * ```ts
 * import { describeStall } from "./beacon.ts";
 * import { equal } from "node:assert/strict";
 * equal(
 *   describeStall({ seq: 6, skipped: 5, behindMs: 2600 }),
 *   "stalled: 5 sends skipped, not made up; seq=6 goes out 2.6 s late, without a gap",
 * );
 * ```
 */
export function describeStall(sent: Pick<BeaconSent, "seq" | "skipped" | "behindMs">): string {
  const late = ((sent.behindMs ?? 0) / 1000).toFixed(1);
  return `stalled: ${sent.skipped} sends skipped, not made up; ` +
    `seq=${sent.seq} goes out ${late} s late, without a gap`;
}

/** `client.ts --send`: a line per datagram sent (none with `quiet`, -q);
 * on Ctrl-C, how many. */
export async function runBeacon(
  options: BeaconOptions,
  signal: AbortSignal,
  quiet = false,
): Promise<number> {
  let sent = 0;
  for await (const each of beacon({ ...options, signal })) {
    if (each.skipped) printLine(describeStall(each));
    if (each.error) printLine(`not sent to ${each.to}: seq=${each.seq} ${each.error}`);
    else if (quiet) sent++;
    else printLine(`sent ${each.bytes} bytes to ${each.to}: seq=${each.seq} ${each.text}`), sent++;
  }
  if (signal.aborted) printLine(`\nbeacon stopped: ${sent} sent`);
  return 0;
}
