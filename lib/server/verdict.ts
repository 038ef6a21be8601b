/**
 * What the server does with each datagram, decided without doing it:
 * {@linkcode Policy.decide} returns a {@linkcode Verdict} (reply, drop,
 * refuse, ...), {@linkcode describe} turns it into the log text, and the
 * caller performs it (see outbox.ts). No socket, no timer: a test feeds
 * datagrams and reads verdicts.
 *
 * @module
 */

import { findRecord, findRequest, refusalsThatFit } from "../../protocol.ts";
import { DEFAULT_RATE, MAX_REORDER_HOLD_MS } from "../../settings.ts";
import { ClientCounter, TokenCounter } from "./bounded_map.ts";
import {
  createRandom,
  decideFate,
  type Fate,
  type Impairments,
  impairmentsSet,
  UNIMPAIRED,
} from "./impairments.ts";
import { type InterfaceAddress, LoopGuard, type SourceVerdict } from "./loop_guard.ts";
import { RateLimiter } from "./rate_limit.ts";
import type { ReplyMode } from "./reply.ts";
import type { ServerStats } from "./server_stats.ts";
import type { Heartbeat } from "./heartbeat.ts";
import { formatAddress } from "../shared/net.ts";

/** Why a datagram got no answer on purpose. */
export type IgnoreReason = "silent" | "heartbeat" | Exclude<SourceVerdict, "ok">;

/** Where and what to stamp in a reply, filled in as it goes out. */
export interface StampPlan {
  /** Where the padding starts in the request, in bytes. */
  paddingOffset: number;
  /** Requests with this token received so far, this one included. */
  count: number;
  /** When the request arrived, ms since the Unix epoch. */
  receivedAt: number;
  /** Requests of this source refused by `--rate` that it has not been
   * told of, as many as this stamp has room for (the rest wait for a
   * later one). */
  refused: number;
}

/** The decision about one datagram. */
export type Verdict =
  | { kind: "reply"; fate: Fate; stamp: StampPlan | undefined }
  | { kind: "dropped" }
  | { kind: "limited"; rate: number }
  | { kind: "ignored"; reason: IgnoreReason; heartbeat?: Heartbeat };

/** What {@linkcode Policy} needs to know, from the server's options. */
export interface PolicyOptions extends Impairments {
  mode: ReplyMode;
  /** Replies per second per source; 0: no limit. */
  rate?: number;
  seed?: number;
  /** Recognise heartbeats (udping records) and never answer (seconds of
   * silence before a source is presumed stopped; unset or 0: off). */
  heartbeat?: number;
  /** Answer sources on ports below 1024 too. */
  allowPrivileged?: boolean;
  /** The server's own bound address: never answered. */
  own: Deno.NetAddr;
  /** The machine's interfaces (`readInterfaces()`): their broadcast
   * addresses are never answered, nor, bound to a wildcard, their own. */
  interfaces?: InterfaceAddress[];
}

/**
 * The server's decisions and the state they need: the seeded random draws,
 * the rate limit, the loop guard, the request counts per client token.
 *
 * @example
 * ```ts
 * import { Policy } from "./verdict.ts";
 * import { newServerStats } from "./server_stats.ts";
 * import { equal } from "node:assert/strict";
 * const own = { transport: "udp" as const, hostname: "127.0.0.1", port: 12000 };
 * const policy = new Policy({ mode: "echo", own }, newServerStats());
 * const from = { transport: "udp" as const, hostname: "127.0.0.1", port: 40000 };
 * equal(policy.decide(new TextEncoder().encode("hi"), from, Date.now()).kind, "reply");
 * ```
 */
export class Policy {
  readonly #options: PolicyOptions;
  readonly #stats: ServerStats;
  readonly #impaired: boolean;
  readonly #random: () => number;
  readonly #limiter: RateLimiter | undefined;
  readonly #guard: LoopGuard;
  readonly #tokens = new TokenCounter();
  readonly #clients = new ClientCounter();

  /** Decides for a server with `options`, counting into `stats`. */
  constructor(options: PolicyOptions, stats: ServerStats) {
    this.#options = options;
    this.#stats = stats;
    this.#impaired = impairmentsSet(options).length > 0;
    this.#random = createRandom(options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]!);
    const rate = options.rate ?? DEFAULT_RATE;
    this.#limiter = rate > 0 ? new RateLimiter(rate) : undefined;
    this.#guard = new LoopGuard({
      ownAddresses: [options.own],
      interfaces: options.interfaces,
      allowPrivileged: options.allowPrivileged ?? false,
    });
  }

  /** Decides what becomes of `request`, which came from `from` at `at`
   * (ms since the Unix epoch), and counts it. */
  decide(request: Uint8Array, from: Deno.NetAddr, at: number): Verdict {
    const stats = this.#stats;
    stats.received++;
    stats.clients = this.#clients.see(from.hostname, from.port);
    stats.clientsCapped = this.#clients.full;
    // Drawn for every datagram, so that a seeded run is predictable.
    const fate = this.#impaired ? decideFate(this.#random, this.#options) : UNIMPAIRED;
    const source = this.#guard.check(from.hostname, from.port, request, at);
    if (source !== "ok") {
      stats.ignored++;
      if (source === "loop") stats.loops++;
      else stats.refused++;
      return { kind: "ignored", reason: source };
    }
    if (this.#options.heartbeat) return this.#heartbeat(request, from, at);
    if (this.#options.mode === "silent") {
      stats.ignored++;
      return { kind: "ignored", reason: "silent" };
    }
    if (fate.drop) {
      stats.dropped++;
      return { kind: "dropped" };
    }
    const cost = fate.duplicate ? 2 : 1;
    if (this.#limiter && !this.#limiter.allow(from.hostname, from.port, at, cost)) {
      stats.limited++;
      return { kind: "limited", rate: this.#options.rate ?? DEFAULT_RATE };
    }
    return { kind: "reply", fate, stamp: this.#stampPlan(request, from, at) };
  }

  /** The outbox's `sent`: a reply to `to` went out at `at` (when it really
   * left, after any hold), so that a datagram bouncing right back is
   * scored. The guard goes by timing, not by the reply's bytes. */
  sent(_reply: Uint8Array, to: Deno.NetAddr, at: number): void {
    this.#guard.sent(to.hostname, to.port, at);
  }

  #stampPlan(request: Uint8Array, from: Deno.NetAddr, at: number): StampPlan | undefined {
    const head = findRequest(request);
    if (head === null) return undefined;
    const count = this.#tokens.hit(head.tokenValue);
    if (!head.stampWanted) return undefined;
    // Only the refusals this stamp has room to tell: the server keeps the
    // rest, or the client would count them as lost on the way in.
    const most = refusalsThatFit(count, request.length - head.paddingOffset);
    const refused = this.#limiter?.takeRefused(from.hostname, from.port, most) ?? 0;
    return { paddingOffset: head.paddingOffset, count, receivedAt: at, refused };
  }

  #heartbeat(request: Uint8Array, from: Deno.NetAddr, at: number): Verdict {
    this.#stats.ignored++;
    const head = findRecord(request);
    if (head === null) return { kind: "ignored", reason: "silent" };
    this.#stats.heartbeats++;
    const source = formatAddress(from.hostname, from.port);
    return {
      kind: "ignored",
      reason: "heartbeat",
      heartbeat: { source, seq: head.seq, sent: head.sent, received: at },
    };
  }
}

/**
 * The log text of a verdict: size, an escaped preview and what was done.
 *
 * @example
 * ```ts
 * import { describe } from "./verdict.ts";
 * import { equal } from "node:assert/strict";
 * equal(describe({ kind: "dropped" }, 64, '"PING 1 …"'), '64 bytes "PING 1 …" dropped');
 * ```
 */
export function describe(verdict: Verdict, length: number, preview: string): string {
  return `${length} bytes ${preview} ${action(verdict)}`;
}

const IGNORED: Record<IgnoreReason, string> = {
  silent: "not answered (silent)",
  heartbeat: "heartbeat",
  "own-address": "refused (the server's own address)",
  "port-zero": "refused (source port 0)",
  broadcast: "refused (a broadcast address: the reply would go to every host of a network)",
  multicast: "refused (a multicast address)",
  "privileged-port": "refused (source port below 1024; --allow-privileged answers it)",
  loop: "not answered (echo loop: the reply came back)",
};

function action(verdict: Verdict): string {
  switch (verdict.kind) {
    case "dropped":
      return "dropped";
    case "limited":
      return `not answered (over ${verdict.rate}/s)`;
    case "ignored":
      return IGNORED[verdict.reason];
    case "reply": {
      // A reply held for --reorder gets a second line as it leaves (outbox.ts).
      const { delay, duplicate, reorder } = verdict.fate;
      const delayed = delay > 0 ? `delayed ${delay.toFixed(delay < 10 ? 1 : 0)} ms` : "";
      const held = reorder ? `held for reorder (at most ${MAX_REORDER_HOLD_MS} ms)` : "";
      const text = delayed && held ? `${delayed}, then ${held}` : delayed || held || "replied";
      return duplicate ? `${text}, duplicated` : text;
    }
  }
}
