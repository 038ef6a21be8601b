/**
 * The server's warm-up, done before it answers its first datagram. The
 * runtime compiles each function the first time it runs and sets up its
 * socket operations on first use, which made a fresh server's first reply
 * 4 ms late (docs/performance.md). The warm-up does that work first, on
 * scratch state: nothing is sent, and the seeded impairments draw the same
 * as without it.
 *
 * @module
 */

import { encodeRequest } from "../../protocol.ts";
import { settings } from "../../settings.ts";
import { escapeBytes, logger } from "../shared/log.ts";
import { Outbox } from "./outbox.ts";
import { reply } from "./reply.ts";
import { primeSend, type ServerSocket } from "../shared/socket.ts";
import { describe, newServerStats, Policy, type PolicyOptions } from "./verdict.ts";

/** The token of the server's rehearsal request. */
const REHEARSAL_TOKEN = "0000BEEF";
/** The source port of the server's rehearsal request: an ordinary
 * client's, above the ports it refuses. */
const REHEARSAL_PORT = 40000;

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
 * const socket = new RuntimeSocket("127.0.0.1", 0);
 * await warmUpServer(socket, { mode: "upper", own: socket.addr }, new Uint8Array());
 * equal(socket.addr.port > 0, true);
 * socket.close();
 * ```
 */
export async function warmUpServer(
  socket: ServerSocket,
  options: PolicyOptions,
  prefix: Uint8Array,
  utc?: boolean,
): Promise<void> {
  const stats = newServerStats();
  const policy = new Policy(options, stats);
  const outbox = new Outbox(() => {}, {
    prefixLength: prefix.length,
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
    const verdict = policy.decide(request, from, socket.clock());
    log(from, describe(verdict, request.length, `"${escapeBytes(request)}"`));
    if (verdict.kind === "reply") {
      const data = reply(options.mode, request, prefix);
      if (data) await outbox.send(data, from, verdict.fate, verdict.stamp);
    }
  }
  outbox.close();
  await primeSend((data, to) => socket.send(data, to), socket.addr.hostname);
}
