/**
 * The bookkeeping of `server.ts --heartbeat`, the UDP Pinger lab's last
 * exercise: a client sends a sequence number and its clock, the server
 * reports the one-way delay, counts the heartbeats lost, and declares a
 * client stopped after a silence. Pure: no socket, no timer, no clock of its
 * own; the caller passes every time in and logs what comes back.
 *
 * Per source (address and port):
 *
 * - **Lost** are the gaps in the sequence, counted from the first sequence
 *   number seen: a source whose first heartbeat is seq 7 has lost nothing
 *   (it may have started at 7, or this server may have started late).
 * - A heartbeat behind the highest seq is **out of order**; when it fills a
 *   gap it is no longer counted lost. Each source remembers which of the last
 *   {@linkcode HEARTBEAT_WINDOW} sequence numbers it has seen (a bitmap, so
 *   memory stays fixed); one further behind is counted out of order as it is,
 *   neither taken off the lost nor recognised as a duplicate.
 * - A **duplicate** of a seq seen in the window is neither received twice
 *   nor changes the lost.
 * - Sequence numbers wrap at 2^32 ({@linkcode SEQ_MODULUS}): 4294967295
 *   then 0 is one step forward. A jump of more than
 *   {@linkcode MAX_HEARTBEAT_JUMP} either way (a forged datagram, a client
 *   restarted from the same port) **restarts** the sequence at the new seq,
 *   with nothing counted lost for the jump.
 * - A source silent for the given seconds is declared **stopped** once; its
 *   next heartbeat reports it **resumed**, and it can stop again later.
 * - At most `capacity` sources are remembered; past it, the least recently
 *   heard one is forgotten, so forged sources cannot grow the memory.
 *
 * @module
 */

import { SEQ_MODULUS } from "../protocol.ts";
import { isoTime } from "./log.ts";

/** Sources a {@linkcode HeartbeatMonitor} remembers unless told otherwise. */
export const MAX_HEARTBEAT_SOURCES = 10_000;

/** Sequence numbers, up to the highest, whose arrival each source remembers. */
export const HEARTBEAT_WINDOW = 1024;

/** The largest jump between sequence numbers, either way, still read as the
 * same sequence: ten days of heartbeats at the lab's 1 s interval; past it
 * the sequence restarts. */
export const MAX_HEARTBEAT_JUMP = 1_000_000;

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
    /** It arrived behind the highest seq seen. */
    outOfOrder: boolean;
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
  /** Heartbeats received, duplicates excluded. */
  received: number;
  /** Sequence numbers missing from the gaps, late arrivals taken off. */
  lost: number;
  /** Heartbeats that arrived behind the highest seq. */
  outOfOrder: number;
  /** The receiver's clock at the last heartbeat, ms since the Unix epoch. */
  lastSeen: number;
}

type Verdict = Pick<
  Extract<HeartbeatNote, { kind: "beat" }>,
  "lost" | "outOfOrder" | "duplicate" | "restarted"
>;

const IN_ORDER: Verdict = { lost: 0, outOfOrder: false, duplicate: false, restarted: false };
const DUPLICATE: Verdict = { ...IN_ORDER, duplicate: true };

/** One source's sequence: the highest seq and which of the
 * {@linkcode HEARTBEAT_WINDOW} numbers up to it have arrived, in a ring of
 * bits indexed by seq modulo the window (which divides 2^32, so the index
 * survives the wrap). */
class SequenceWindow {
  readonly #seen = new Uint32Array(HEARTBEAT_WINDOW / BITS_PER_WORD);
  #highest = 0;
  /** How many numbers up to the highest are counted since the (re)start:
   * only a gap among them was counted lost. */
  #span = 1;

  constructor(first: number) {
    this.#restart(first);
  }

  /** Records `seq` and says what it means for the count. */
  accept(seq: number): Verdict {
    const ahead = (seq - this.#highest + SEQ_MODULUS) % SEQ_MODULUS;
    if (ahead === 0) return DUPLICATE;
    const behind = SEQ_MODULUS - ahead;
    if (ahead < HALF_MODULUS) {
      return ahead > MAX_HEARTBEAT_JUMP ? this.#restart(seq) : this.#advance(seq, ahead);
    }
    return behind > MAX_HEARTBEAT_JUMP ? this.#restart(seq) : this.#late(seq, behind);
  }

  #restart(seq: number): Verdict {
    this.#seen.fill(0);
    this.#mark(seq);
    this.#highest = seq;
    this.#span = 1;
    return { ...IN_ORDER, restarted: true };
  }

  #advance(seq: number, ahead: number): Verdict {
    if (ahead >= HEARTBEAT_WINDOW) this.#seen.fill(0);
    else {
      for (let step = 1; step < ahead; step++) this.#unmark(this.#highest + step);
    }
    this.#mark(seq);
    this.#highest = seq;
    this.#span = Math.min(this.#span + ahead, HEARTBEAT_WINDOW);
    return { ...IN_ORDER, lost: ahead - 1 };
  }

  #late(seq: number, behind: number): Verdict {
    if (behind >= HEARTBEAT_WINDOW) return { ...IN_ORDER, outOfOrder: true };
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
  sequence: SequenceWindow;
  received: number;
  lost: number;
  outOfOrder: number;
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
 * equal(monitor.summary()[0]!.lost, 2);
 * ```
 */
export class HeartbeatMonitor {
  readonly #silenceMs: number;
  readonly #capacity: number;
  /** Sources not declared stopped, least recently heard first. */
  readonly #active = new Map<string, SourceState>();
  /** Sources declared stopped, least recently heard first: all heard less
   * recently than any active one. */
  readonly #stopped = new Map<string, SourceState>();

  /**
   * A monitor with no sources yet. Throws a `RangeError` for a silence that
   * is not above 0 or a capacity that is not a whole number from 1.
   *
   * @param silenceSeconds Seconds without a heartbeat before a source is
   * declared stopped.
   * @param capacity Sources remembered; past it, the least recently heard is
   * forgotten.
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
  }

  /** Takes one heartbeat; returns a `resumed` note if the source had been
   * declared stopped, then its `beat` note. Throws a `RangeError` for a seq
   * outside 0 to 2^32 - 1 or a time that is not a finite number. */
  beat(heartbeat: Heartbeat): HeartbeatNote[] {
    checkHeartbeat(heartbeat);
    const { source, seq, sent, received } = heartbeat;
    const notes: HeartbeatNote[] = [];
    let state = this.#active.get(source);
    this.#active.delete(source); // re-inserted below, as the most recent
    const stopped = state === undefined ? this.#stopped.get(source) : undefined;
    if (stopped !== undefined) {
      this.#stopped.delete(source);
      notes.push({
        kind: "resumed",
        source,
        after: Math.max(0, received - stopped.lastSeen) / 1000,
      });
      state = stopped;
    }
    let verdict = IN_ORDER;
    if (state === undefined) {
      state = {
        sequence: new SequenceWindow(seq),
        received: 0,
        lost: 0,
        outOfOrder: 0,
        lastSeen: received,
      };
    } else {
      verdict = state.sequence.accept(seq);
    }
    if (!verdict.duplicate) state.received++;
    state.lost += verdict.lost;
    if (verdict.outOfOrder) state.outOfOrder++;
    state.lastSeen = Math.max(state.lastSeen, received);
    this.#active.set(source, state);
    this.#forgetBeyondCapacity();
    notes.push({ kind: "beat", source, seq, oneWay: received - sent, ...verdict });
    return notes;
  }

  /** Declares stopped, once per silence, every source silent for the
   * configured seconds at `now` (receiver's clock, ms since the Unix epoch). */
  check(now: number): HeartbeatNote[] {
    const notes: HeartbeatNote[] = [];
    for (const [source, state] of this.#active) {
      // The same sum as nextCheck(), so check(nextCheck()) always fires.
      if (now < state.lastSeen + this.#silenceMs) break;
      this.#active.delete(source);
      this.#stopped.set(source, state);
      notes.push({ kind: "stopped", source, silentFor: (now - state.lastSeen) / 1000 });
    }
    return notes;
  }

  /** When {@linkcode HeartbeatMonitor.check} next has a source to declare
   * stopped (ms since the Unix epoch), or `Infinity` when none is due. */
  nextCheck(): number {
    for (const state of this.#active.values()) return state.lastSeen + this.#silenceMs;
    return Infinity;
  }

  /** Every remembered source's totals, least recently heard first. */
  summary(): HeartbeatSourceSummary[] {
    const rows: HeartbeatSourceSummary[] = [];
    for (const states of [this.#stopped, this.#active]) {
      for (const [source, { received, lost, outOfOrder, lastSeen }] of states) {
        rows.push({ source, received, lost, outOfOrder, lastSeen });
      }
    }
    return rows;
  }

  #forgetBeyondCapacity(): void {
    while (this.#active.size + this.#stopped.size > this.#capacity) {
      const oldest = this.#stopped.size > 0 ? this.#stopped : this.#active;
      oldest.delete(oldest.keys().next().value!);
    }
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
      if (note.outOfOrder) {
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
 * The server summary's heartbeat lines, one per source:
 * `heartbeats from 127.0.0.1:5555: 10 received, 2 lost, last seen
 * 2026-11-26T04:09:23.523+05:30`, with `, N out of order` before `last seen`
 * when there were any.
 *
 * @example
 * ```ts
 * import { heartbeatSummaryLines } from "./heartbeat.ts";
 * import { match } from "node:assert/strict";
 * const [line] = heartbeatSummaryLines([
 *   { source: "127.0.0.1:5555", received: 10, lost: 2, outOfOrder: 0, lastSeen: Date.now() },
 * ]);
 * match(line!, /^heartbeats from 127\.0\.0\.1:5555: 10 received, 2 lost, last seen \d{4}-/);
 * ```
 */
export function heartbeatSummaryLines(
  summary: readonly HeartbeatSourceSummary[],
  utc = false,
): string[] {
  return summary.map(({ source, received, lost, outOfOrder, lastSeen }) => {
    const late = outOfOrder > 0 ? `, ${outOfOrder} out of order` : "";
    return `heartbeats from ${source}: ${received} received, ${lost} lost${late}, ` +
      `last seen ${isoTime(lastSeen, utc)}`;
  });
}
