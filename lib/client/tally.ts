/**
 * The bookkeeping of one ping run, without I/O: what was sent when, what
 * became of each request (answered, late, duplicated, reordered, timed
 * out), which way the lost ones were lost, and every counter of the
 * summary. Memory is fixed whatever the number of pings.
 *
 * @module
 */

import { SEQ_MODULUS, type Stamp } from "../../protocol.ts";
import { MAX_REMEMBERED_REQUESTS } from "../../settings.ts";
import {
  DelayVariation,
  type HistogramRow,
  lossPercent,
  RttStats,
  type RttSummary,
  Timeline,
  type TimelineColumn,
} from "./stats.ts";

/** Why a datagram was not counted as a reply: it came from another
 * address, carried no ping record (not an echo), another run's token, a
 * seq this run never sent or has forgotten, or it was received before its
 * request was sent (a server that guesses the next seq). */
export type StrayReason =
  | "foreign-address"
  | "no-record"
  | "wrong-token"
  | "unknown-seq"
  | "before-request";

/**
 * What a reply turned out to be, as {@linkcode PingTally.reply} decides.
 */
export type ReplyClass =
  | { kind: "reply"; rtt: number; late: boolean; reordered: boolean }
  | { kind: "duplicate"; rtt: number }
  /** Never sent, long forgotten, or its send failed. */
  | { kind: "unknown-seq" }
  /** Received before its request was sent: no round trip. */
  | { kind: "before-request" };

/**
 * Which way the lost requests were lost, as far as stamps can tell.
 */
export interface LossSplit {
  /** Never reached the server. */
  upstream: number;
  /** Reached the server; the reply was lost. */
  downstream: number;
  /** Sent after the last stamped reply: no stamp says where they went. */
  unknown: number;
  /** Reached the server, which refused them by its rate limit (counted
   * apart from upstream loss). */
  rateLimited: number;
}

/**
 * How well the sends kept to their schedule, in milliseconds.
 */
export interface ScheduleSummary {
  /** Mean time between consecutive sends. */
  meanInterval: number;
  /** Mean distance of the sends from their schedule, early or late. */
  meanLateness: number;
  /** How late the latest send was against its scheduled time. */
  worstLateness: number;
  /** The 99th percentile of that distance. */
  p99Lateness: number;
}

/**
 * Every figure of a run; the basis of ping's summary and of `--json`.
 */
export interface TallySummary {
  /** Requests sent. */
  transmitted: number;
  /** Requests answered at least once, late ones included. */
  received: number;
  /** Extra copies of replies already received. */
  duplicates: number;
  /** Answered after their timeout had been reported. */
  late: number;
  /** Answered after a later request had been answered. */
  reordered: number;
  /** Datagrams that were not a reply to this run. */
  stray: number;
  /** The stray datagrams by why they were not a reply. */
  strayByReason: Record<StrayReason, number>;
  /** Sends that failed, ICMP port unreachable included. */
  errors: number;
  /** ICMP port unreachable heard (only the kernel-stamped socket hears it). */
  unreachable: number;
  /** Requests neither answered nor timed out when the run ended (cut off by
   * a deadline or an abort): counted as lost, though undecided. */
  outstanding: number;
  /** Loss in percent. */
  loss: number;
  /** Round-trip times, ms (NaN figures when no reply came): the
   * distribution counts duplicates' round trips too, as ping's does; the
   * variation counts each request's first reply. */
  rtt: RttSummary;
  /** Why the stamps were not believed (a count that went backwards or
   * past what was sent, a hold longer than the round trip) or why there
   * were none (requests too small to carry one), or `null`.
   * Then `lossSplit` and `serverTime` are `null`: unknown, never wrong. */
  stampProblem: string | null;
  /** `null` when no reply carried a stamp (the server does not stamp) or
   * the stamps were not believed: the direction of a loss is unknown. */
  lossSplit: LossSplit | null;
  /** Time the server held each request (its share of the RTT), in ms;
   * `null` when the server did not say. */
  serverTime: RttSummary | null;
  /** How well sends kept to their schedule. */
  schedule: ScheduleSummary;
  /** RTTs in up to 8 rows, for a histogram. */
  histogram: HistogramRow[];
  /** The run in up to 64 columns, for a sparkline. */
  timeline: TimelineColumn[];
  /** Requests per timeline column. */
  timelineSpan: number;
  /** Replies the server changed, by what it did (`uppercased`,
   * `prefixed`, `truncated to`, `byte #`...): empty for exact echoes. */
  changed: Record<string, number>;
}

/** What {@linkcode PingTally.expire} returns when no request timed out. */
const NONE_EXPIRED: readonly number[] = Object.freeze([]);

/** Slots of a new tally's ring, before it grows toward its capacity. */
const INITIAL_SLOTS = 64;

const PENDING = 1;
const ANSWERED = 2;
const TIMED_OUT = 3;
const ANSWERED_LATE = 4;
const SEND_FAILED = 5;

/**
 * The bookkeeping of one ping run, without I/O: what was sent when, what
 * became of each request, and every counter. Memory is fixed: requests are
 * remembered in a ring indexed by seq modulo its size (a power of two, so it
 * divides 2^32 and wrapping seqs stay aligned), large enough for every
 * request that can be in flight at once.
 *
 * @example
 * ```ts
 * import { PingTally } from "./tally.ts";
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * const tally = new PingTally(10, 1000);
 * tally.sent(1, 0, 0);
 * deepStrictEqual(tally.reply(1, 0.25), { kind: "reply", rtt: 0.25, late: false, reordered: false });
 * equal(tally.summary().received, 1);
 * ```
 */
export class PingTally {
  /** Most requests remembered at once: the ring grows up to this. */
  readonly #capacity: number;
  #mask: number;
  #seq: Float64Array;
  #index: Float64Array;
  #sentAt: Float64Array;
  /** When each request was due: its timeout runs from there, so that with
   * -W equal to -i a request times out exactly when the next is sent, and
   * its timeout line comes before the next one's reply, every time. */
  #dueAt: Float64Array;
  #state: Uint8Array;
  /** Each request's RTT and server hold once answered (NaN until then, or
   * when the reply did not say): pairs of consecutive requests make IPDV. */
  #rttOf: Float64Array;
  #heldOf: Float64Array;
  readonly #timeoutMs: number;
  readonly #rtt = new RttStats();
  readonly #rttVariation = new DelayVariation();
  readonly #lateness = new RttStats();
  readonly #serverTime = new RttStats();
  readonly #serverTimeVariation = new DelayVariation();
  readonly #timeline = new Timeline();
  #transmitted = 0;
  #received = 0;
  #duplicates = 0;
  #late = 0;
  #reordered = 0;
  #stray = 0;
  readonly #strayByReason: Record<StrayReason, number> = {
    "foreign-address": 0,
    "no-record": 0,
    "wrong-token": 0,
    "unknown-seq": 0,
    "before-request": 0,
  };
  #errors = 0;
  #unreachable = 0;
  #outstanding = 0;
  #highestIndexAnswered = -1;
  /** The oldest request whose fate may still be open. */
  #timeoutCursor = 0;
  #firstSend = NaN;
  #lastSend = NaN;
  #stampedReplies = 0;
  #refusedByServer = 0;
  #stampProblem: string | null = null;
  #highestStampedIndex = -1;
  #countAtHighestStamp = 0;
  readonly #changes = new Map<string, number>();

  /** `inFlight`: how many requests can be outstanding at once. */
  constructor(inFlight: number, timeoutMs: number) {
    // At most 2^20 slots (50 MB): a request older than that by the time its
    // reply comes is forgotten, and its reply counted as stray.
    this.#capacity = Math.min(
      MAX_REMEMBERED_REQUESTS,
      2 ** Math.max(16, Math.ceil(Math.log2(inFlight + 2))),
    );
    // The ring starts small and doubles as requests are sent: a one-ping
    // run allocated 3 MB here, which made in-process runs grow RSS by
    // tens of MB before a garbage collection returned it.
    const size = Math.min(this.#capacity, INITIAL_SLOTS);
    this.#mask = size - 1;
    this.#seq = new Float64Array(size).fill(-1);
    this.#index = new Float64Array(size);
    this.#sentAt = new Float64Array(size);
    this.#dueAt = new Float64Array(size);
    this.#state = new Uint8Array(size);
    this.#rttOf = new Float64Array(size);
    this.#heldOf = new Float64Array(size);
    this.#timeoutMs = timeoutMs;
  }

  /** Requests sent so far. */
  get transmitted(): number {
    return this.#transmitted;
  }

  /** When the latest request was sent, a `performance.now()` time (NaN
   * before the first). */
  get lastSendAt(): number {
    return this.#lastSend;
  }

  /** Requests neither answered nor timed out nor failed. */
  get outstanding(): number {
    return this.#outstanding;
  }

  /** Records the next request, sent as `seq` at `at` (scheduled for
   * `scheduledAt`), both `performance.now()` times; `wireAt` is the send
   * time in the clock that times its reply (the kernel's or the same). */
  sent(seq: number, at: number, scheduledAt: number, wireAt: number = at): void {
    if (this.#transmitted > this.#mask && this.#mask + 1 < this.#capacity) this.#grow();
    const slot = seq & this.#mask;
    this.#seq[slot] = seq;
    this.#index[slot] = this.#transmitted++;
    this.#sentAt[slot] = wireAt;
    this.#dueAt[slot] = Math.min(at, scheduledAt);
    this.#state[slot] = PENDING;
    this.#rttOf[slot] = NaN;
    this.#heldOf[slot] = NaN;
    this.#outstanding++;
    // Early counts as much as late: a schedule error either way.
    this.#lateness.add(Math.abs(at - scheduledAt));
    if (Number.isNaN(this.#firstSend)) this.#firstSend = at;
    this.#lastSend = at;
  }

  /** Records that the send of `seq` failed; `unreachable`: because an
   * ICMP port unreachable came back. */
  sendFailed(seq: number, unreachable = false): void {
    const slot = this.#find(seq);
    if (slot >= 0 && this.#state[slot] === PENDING) {
      this.#state[slot] = SEND_FAILED;
      this.#outstanding--;
    }
    this.#errors++;
    if (unreachable) this.#unreachable++;
  }

  /** Counts a reply the server changed, by what it did (`uppercased`). */
  changed(kind: string): void {
    // A handful of kinds at most: a server that alters bytes at random
    // still makes only "byte #", "truncated", "prefixed", "uppercased".
    if (this.#changes.size < 16 || this.#changes.has(kind)) {
      this.#changes.set(kind, (this.#changes.get(kind) ?? 0) + 1);
    }
  }

  /** Counts a datagram that was not a reply to this run, and why. */
  stray(reason: StrayReason): void {
    this.#stray++;
    this.#strayByReason[reason]++;
  }

  /** Marks every request whose timeout has passed by `now` as timed out
   * (or is `due`, when given: an alarm may ring a little early), and
   * returns their seqs, oldest first. */
  expire(now: number, due?: (deadline: number) => boolean): readonly number[] {
    // Called twice a probe and nearly always empty: an array only when a
    // request timed out, not a generator each call.
    let expired: number[] | undefined;
    for (; this.#timeoutCursor < this.#transmitted; this.#timeoutCursor++) {
      const seq = (this.#timeoutCursor + 1) % SEQ_MODULUS;
      const slot = this.#find(seq);
      if (slot < 0 || this.#state[slot] !== PENDING) continue;
      const deadline = this.#dueAt[slot]! + this.#timeoutMs;
      if (deadline > now && !due?.(deadline)) break;
      this.#state[slot] = TIMED_OUT;
      this.#outstanding--;
      this.#timeline.record(this.#timeoutCursor, null);
      (expired ??= []).push(seq);
    }
    return expired ?? NONE_EXPIRED;
  }

  /** When the oldest outstanding request times out (`Infinity` if none). */
  nextTimeout(): number {
    if (this.#timeoutCursor >= this.#transmitted) return Infinity;
    const slot = this.#find((this.#timeoutCursor + 1) % SEQ_MODULUS);
    return slot < 0 ? -Infinity : this.#dueAt[slot]! + this.#timeoutMs;
  }

  /** Whether every request sent so far is answered, timed out or failed. */
  settled(): boolean {
    return this.#timeoutCursor >= this.#transmitted;
  }

  /** Records a reply to `seq` that arrived at `at` (in the clock of
   * `wireAt`), with its stamp if any. */
  reply(seq: number, at: number, stamp?: Stamp): ReplyClass {
    const slot = this.#find(seq);
    const state = slot < 0 ? 0 : this.#state[slot]!;
    if (state === 0 || state === SEND_FAILED) return { kind: "unknown-seq" };
    const rtt = at - this.#sentAt[slot]!;
    // A reply to a request not yet sent (its seq and the token guessed),
    // read after the send: the kernel's receive time shows it came first.
    if (rtt < 0) return { kind: "before-request" };
    // As iputils, min/avg/max/mdev count every round trip, copies too.
    this.#rtt.add(rtt);
    if (state === ANSWERED || state === ANSWERED_LATE) {
      this.#duplicates++;
      return { kind: "duplicate", rtt };
    }
    const late = state === TIMED_OUT;
    const index = this.#index[slot]!;
    const reordered = index < this.#highestIndexAnswered;
    this.#highestIndexAnswered = Math.max(this.#highestIndexAnswered, index);
    this.#state[slot] = late ? ANSWERED_LATE : ANSWERED;
    if (!late) this.#outstanding--;
    this.#received++;
    if (late) this.#late++;
    if (reordered) this.#reordered++;
    this.#vary(this.#rttVariation, this.#rttOf, slot, rtt);
    this.#timeline.record(index, rtt, late);
    if (stamp) this.#believe(stamp, index, rtt, reordered);
    if (stamp && this.#stampProblem === null) {
      this.#stampedReplies++;
      this.#refusedByServer += stamp.refused ?? 0;
      if (index > this.#highestStampedIndex) {
        this.#highestStampedIndex = index;
        this.#countAtHighestStamp = stamp.count;
      }
      if (stamp.held !== undefined) {
        this.#serverTime.add(stamp.held / 1000);
        this.#vary(this.#serverTimeVariation, this.#heldOf, slot, stamp.held / 1000);
      }
    }
    return { kind: "reply", rtt, late, reordered };
  }

  /** The figures so far. */
  summary(): TallySummary {
    const sends = this.#transmitted;
    return {
      transmitted: sends,
      received: this.#received,
      duplicates: this.#duplicates,
      late: this.#late,
      reordered: this.#reordered,
      stray: this.#stray,
      strayByReason: { ...this.#strayByReason },
      errors: this.#errors,
      unreachable: this.#unreachable,
      outstanding: this.#outstanding,
      loss: lossPercent(sends, this.#received),
      rtt: { ...this.#rtt.summary(), ...this.#rttVariation.summary() },
      lossSplit: this.#lossSplit(),
      stampProblem: this.#stampProblem,
      serverTime: this.#serverTime.count > 0 && this.#stampProblem === null
        ? { ...this.#serverTime.summary(), ...this.#serverTimeVariation.summary() }
        : null,
      schedule: {
        meanInterval: sends > 1 ? (this.#lastSend - this.#firstSend) / (sends - 1) : NaN,
        meanLateness: this.#lateness.summary().avg,
        worstLateness: this.#lateness.summary().max,
        p99Lateness: this.#lateness.percentile(99),
      },
      histogram: this.#rtt.histogram(),
      timeline: this.#timeline.columns(),
      timelineSpan: this.#timeline.span,
      changed: Object.fromEntries(this.#changes),
    };
  }

  /**
   * Requests 1..K, K the latest stamped one: the server saw C of them (its
   * count in that stamp), so K - C were lost on the way in, and of the C it
   * saw, all but the ones whose replies came back were lost on the way out.
   * Requests after K may have gone either way.
   */
  #lossSplit(): LossSplit | null {
    if (this.#stampedReplies === 0 || this.#stampProblem !== null) return null;
    const upTo = this.#highestStampedIndex + 1;
    const seen = Math.min(this.#countAtHighestStamp, upTo);
    // Requests the server refused by rate were not counted by it either.
    const rateLimited = Math.min(this.#refusedByServer, upTo - seen);
    const upstream = upTo - seen - rateLimited;
    const downstream = Math.max(0, seen - this.#stampedReplies);
    const lost = this.#transmitted - this.#received;
    const unknown = Math.max(0, lost - upstream - downstream - rateLimited);
    return { upstream, downstream, unknown, rateLimited };
  }

  /**
   * Checks a stamp against what this run knows, and stops believing stamps
   * for the run at the first one that cannot be true: a count of requests
   * that went backwards (the server forgot this run's token) or past the
   * requests sent so far, or a hold longer than the round trip. A server
   * that lies or forgets then leaves the figures unknown, never wrong.
   */
  #believe(stamp: Stamp, index: number, rtt: number, reordered: boolean): void {
    if (this.#stampProblem !== null) return;
    if (stamp.count < 1 || stamp.count > index + 1) {
      this.#stampProblem = `a stamp counted ${stamp.count} requests where ${
        index + 1
      } had been sent`;
    } else if (!reordered && stamp.count < this.#received) {
      // In order, every request answered so far reached the server before
      // this one (this one included): it cannot have counted fewer.
      this.#stampProblem =
        `a stamp counted ${stamp.count} requests where ${this.#received} had been answered`;
    } else if (
      this.#stampedReplies > 0 &&
      (index > this.#highestStampedIndex
        ? stamp.count < this.#countAtHighestStamp
        : stamp.count > this.#countAtHighestStamp)
    ) {
      this.#stampProblem = "the server's count of requests went backwards (it forgot this run?)";
    } else if (stamp.held !== undefined && stamp.held / 1000 > rtt) {
      this.#stampProblem = "the server claimed to hold a request longer than its round trip";
    }
  }

  /**
   * Records `delay`, the first of request `slot`, in `variation`: as the
   * next arrival (RFC 3550), and as one IPDV (RFC 3393) with each request
   * sent just before or after it that already has one.
   */
  #vary(variation: DelayVariation, delays: Float64Array, slot: number, delay: number): void {
    delays[slot] = delay;
    variation.arrived(delay);
    const seq = this.#seq[slot]!;
    const index = this.#index[slot]!;
    for (const step of [-1, 1]) {
      const neighbour = this.#find((seq + step + SEQ_MODULUS) % SEQ_MODULUS);
      if (neighbour < 0 || this.#index[neighbour] !== index + step) continue;
      const other = delays[neighbour]!;
      if (!Number.isNaN(other)) {
        variation.paired(step < 0 ? other : delay, step < 0 ? delay : other);
      }
    }
  }

  #find(seq: number): number {
    const slot = seq & this.#mask;
    return this.#seq[slot] === seq ? slot : -1;
  }

  /** Doubles the ring, each remembered request moved to its new slot (the
   * ring's seqs are consecutive, so none collide). */
  #grow(): void {
    const size = 2 * (this.#mask + 1);
    const mask = size - 1;
    const move = <Array extends Float64Array | Uint8Array>(old: Array, fresh: Array): Array => {
      for (let slot = 0; slot <= this.#mask; slot++) fresh[this.#seq[slot]! & mask] = old[slot]!;
      return fresh;
    };
    this.#index = move(this.#index, new Float64Array(size));
    this.#sentAt = move(this.#sentAt, new Float64Array(size));
    this.#dueAt = move(this.#dueAt, new Float64Array(size));
    this.#state = move(this.#state, new Uint8Array(size));
    this.#rttOf = move(this.#rttOf, new Float64Array(size));
    this.#heldOf = move(this.#heldOf, new Float64Array(size));
    this.#seq = move(this.#seq, new Float64Array(size).fill(-1));
    this.#mask = mask;
  }
}
