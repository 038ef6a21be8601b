/**
 * The bookkeeping of `server.ts --heartbeat`, the UDP Pinger lab's last
 * exercise: a client sends a sequence number and its clock, the server
 * reports the one-way delay, counts the heartbeats lost, and declares a
 * client stopped after a silence. Pure: no socket, no timer, no clock of its
 * own; the caller passes every time in and logs what comes back.
 *
 * Per source (address and port), gaps in the sequence are lost, a late
 * heartbeat that fills one is out of order and no longer lost, and a
 * duplicate counts for nothing. Forged datagrams cannot inflate the
 * numbers: a gap counts no more than fits in the time since the heartbeat
 * before it, a heartbeat further back than {@linkcode HEARTBEAT_WINDOW}
 * counts for nothing, a jump beyond {@linkcode MAX_HEARTBEAT_JUMP} restarts
 * the sequence, and a flood of one-shot sources never pushes out one heard
 * regularly. docs/server.md gives every rule.
 *
 * @module
 */

import { SEQ_MODULUS } from "../../protocol.ts";
import {
  HEARTBEAT_WINDOW,
  MAX_HEARTBEAT_JUMP,
  MAX_HEARTBEAT_SOURCES,
  MAX_HEARTBEAT_SUMMARY_SOURCES,
  MIN_HEARTBEAT_INTERVAL_MS,
} from "../../settings.ts";
import { SlotList } from "./slot_list.ts";
import { keyedString } from "../shared/keyed_hash.ts";
import { isoTime } from "../shared/log.ts";

const HALF_MODULUS = SEQ_MODULUS / 2;
const BITS_PER_WORD = 32;

/** One heartbeat as the server received it. */
export interface Heartbeat {
  /** Where it came from: `127.0.0.1:5555` or `[::1]:5555`. */
  source: string;
  /** Its sequence number, 0 to 2^32 - 1. */
  seq: number;
  /** The sender's clock when it was sent, ms since the Unix epoch. */
  sent: number;
  /** The receiver's clock when it arrived, ms since the Unix epoch; it should
   * not go back from one heartbeat to the next. */
  received: number;
}

/** What the monitor has to say, one log line each ({@linkcode describeNote}). */
export type HeartbeatNote =
  | {
    kind: "beat";
    source: string;
    seq: number;
    /** ms, receiver's clock minus sender's clock: a one-way delay only when
     * the two clocks agree (one machine); may be negative. */
    oneWay: number;
    /** The change this heartbeat makes to the source's lost count: the gap
     * it reveals before it, or -1 when it arrives late into a gap that had
     * been counted lost. The notes' `lost` add up to the summary's. */
    lost: number;
    /** Sequence numbers it jumped beyond what the time since the last
     * heartbeat allows at the source's interval: not counted lost. */
    skipped: number;
    /** It arrived behind the highest seq seen. */
    outOfOrder: boolean;
    /** It is further behind than {@linkcode HEARTBEAT_WINDOW}: it cannot be
     * told from a replay, so it is not counted. */
    tooOld: boolean;
    /** Its seq had already arrived: not counted again. */
    duplicate: boolean;
    /** It jumped more than {@linkcode MAX_HEARTBEAT_JUMP}: the sequence
     * starts again from it. */
    restarted: boolean;
  }
  /** The source has been silent for `silentFor` seconds. */
  | { kind: "stopped"; source: string; silentFor: number }
  /** The source, declared stopped, is back after `after` seconds of silence. */
  | { kind: "resumed"; source: string; after: number };

/** One source's totals, as {@linkcode HeartbeatMonitor.summary} lists them. */
export interface HeartbeatSourceSummary {
  /** `127.0.0.1:5555` or `[::1]:5555`. */
  source: string;
  /** Heartbeats received, duplicates and too old ones excluded. */
  received: number;
  /** Sequence numbers missing from the gaps, late arrivals taken off. */
  lost: number;
  /** Heartbeats that arrived behind the highest seq, within the window. */
  outOfOrder: number;
  /** Heartbeats further behind than the window, not counted. */
  tooOld: number;
  /** The receiver's clock at the last heartbeat, ms since the Unix epoch. */
  lastSeen: number;
}

/** What {@linkcode HeartbeatMonitor.summary} returns. */
export interface HeartbeatSummary {
  /** Every remembered source, least recently heard first. */
  sources: HeartbeatSourceSummary[];
  /** Sources forgotten, or never remembered, for want of room (a source
   * forgotten twice counts twice). */
  forgotten: number;
  /** The most sources remembered at once. */
  capacity: number;
}

type SeqOutcome = Pick<
  Extract<HeartbeatNote, { kind: "beat" }>,
  "lost" | "skipped" | "outOfOrder" | "tooOld" | "duplicate" | "restarted"
>;

const IN_ORDER: SeqOutcome = {
  lost: 0,
  skipped: 0,
  outOfOrder: false,
  tooOld: false,
  duplicate: false,
  restarted: false,
};
const DUPLICATE: SeqOutcome = { ...IN_ORDER, duplicate: true };
const RESTARTED: SeqOutcome = { ...IN_ORDER, restarted: true };
const TOO_OLD: SeqOutcome = { ...IN_ORDER, outOfOrder: true, tooOld: true };

/** One source's sequence: the highest seq and which of the
 * {@linkcode HEARTBEAT_WINDOW} numbers up to it have arrived, in a ring of
 * bits indexed by seq modulo the window (which divides 2^32, so the index
 * survives the wrap), and the source's interval as far as it shows. */
class SequenceWindow {
  readonly #seen = new Uint32Array(HEARTBEAT_WINDOW / BITS_PER_WORD);
  #highest = 0;
  /** When the highest seq arrived, ms. */
  #highestAt = 0;
  /** How many numbers up to the highest are counted since the (re)start:
   * only a gap among them was counted lost. */
  #span = 1;
  /** The shortest time seen between two consecutive seqs, ms. */
  #shortestStep = Infinity;

  /** Starts the sequence afresh at `seq`, which arrived at `at`. */
  begin(seq: number, at: number): void {
    this.#seen.fill(0);
    this.#mark(seq);
    this.#highest = seq;
    this.#highestAt = at;
    this.#span = 1;
    this.#shortestStep = Infinity;
  }

  /** Records `seq`, which arrived at `at`, and says what it means for the count. */
  accept(seq: number, at: number): SeqOutcome {
    const ahead = (seq - this.#highest + SEQ_MODULUS) % SEQ_MODULUS;
    if (ahead === 0) return DUPLICATE;
    const behind = SEQ_MODULUS - ahead;
    if (ahead < HALF_MODULUS) {
      return ahead > MAX_HEARTBEAT_JUMP ? this.#restart(seq, at) : this.#advance(seq, ahead, at);
    }
    return behind > MAX_HEARTBEAT_JUMP ? this.#restart(seq, at) : this.#late(seq, behind);
  }

  #restart(seq: number, at: number): SeqOutcome {
    this.begin(seq, at);
    return RESTARTED;
  }

  #advance(seq: number, ahead: number, at: number): SeqOutcome {
    const elapsed = Math.max(0, at - this.#highestAt);
    const interval = this.#shortestStep === Infinity
      ? MIN_HEARTBEAT_INTERVAL_MS
      : Math.max(MIN_HEARTBEAT_INTERVAL_MS, this.#shortestStep);
    // Heartbeats that fit in the time since the highest, the one now arrived
    // aside: a jump beyond it is forged or replayed, not lost.
    const fit = Math.max(0, Math.ceil(elapsed / interval) - 1);
    const lost = Math.min(ahead - 1, fit);
    if (ahead === 1) this.#shortestStep = Math.min(this.#shortestStep, elapsed);
    if (ahead >= HEARTBEAT_WINDOW) this.#seen.fill(0);
    else {
      for (let step = 1; step < ahead; step++) this.#unmark(this.#highest + step);
    }
    this.#mark(seq);
    this.#highest = seq;
    this.#highestAt = at;
    // Only the gap counted lost may be taken off again by a late arrival.
    this.#span = Math.min(lost < ahead - 1 ? lost + 1 : this.#span + ahead, HEARTBEAT_WINDOW);
    return { ...IN_ORDER, lost, skipped: ahead - 1 - lost };
  }

  #late(seq: number, behind: number): SeqOutcome {
    if (behind >= HEARTBEAT_WINDOW) return TOO_OLD;
    if (this.#has(seq)) return DUPLICATE;
    this.#mark(seq);
    return { ...IN_ORDER, outOfOrder: true, lost: behind < this.#span ? -1 : 0 };
  }

  #has(seq: number): boolean {
    const bit = seq % HEARTBEAT_WINDOW;
    return (this.#seen[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  #mark(seq: number): void {
    const bit = seq % HEARTBEAT_WINDOW;
    this.#seen[bit >>> 5]! |= 1 << (bit & 31);
  }

  #unmark(seq: number): void {
    const bit = seq % HEARTBEAT_WINDOW;
    this.#seen[bit >>> 5]! &= ~(1 << (bit & 31));
  }
}

interface SourceState {
  source: string;
  /** `source`, keyed (keyed_hash.ts): its key in `#slots`. */
  key: number;
  sequence: SequenceWindow;
  received: number;
  lost: number;
  outOfOrder: number;
  tooOld: number;
  lastSeen: number;
}

/**
 * Heartbeats per source: feed each one to {@linkcode HeartbeatMonitor.beat},
 * call {@linkcode HeartbeatMonitor.check} when
 * {@linkcode HeartbeatMonitor.nextCheck} says (one timer is enough), log
 * every note with {@linkcode describeNote}, and print
 * {@linkcode heartbeatSummaryLines} of the summary at the end.
 *
 * @example
 * ```ts
 * import { describeNote, HeartbeatMonitor } from "./heartbeat.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * const monitor = new HeartbeatMonitor(3);
 * const at = Date.UTC(2026, 10, 25, 22, 39, 20);
 * const beat = (seq: number, received: number) =>
 *   monitor.beat({ source: "127.0.0.1:5555", seq, sent: received - 0.214, received });
 * beat(1, at);
 * const [note] = beat(4, at + 1000);
 * equal(
 *   describeNote(note!),
 *   "127.0.0.1:5555 heartbeat seq=4 one-way 0.214 ms (receiver − sender clock), 2 lost before it",
 * );
 * equal(monitor.nextCheck(), at + 4000);
 * const stopped = monitor.check(at + 4000).map(describeNote);
 * deepEqual(stopped, ["127.0.0.1:5555 silent for 3 s: presumed stopped"]);
 * equal(describeNote(beat(5, at + 8200)[0]!), "127.0.0.1:5555 resumed after 7.2 s");
 * equal(monitor.summary().sources[0]!.lost, 2);
 * ```
 */
export class HeartbeatMonitor {
  readonly #silenceMs: number;
  readonly #capacity: number;
  /** Each remembered source's slot in `#states`, by its keyed name: the
   * sender chooses its address and port (keyed_hash.ts). */
  readonly #slots = new Map<number, number>();
  /** Per slot; a forgotten source's state is reused for the next one. */
  readonly #states: SourceState[] = [];
  /** Sources not declared stopped, least recently heard first. */
  readonly #active: SlotList;
  /** Sources declared stopped, least recently heard first: all heard less
   * recently than any active one. */
  readonly #stopped: SlotList;
  /** Sources heard once only, active or stopped, in the order heard: the
   * first to be forgotten. */
  readonly #oneShot: SlotList;
  #forgotten = 0;

  /**
   * A monitor with no sources yet. Throws a `RangeError` for a silence that
   * is not above 0 or a capacity that is not a whole number from 1.
   *
   * @param silenceSeconds Seconds without a heartbeat before a source is
   * declared stopped.
   * @param capacity Sources remembered (see the module's rules for who
   * makes room).
   * @default {MAX_HEARTBEAT_SOURCES}
   */
  constructor(silenceSeconds: number, capacity: number = MAX_HEARTBEAT_SOURCES) {
    if (!(Number.isFinite(silenceSeconds) && silenceSeconds > 0)) {
      throw new RangeError(`silenceSeconds must be a number above 0, got ${silenceSeconds}`);
    }
    if (!(Number.isInteger(capacity) && capacity >= 1)) {
      throw new RangeError(`capacity must be a whole number from 1, got ${capacity}`);
    }
    this.#silenceMs = silenceSeconds * 1000;
    this.#capacity = capacity;
    this.#active = new SlotList(capacity);
    this.#stopped = new SlotList(capacity);
    this.#oneShot = new SlotList(capacity);
  }

  /** Takes one heartbeat; returns a `resumed` note if the source had been
   * declared stopped, then its `beat` note. Throws a `RangeError` for a seq
   * outside 0 to 2^32 - 1 or a time that is not a finite number. */
  beat(heartbeat: Heartbeat): HeartbeatNote[] {
    checkHeartbeat(heartbeat);
    const { source, seq, sent, received } = heartbeat;
    const notes: HeartbeatNote[] = [];
    const key = keyedString(source);
    let slot = this.#slots.get(key);
    let outcome = IN_ORDER;
    if (slot === undefined) {
      slot = this.#admit(source, key, seq, received);
    } else {
      const state = this.#states[slot]!;
      if (this.#stopped.has(slot)) {
        this.#stopped.remove(slot);
        const after = Math.max(0, received - state.lastSeen) / 1000;
        notes.push({ kind: "resumed", source, after });
      }
      this.#oneShot.remove(slot); // heard again: no longer a one-shot source
      outcome = state.sequence.accept(seq, received);
    }
    if (slot !== undefined) {
      const state = this.#states[slot]!;
      if (outcome.tooOld) state.tooOld++;
      else if (!outcome.duplicate) state.received++;
      state.lost += outcome.lost;
      if (outcome.outOfOrder && !outcome.tooOld) state.outOfOrder++;
      state.lastSeen = Math.max(state.lastSeen, received);
      this.#active.push(slot);
    }
    notes.push({ kind: "beat", source, seq, oneWay: received - sent, ...outcome });
    return notes;
  }

  /** Declares stopped, once per silence, every source silent for the
   * configured seconds at `now` (receiver's clock, ms since the Unix epoch). */
  check(now: number): HeartbeatNote[] {
    const notes: HeartbeatNote[] = [];
    for (let slot = this.#active.first; slot >= 0; slot = this.#active.first) {
      const { source, lastSeen } = this.#states[slot]!;
      // The same sum as nextCheck(), so check(nextCheck()) always fires.
      if (now < lastSeen + this.#silenceMs) break;
      this.#active.remove(slot);
      this.#stopped.push(slot);
      notes.push({ kind: "stopped", source, silentFor: (now - lastSeen) / 1000 });
    }
    return notes;
  }

  /** When {@linkcode HeartbeatMonitor.check} next has a source to declare
   * stopped (ms since the Unix epoch), or `Infinity` when none is due. */
  nextCheck(): number {
    const slot = this.#active.first;
    return slot < 0 ? Infinity : this.#states[slot]!.lastSeen + this.#silenceMs;
  }

  /** Every remembered source's totals, least recently heard first, and how
   * many sources had to be forgotten. */
  summary(): HeartbeatSummary {
    const sources: HeartbeatSourceSummary[] = [];
    for (const order of [this.#stopped, this.#active]) {
      for (let slot = order.first; slot >= 0; slot = order.next(slot)) {
        const { source, received, lost, outOfOrder, tooOld, lastSeen } = this.#states[slot]!;
        sources.push({ source, received, lost, outOfOrder, tooOld, lastSeen });
      }
    }
    return { sources, forgotten: this.#forgotten, capacity: this.#capacity };
  }

  /** A slot for a new source, its first heartbeat counted in: a fresh one
   * below the capacity, else that of a source it replaces (the least
   * recently heard one-shot source, else the least recently heard stopped
   * one); `undefined` when every remembered source has to be kept. */
  #admit(source: string, key: number, seq: number, at: number): number | undefined {
    let slot = this.#states.length;
    if (slot < this.#capacity) {
      this.#states.push({
        source,
        key,
        sequence: new SequenceWindow(),
        received: 0,
        lost: 0,
        outOfOrder: 0,
        tooOld: 0,
        lastSeen: at,
      });
    } else {
      this.#forgotten++;
      slot = this.#oneShot.size > 0 ? this.#oneShot.first : this.#stopped.first;
      if (slot < 0) return undefined;
      const state = this.#states[slot]!;
      this.#slots.delete(state.key);
      this.#active.remove(slot);
      this.#stopped.remove(slot);
      Object.assign(state, {
        source,
        key,
        received: 0,
        lost: 0,
        outOfOrder: 0,
        tooOld: 0,
        lastSeen: at,
      });
    }
    this.#states[slot]!.sequence.begin(seq, at);
    this.#slots.set(key, slot);
    this.#oneShot.push(slot);
    return slot;
  }
}

function checkHeartbeat({ seq, sent, received }: Heartbeat): void {
  if (!(Number.isInteger(seq) && seq >= 0 && seq < SEQ_MODULUS)) {
    throw new RangeError(`seq must be a whole number from 0 to 2^32 - 1, got ${seq}`);
  }
  if (!Number.isFinite(sent)) throw new RangeError(`sent must be a finite time, got ${sent}`);
  if (!Number.isFinite(received)) {
    throw new RangeError(`received must be a finite time, got ${received}`);
  }
}

/**
 * The log text of a note, source first, for the server to print after its
 * timestamp:
 *
 * - `127.0.0.1:5555 heartbeat seq=4 one-way 0.214 ms (receiver − sender clock), 2 lost before it`
 * - `127.0.0.1:5555 silent for 3 s: presumed stopped`
 * - `127.0.0.1:5555 resumed after 7.2 s`
 *
 * A beat's one-way delay has three decimals of ms and says which clocks it
 * subtracts: it means something only when they agree (one machine).
 *
 * @example
 * ```ts
 * import { describeNote } from "./heartbeat.ts";
 * import { equal } from "node:assert/strict";
 * const note = { kind: "stopped", source: "[::1]:5555", silentFor: 3 } as const;
 * equal(describeNote(note), "[::1]:5555 silent for 3 s: presumed stopped");
 * ```
 */
export function describeNote(note: HeartbeatNote): string {
  switch (note.kind) {
    case "stopped":
      return `${note.source} silent for ${formatSeconds(note.silentFor)} s: presumed stopped`;
    case "resumed":
      return `${note.source} resumed after ${formatSeconds(note.after)} s`;
    case "beat": {
      const parts = [
        `${note.source} heartbeat seq=${note.seq} one-way ${note.oneWay.toFixed(3)} ms ` +
        "(receiver − sender clock)",
      ];
      if (note.restarted) parts.push("sequence restarted");
      if (note.duplicate) parts.push("duplicate");
      if (note.lost > 0) parts.push(`${note.lost} lost before it`);
      if (note.skipped > 0) {
        parts.push(`${note.skipped} skipped, more than its interval allows: not counted lost`);
      }
      if (note.tooOld) parts.push("out of order, too old to tell from a replay: not counted");
      else if (note.outOfOrder) {
        parts.push(note.lost < 0 ? "out of order, no longer counted lost" : "out of order");
      }
      return parts.join(", ");
    }
  }
}

/** Seconds with one decimal (three below 1 s), no trailing zeros: `3`, `7.2`, `0.25`. */
function formatSeconds(seconds: number): string {
  return String(Number(seconds.toFixed(Math.abs(seconds) < 1 ? 3 : 1)));
}

/**
 * The server summary's heartbeat lines: one per source for the `most`
 * sources with the most heartbeats received (in the summary's order),
 * `heartbeats from 127.0.0.1:5555: 10 received, 2 lost, last seen
 * 2026-11-26T04:09:23.523+05:30`, with `, N out of order` and `, N too old
 * to count` before `last seen` when there were any; then the totals of the
 * other sources in one line, and how many were forgotten, when there are any.
 *
 * @example
 * ```ts
 * import { heartbeatSummaryLines } from "./heartbeat.ts";
 * import { equal, match } from "node:assert/strict";
 * const row = { received: 10, lost: 2, outOfOrder: 0, tooOld: 0, lastSeen: Date.now() };
 * const lines = heartbeatSummaryLines({
 *   sources: [{ ...row, source: "127.0.0.1:5555" }, { ...row, source: "127.0.0.1:6666" }],
 *   forgotten: 5,
 *   capacity: 10_000,
 * }, false, 1);
 * match(lines[0]!, /^heartbeats from 127\.0\.0\.1:6666: 10 received, 2 lost, last seen \d{4}-/);
 * equal(lines[1], "heartbeats from 1 more source: 10 received, 2 lost");
 * equal(lines[2], "heartbeats from 5 more sources forgotten (10000 are remembered at most)");
 * ```
 */
export function heartbeatSummaryLines(
  summary: HeartbeatSummary,
  utc = false,
  most: number = MAX_HEARTBEAT_SUMMARY_SOURCES,
): string[] {
  const { listed, others } = mostHeard(summary.sources, most);
  const lines = listed.map((row) =>
    `heartbeats from ${row.source}: ${counts(row)}, last seen ${isoTime(row.lastSeen, utc)}`
  );
  if (others.length > 0) {
    const total = { received: 0, lost: 0, outOfOrder: 0, tooOld: 0 };
    for (const row of others) {
      total.received += row.received;
      total.lost += row.lost;
      total.outOfOrder += row.outOfOrder;
      total.tooOld += row.tooOld;
    }
    lines.push(`heartbeats from ${moreSources(others.length)}: ${counts(total)}`);
  }
  if (summary.forgotten > 0) {
    lines.push(
      `heartbeats from ${moreSources(summary.forgotten)} forgotten ` +
        `(${summary.capacity} are remembered at most)`,
    );
  }
  return lines;
}

const moreSources = (count: number) => `${count} more ${count === 1 ? "source" : "sources"}`;

/** `10 received, 2 lost, 1 out of order, 3 too old to count`, the last two when not 0. */
function counts(
  { received, lost, outOfOrder, tooOld }: Omit<HeartbeatSourceSummary, "source" | "lastSeen">,
): string {
  const late = outOfOrder > 0 ? `, ${outOfOrder} out of order` : "";
  const old = tooOld > 0 ? `, ${tooOld} too old to count` : "";
  return `${received} received, ${lost} lost${late}${old}`;
}

/** The `most` rows with the most heartbeats received (the more recently
 * heard first among equals), in their order, and the others. */
function mostHeard(rows: readonly HeartbeatSourceSummary[], most: number) {
  if (rows.length <= most) return { listed: rows, others: [] };
  const ranked = rows.map((_, index) => index)
    .sort((a, b) => rows[b]!.received - rows[a]!.received || b - a);
  const kept = new Set(ranked.slice(0, most));
  return {
    listed: rows.filter((_, index) => kept.has(index)),
    others: rows.filter((_, index) => !kept.has(index)),
  };
}
