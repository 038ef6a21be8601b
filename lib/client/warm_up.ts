/**
 * Warm-up, done before a ping run's first send and before a server answers
 * its first datagram. The runtime compiles each function the first time it
 * runs and sets up its timers and socket operations on first use: a tenth
 * of a millisecond here and there, which made the first round trip of a
 * run 2–7 ms where the others took 0.4 ms, and a fresh server's first
 * reply 4 ms late (bench table 7). The warm-up does that work first, on
 * scratch data and scratch state, so that the first pings time the
 * network. Nothing is sent, no sample is set aside, and the server's
 * seeded impairments draw the same as without it.
 *
 * @module
 */

import { encodeRequest } from "../../protocol.ts";
import { settings } from "../../settings.ts";
import { classify, type Expected, type PingEvent } from "./events.ts";
import { escapeBytes, logger } from "../shared/log.ts";
import { Outbox } from "../server/outbox.ts";
import type { PingSocket } from "./ping_socket.ts";
import { eventLine } from "./report.ts";
import { newServerStats } from "../server/server_stats.ts";
import { primeSend, type ServerSocket } from "../shared/socket.ts";
import { PingTally } from "./tally.ts";
import { dueBy } from "../shared/timer.ts";
import { describe, Policy, type PolicyOptions } from "../verdict.ts";

/** The token of the server's rehearsal request. */
const REHEARSAL_TOKEN = "0000BEEF";
/** The source port of the server's rehearsal request: an ordinary
 * client's, above the ports it refuses. */
const REHEARSAL_PORT = 40000;

/**
 * Warms up `socket` (its receive primed, its send path and a timer taken
 * once) and rehearses one probe's bookkeeping and reply line on scratch
 * data shaped like `expected`'s. Resolves in a few milliseconds, or at
 * once when `signal` aborts.
 *
 * @example
 * ```ts
 * import { warmUp } from "./warm_up.ts";
 * import { openPingSocket } from "./ping_socket.ts";
 * import { PingTally } from "./tally.ts";
 * import { equal } from "node:assert/strict";
 * await using socket = (await openPingSocket("127.0.0.1", 9)).socket;
 * const tally = new PingTally(1, 1000);
 * const expected = { address: "127.0.0.1", port: 9, token: "0000BEEF", tokenValue: 0xbeef, tally, size: 64, stamp: false };
 * await warmUp(socket, expected);
 * equal(tally.transmitted, 0);
 * ```
 */
export async function warmUp(
  socket: PingSocket,
  expected: Expected,
  signal?: AbortSignal,
): Promise<void> {
  rehearse(expected);
  await socket.warmUp(signal);
}

/**
 * Warms up a server before it answers anyone: a udping request and a
 * textbook one decided, logged (to nowhere) and replied to (through
 * nowhere) on a scratch copy of its policy, which has `options` and its own
 * seeded draws, and the socket's send path taken once without sending.
 * The log's output is warmed by the banner, written the same way.
 *
 * @example
 * ```ts
 * import { warmUpServer } from "./warm_up.ts";
 * import { RuntimeSocket } from "../shared/socket.ts";
 * import { equal } from "node:assert/strict";
 * const socket = new RuntimeSocket("127.0.0.1", 0, new Uint8Array());
 * await warmUpServer(socket, { mode: "upper", own: socket.addr }, 0);
 * equal(socket.addr.port > 0, true);
 * socket.close();
 * ```
 */
export async function warmUpServer(
  socket: ServerSocket,
  options: PolicyOptions,
  prefixLength: number,
  utc?: boolean,
): Promise<void> {
  const stats = newServerStats();
  const policy = new Policy(options, stats);
  const outbox = new Outbox(() => {}, {
    mode: options.mode,
    prefixLength,
    stats,
    clock: () => socket.clock(),
    sent: (data, to, at) => policy.sent(data, to, at),
    note: () => {},
  });
  const hostname = socket.addr.hostname.includes(":") ? "::1" : "127.0.0.1";
  const from: Deno.NetAddr = { transport: "udp", hostname, port: REHEARSAL_PORT };
  const log = logger(() => {}, utc);
  // The two kinds of request a server sees: a udping record, and the
  // textbook client's line of text.
  const requests = [
    encodeRequest({ seq: 1, sent: socket.clock(), token: REHEARSAL_TOKEN, size: settings.size }),
    new TextEncoder().encode(`Ping 1 ${socket.clock() / 1000}`),
  ];
  for (const request of requests) {
    const buffer = new Uint8Array(prefixLength + request.length);
    buffer.set(socket.buffer.subarray(0, prefixLength));
    buffer.set(request, prefixLength);
    const verdict = policy.decide(request, from, socket.clock());
    log(from, describe(verdict, request.length, `"${escapeBytes(request)}"`));
    if (verdict.kind === "reply") {
      await outbox.reply(buffer, request.length, from, verdict.fate, verdict.stamp);
    }
  }
  outbox.close();
  await primeSend((data, to) => socket.send(data, to), socket.addr.hostname);
}

/** One probe's life on a scratch tally: sent, waited for, answered,
 * printed. Its results are thrown away. */
function rehearse(expected: Expected): void {
  const tally = new PingTally(1, 1000);
  const now = performance.now();
  const sent: PingEvent = { type: "sent", seq: 1, bytes: expected.size, time: now };
  const request = encodeRequest({ ...expected, seq: 1, sent: now });
  tally.sent(1, now, now);
  for (const _ of tally.expire(now, dueBy));
  tally.nextTimeout();
  tally.settled();
  const from: Deno.NetAddr = { transport: "udp", hostname: expected.address, port: expected.port };
  const reply = classify(request, from, performance.now(), { ...expected, tally });
  eventLine(sent);
  eventLine(reply);
}
