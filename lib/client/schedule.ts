/**
 * A ping run's schedule: when the next request is due (request n at
 * start + n·interval, no drift; with `-f`, once the last reply is in or
 * `FLOOD_GAP_MS` after the last send), when the run ends (the deadline
 * `-w`, or a short linger once every request is settled), and so when the
 * loop next has something to do.
 *
 * @module
 */

import { FLOOD_GAP_MS, LINGER_MS } from "../../settings.ts";
import type { RunPlan } from "./ping_options.ts";
import type { PingTally } from "./tally.ts";
import { dueBy } from "../shared/timer.ts";

/** What a schedule reads of a run's plan. */
export type SchedulePlan = Pick<
  RunPlan,
  "count" | "intervalMs" | "timeoutMs" | "deadlineMs" | "flood"
>;

/** What a schedule reads of a run's tally. */
export type ScheduleTally = Pick<
  PingTally,
  "transmitted" | "outstanding" | "lastSendAt" | "settled" | "nextTimeout"
>;

/**
 * The times of one ping run, from its plan and what its tally has seen.
 * Times are `performance.now()` milliseconds.
 *
 * @example
 * ```ts
 * import { Schedule } from "./schedule.ts";
 * import { PingTally } from "./tally.ts";
 * import { equal } from "node:assert/strict";
 * const plan = { count: 2, intervalMs: 1000, timeoutMs: 1000, deadlineMs: Infinity, flood: false };
 * const tally = new PingTally(1, 1000);
 * const schedule = new Schedule(plan, tally, 0);
 * equal(schedule.due(), 0); // seq 1, due at the start
 * tally.sent(1, 0, 0);
 * equal(schedule.nextSendAt(), 1000); // seq 2, one interval on
 * equal(schedule.wakeAt(), 1000); // seq 2's send and seq 1's timeout
 * ```
 */
export class Schedule {
  readonly #plan: SchedulePlan;
  readonly #tally: ScheduleTally;
  /** When the first request was due. */
  readonly start: number;
  readonly #endAt: number;
  #settledAt: number | undefined;
  /** Datagrams read behind schedule since the last send. */
  #readBehind = 0;

  constructor(plan: SchedulePlan, tally: ScheduleTally, start: number = performance.now()) {
    this.#plan = plan;
    this.#tally = tally;
    this.start = start;
    this.#endAt = start + plan.deadlineMs;
  }

  /** When the next request is due: `Infinity` once all are sent, 0 for a
   * flood with nothing outstanding (at once). */
  nextSendAt(): number {
    const tally = this.#tally;
    return this.#sendAt(tally.transmitted, tally.outstanding, tally.lastSendAt);
  }

  /**
   * The due time of the request to send now, if one is due. Behind
   * schedule (after a stall), the datagrams already here are read before
   * the next send, up to one per request outstanding (a flood cannot hold
   * the sends up): at one look per send, the socket's buffer overflows,
   * since a look sees a datagram only every other time.
   */
  due(): number | undefined {
    const due = this.nextSendAt();
    const reading = this.#readBehind > 0 && this.#readBehind < this.#tally.outstanding;
    if (!dueBy(due) || reading) return undefined;
    this.#readBehind = 0;
    return due;
  }

  /** Whether the deadline (`-w`) is still ahead at `now`. */
  beforeDeadline(now: number): boolean {
    return now < this.#endAt;
  }

  /** Whether the run is over at `now`: every request sent and settled,
   * and the linger after that (for a duplicate right behind its original)
   * past. Notes when the run settled. */
  lingered(now: number): boolean {
    const tally = this.#tally;
    if (tally.transmitted >= this.#plan.count && tally.settled()) this.#settledAt ??= now;
    return now >= this.#lingerEnd();
  }

  /** When the loop next has something to do: a send, a timeout, the
   * deadline or the linger's end. */
  wakeAt(): number {
    return Math.min(this.nextSendAt(), this.#tally.nextTimeout(), this.#endAt, this.#lingerEnd());
  }

  /** What {@linkcode wakeAt} will say once the request `due` is sent at
   * `now`: a socket sets its timer for that before the send. */
  wakeAfterSend(due: number, now: number): number {
    const tally = this.#tally;
    const nextSend = this.#sendAt(tally.transmitted + 1, tally.outstanding + 1, now);
    // Its timeout runs from when it was due, as the tally counts it.
    const timeout = Math.min(tally.nextTimeout(), Math.min(due || now, now) + this.#plan.timeoutMs);
    return Math.min(nextSend, timeout, this.#endAt);
  }

  /** Notes a look at the socket: `behind`, whether it was taken behind
   * schedule and found a datagram. */
  looked(behind: boolean): void {
    this.#readBehind = behind ? this.#readBehind + 1 : 0;
  }

  /** The run's time as ping reports it: from the start until it settled
   * (or `now`), 0 if nothing was sent. */
  elapsed(now: number): number {
    return this.#tally.transmitted > 0 ? (this.#settledAt ?? now) - this.start : 0;
  }

  /** When request `sent + 1` is due, with `outstanding` unsettled and the
   * latest sent at `lastSendAt`. */
  #sendAt(sent: number, outstanding: number, lastSendAt: number): number {
    if (sent >= this.#plan.count) return Infinity;
    if (!this.#plan.flood) return this.start + sent * this.#plan.intervalMs;
    return outstanding === 0 ? 0 : lastSendAt + FLOOD_GAP_MS;
  }

  #lingerEnd(): number {
    return (this.#settledAt ?? Infinity) + Math.min(LINGER_MS, this.#plan.timeoutMs);
  }
}
