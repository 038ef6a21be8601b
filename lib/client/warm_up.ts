/**
 * The client's warm-up, done before a ping run's first send. The runtime
 * compiles each function the first time it runs and sets up its timers and
 * socket operations on first use: a tenth of a millisecond here and there,
 * which made the first round trip of a run 2–7 ms where the others took
 * 0.4 ms (docs/performance.md). The warm-up does that work first, on
 * scratch data and scratch state, so that the first pings time the
 * network. Nothing is sent and no sample is set aside. The server's own
 * warm-up is lib/server/warm_up.ts.
 *
 * @module
 */

import { encodeRequest } from "../../protocol.ts";
import { classify, type Expected, type PingEvent } from "./events.ts";
import type { PingSocket } from "./ping_socket.ts";
import { eventLine } from "./report.ts";
import { PingTally } from "./tally.ts";
import { dueBy } from "../shared/timer.ts";

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
