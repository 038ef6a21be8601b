/**
 * What the server does with each datagram, decided without doing it:
 * {@linkcode Policy.decide} returns a {@linkcode Verdict} (reply, drop,
 * refuse, ...), {@linkcode describe} turns it into the log text, and the
 * caller performs it (see outbox.ts). No socket, no timer: a test feeds
 * datagrams and reads verdicts.
 *
 * The server's counters live here too ({@linkcode ServerStats}): the policy
 * counts most of them. The lab's impairments (loss, delay, jitter, duplicates, reordering) are
 * drawn here, from a seeded generator so that `--seed` makes a run
 * repeatable, and so are the counts of clients and of requests per token,
 * in bounded memory: a flood of new (or forged) sources cannot grow them.
 *
 * @module
 */

import { findRecord, type PingRecord, refusalsThatFit } from "../../protocol.ts";
import {
  DEFAULT_RATE,
  MAX_REORDER_HOLD_MS,
  MAX_TRACKED_CLIENTS,
  MAX_TRACKED_TOKENS,
} from "../../settings.ts";
import { type InterfaceAddress, LoopGuard, type SourceCheck } from "./loop_guard.ts";
import { RateLimiter } from "./rate_limit.ts";
import type { ReplyMode } from "./reply.ts";
import type { Heartbeat } from "./heartbeat.ts";
import { keyedNumber, KeyMap } from "../shared/keyed_hash.ts";
import { clientKey, formatAddress } from "../shared/net.ts";
import { SlotList } from "./slot_list.ts";

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
 * import { newServerStats } from "./verdict.ts";
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

/** Why a datagram got no answer on purpose. */
export type IgnoreReason = "silent" | "heartbeat" | Exclude<SourceCheck, "ok">;

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
 * import { newServerStats } from "./verdict.ts";
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
    // Parsed once, for the loop guard and the stamp.
    const head = findRecord(request, { anywhere: false });
    const source = this.#guard.check(from.hostname, from.port, request, at, head);
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
    return { kind: "reply", fate, stamp: this.#stampPlan(head, request, from, at) };
  }

  /** The outbox's `sent`: a reply to `to` went out at `at` (when it really
   * left, after any hold), so that a datagram bouncing right back is
   * scored. The guard goes by timing, not by the reply's bytes. */
  sent(_reply: Uint8Array, to: Deno.NetAddr, at: number): void {
    this.#guard.sent(to.hostname, to.port, at);
  }

  #stampPlan(
    head: PingRecord | null,
    request: Uint8Array,
    from: Deno.NetAddr,
    at: number,
  ): StampPlan | undefined {
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

/** The impairments a server applies, each 0 (off) by default. */
export interface Impairments {
  /** Probability (0 to 1) of dropping each request. */
  loss?: number;
  /** Milliseconds to hold each reply back. */
  delay?: number;
  /** Milliseconds of uniform spread around `delay` (±jitter), at most
   * `delay`: a spread cut at zero would move the mean. */
  jitter?: number;
  /** Probability (0 to 1) of sending a reply twice. */
  duplicate?: number;
  /** Probability (0 to 1) of holding a reply back until a reply to a
   * later request has gone out (see outbox.ts). */
  reorder?: number;
}

/** What happens to one request. */
export interface Fate {
  /** Dropped on arrival (`--loss`). */
  drop: boolean;
  /** Milliseconds to hold the reply back. */
  delay: number;
  /** Sent twice (`--duplicate`). */
  duplicate: boolean;
  /** Held back until a reply to a later request has gone out
   * (`--reorder`). */
  reorder: boolean;
}

/** Every impairment, in the order they are drawn. */
export const IMPAIRMENT_NAMES: readonly (keyof Impairments)[] = [
  "loss",
  "delay",
  "jitter",
  "duplicate",
  "reorder",
];

/** The fate of every request when no impairment is set: no random draws. */
export const UNIMPAIRED: Fate = Object.freeze({
  drop: false,
  delay: 0,
  duplicate: false,
  reorder: false,
});

/**
 * The names of the impairments `options` sets.
 *
 * @example
 * ```ts
 * import { impairmentsSet } from "./verdict.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * deepStrictEqual(impairmentsSet({ loss: 0.3, delay: 0 }), ["loss"]);
 * ```
 */
export function impairmentsSet(options: Impairments): (keyof Impairments)[] {
  return IMPAIRMENT_NAMES.filter((name) => (options[name] ?? 0) > 0);
}

/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the
 * same sequence of numbers in [0, 1).
 *
 * @example
 * ```ts
 * import { createRandom } from "./verdict.ts";
 * import { equal } from "node:assert/strict";
 * equal(createRandom(42)(), createRandom(42)());
 * ```
 */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * Decides one request's fate. It draws exactly four numbers per request,
 * whatever the options, so that a seeded run is predictable: the first
 * decides the drop (drawn < loss), the second the jitter, the third the
 * duplicate (drawn < duplicate), the fourth the reorder (drawn < reorder).
 *
 * @example
 * ```ts
 * import { createRandom, decideFate } from "./verdict.ts";
 * import { equal } from "node:assert/strict";
 * equal(decideFate(createRandom(1), { loss: 1 }).drop, true);
 * equal(decideFate(createRandom(1), { delay: 20 }).delay, 20);
 * ```
 */
export function decideFate(random: () => number, impairments: Impairments): Fate {
  const drop = random() < (impairments.loss ?? 0);
  const spread = (impairments.jitter ?? 0) * (2 * random() - 1);
  const duplicate = random() < (impairments.duplicate ?? 0);
  const reorder = random() < (impairments.reorder ?? 0);
  return { drop, delay: Math.max(0, (impairments.delay ?? 0) + spread), duplicate, reorder };
}

/** Counts requests per client token, forgetting the least recently seen:
 * slots in a {@linkcode SlotList}, so a hit moves no Map entry. */
export class TokenCounter {
  readonly #slots: KeyMap<number>;
  readonly #tokens: Float64Array;
  readonly #counts: Float64Array;
  readonly #order: SlotList;
  readonly #capacity: number;
  #size = 0;

  constructor(capacity = MAX_TRACKED_TOKENS) {
    this.#capacity = capacity;
    this.#slots = new KeyMap(capacity);
    this.#tokens = new Float64Array(capacity);
    this.#counts = new Float64Array(capacity);
    this.#order = new SlotList(capacity);
  }

  hit(token: number): number {
    // Keyed: tokens are the sender's choice (keyed_hash.ts).
    const key = keyedNumber(token);
    let slot = this.#slots.get(key);
    if (slot === undefined) {
      if (this.#size < this.#capacity) slot = this.#size++;
      else {
        slot = this.#order.first;
        this.#slots.delete(this.#tokens[slot]!);
      }
      this.#slots.set(key, slot);
      this.#tokens[slot] = key;
      this.#counts[slot] = 0;
    }
    this.#order.push(slot);
    return ++this.#counts[slot]!;
  }

  get size(): number {
    return this.#size;
  }
}

/** Counts distinct clients up to a cap: their keys in a {@linkcode KeyMap}. */
class ClientCounter {
  readonly #seen: KeyMap<true>;
  readonly #capacity: number;
  #last = -1;

  constructor(capacity = MAX_TRACKED_CLIENTS) {
    this.#capacity = capacity;
    this.#seen = new KeyMap(capacity);
  }

  see(hostname: string, port: number): number {
    const key = clientKey(hostname, port);
    // The same client again (the common case) touches no table.
    if (key !== this.#last && this.#seen.size < this.#capacity) this.#seen.set(key, true);
    this.#last = key;
    return this.#seen.size;
  }

  get full(): boolean {
    return this.#seen.size >= this.#capacity;
  }
}
