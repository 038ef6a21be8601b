/**
 * The textbook beacon: send a datagram every interval and wait for
 * nothing. With a text, `{now}` and `{seq}` expand; without one, each
 * datagram is a udping record (sequence number and send time), the
 * heartbeat that `server.ts --heartbeat` watches.
 *
 * @module
 */

import { settings } from "../settings.ts";
import { encodeRequest, randomToken } from "../protocol.ts";
import { checkNumber, printLine } from "./cli.ts";
import { isoTime } from "./log.ts";
import { checkPort, describeError, formatAddress, resolveHost } from "./net.ts";
import { PING_RULES } from "./ping_options.ts";
import { openClientSocket } from "./socket.ts";
import { sleepUntil } from "./timer.ts";

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
  const port = checkPort(options.port ?? settings.port);
  const count = options.count === undefined
    ? Infinity
    : checkNumber("count", options.count, PING_RULES.count.rule);
  const intervalMs =
    checkNumber("interval", options.interval ?? settings.interval, PING_RULES.interval.rule) * 1000;
  const deadlineMs = options.deadline === undefined
    ? Infinity
    : checkNumber("deadline", options.deadline, PING_RULES.deadline.rule) * 1000;
  const { address, family } = await resolveHost(options.host ?? settings.host);
  const destination: Deno.NetAddr = { transport: "udp", hostname: address, port };
  const to = formatAddress(address, port);
  const token = randomToken();
  const encoder = new TextEncoder();
  using socket = openClientSocket(family);
  const start = performance.now();
  const { signal } = options;
  for (let seq = 1; seq <= count && !signal?.aborted; seq++) {
    // After a stall (Ctrl-Z, a suspended laptop) the missed sends are
    // skipped, not sent in a burst: a heartbeat monitor sees the gap.
    const behind = Math.floor((performance.now() - start) / intervalMs) + 1;
    if (behind > seq + 1) seq = Math.min(behind - 1, count);
    const offset = (seq - 1) * intervalMs;
    if (offset >= deadlineMs) break;
    await sleepUntil(start + offset, signal);
    if (signal?.aborted) break;
    const now = performance.timeOrigin + performance.now();
    const data = options.text === undefined
      ? encodeRequest({ seq, sent: now, token, size: 0 })
      : encoder.encode(expandBeacon(options.text, seq, now, options.utc));
    const text = new TextDecoder().decode(data);
    try {
      await socket.send(data, destination);
      yield { seq, text, bytes: data.length, to };
    } catch (error) {
      yield { seq, text, bytes: data.length, to, error: describeError(error) };
    }
  }
}

/** `client.ts --send`: a line per datagram sent; on Ctrl-C, how many. */
export async function runBeacon(options: BeaconOptions, signal: AbortSignal): Promise<number> {
  let sent = 0;
  for await (const each of beacon({ ...options, signal })) {
    if (each.error) printLine(`not sent to ${each.to}: seq=${each.seq} ${each.error}`);
    else printLine(`sent ${each.bytes} bytes to ${each.to}: seq=${each.seq} ${each.text}`), sent++;
  }
  if (signal.aborted) printLine(`\nbeacon stopped: ${sent} sent`);
  return 0;
}
