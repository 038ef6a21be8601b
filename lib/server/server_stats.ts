/**
 * The server's counters and the summary it prints when it stops.
 *
 * @module
 */

import { formatAddress } from "../shared/net.ts";

/** The server's live counters. Every datagram received is counted once in
 * exactly one of replied, dropped, limited, ignored, failed, overflow,
 * held (while held) or abandoned (held when the server closed). */
export interface ServerStats {
  /** Datagrams received. */
  received: number;
  /** Requests answered (a duplicated reply counts once here). */
  replied: number;
  /** Requests dropped by `--loss`, as if lost on the way in. */
  dropped: number;
  /** Requests not answered because their source was over `--rate`. */
  limited: number;
  /** Datagrams not answered on purpose: `--silent`, heartbeats, and
   * sources refused (see `refused` and `loops`). */
  ignored: number;
  /** Of `ignored`: sources no client uses (port 0, a privileged port) or
   * the server's own address. */
  refused: number;
  /** Of `ignored`: datagrams that bounced back from where the same bytes
   * were just sent (an echo loop). */
  loops: number;
  /** Replies whose send failed (logged; the loop goes on). */
  failed: number;
  /** Replies dropped because too many were held back already. */
  overflow: number;
  /** Replies held back by `--delay` or `--reorder`, not yet sent. */
  held: number;
  /** Replies still held back when the server closed, never sent. */
  abandoned: number;
  /** Replies sent a second time by `--duplicate`. */
  duplicated: number;
  /** Replies `--reorder` sent after a reply to a later request of the
   * same client. */
  reordered: number;
  /** Heartbeats recognised (`--heartbeat`). */
  heartbeats: number;
  /** Distinct clients (address and port) seen, up to a cap. */
  clients: number;
  /** The client count reached its cap (then it is a lower bound). */
  clientsCapped: boolean;
}

/**
 * Counters all at zero.
 *
 * @example
 * ```ts
 * import { newServerStats } from "./server_stats.ts";
 * import { equal } from "node:assert/strict";
 * equal(newServerStats().received, 0);
 * ```
 */
export function newServerStats(): ServerStats {
  return {
    received: 0,
    replied: 0,
    dropped: 0,
    limited: 0,
    ignored: 0,
    refused: 0,
    loops: 0,
    failed: 0,
    overflow: 0,
    held: 0,
    abandoned: 0,
    duplicated: 0,
    reordered: 0,
    heartbeats: 0,
    clients: 0,
    clientsCapped: false,
  };
}

/**
 * The lines printed when the server stops. The figures after `received`
 * on the first line add up to it: a figure that is usually zero (overflow,
 * held, abandoned at exit) is shown only when it is not.
 *
 * @example
 * ```ts
 * import { newServerStats, serverSummary } from "./server_stats.ts";
 * import { match } from "node:assert/strict";
 * const lines = serverSummary({ transport: "udp", hostname: "127.0.0.1", port: 12000 }, newServerStats());
 * match(lines[2]!, /^0 received, 0 replied/);
 * ```
 */
export function serverSummary(addr: Deno.NetAddr, stats: ServerStats): string[] {
  const clients = `${stats.clients}${stats.clientsCapped ? "+" : ""}`;
  const fates = [
    `${stats.received} received`,
    `${stats.replied} replied`,
    `${stats.dropped} dropped`,
    `${stats.limited} rate-limited`,
    `${stats.ignored} ignored`,
    `${stats.failed} failed sends`,
    stats.overflow > 0 ? `${stats.overflow} overflow` : "",
    stats.held > 0 ? `${stats.held} held` : "",
    stats.abandoned > 0 ? `${stats.abandoned} abandoned at exit` : "",
    `${clients} ${stats.clients === 1 && !stats.clientsCapped ? "client" : "clients"}`,
  ];
  const lines = [
    "",
    `--- ${formatAddress(addr.hostname, addr.port)} udping server statistics ---`,
    fates.filter(Boolean).join(", "),
  ];
  if (stats.duplicated + stats.reordered > 0) {
    lines.push(`${stats.duplicated} duplicated, ${stats.reordered} reordered`);
  }
  if (stats.refused + stats.loops > 0) {
    lines.push(`of the ignored: ${stats.refused} refused sources, ${stats.loops} loops`);
  }
  return lines;
}
