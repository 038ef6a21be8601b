/**
 * Waking up on time without burning a core. The runtime's timers fire late
 * (about 1 ms on these machines, with millisecond resolution), so an alarm
 * learns how late its timers have been and aims that much early (irtt's
 * "comp" timer). It never spins: one timer, one wake-up per deadline. A
 * wake-up a little before the deadline (less than half the learned
 * lateness) counts as on time, since waiting again would mostly end later
 * than the deadline by more; {@linkcode dueBy} tells callers the same.
 *
 * @module
 */
import { MAX_TIMER_COMPENSATION_MS, TIMER_LEARNING_WINDOW } from "../../settings.ts";

/** Mean lateness of the runtime's timers, learned as they fire. */
let lateness = 1;

/** A timer that rings at a `performance.now()` time or on abort. */
export interface Alarm {
  /** When it rings, a `performance.now()` time. */
  deadline: number;
  /** Settles when it rings. */
  rung: Promise<undefined>;
  /** Stops the timer so that it does not hold the process open. */
  cancel(): void;
}

/**
 * An alarm for `deadline` (a `performance.now()` time) that also rings when
 * `signal` aborts.
 *
 * @example
 * ```ts
 * import { alarmAt } from "./timer.ts";
 * import { ok } from "node:assert/strict";
 * const deadline = performance.now() + 5;
 * await alarmAt(deadline).rung;
 * ok(performance.now() >= deadline);
 * ```
 */
export function alarmAt(deadline: number, signal?: AbortSignal): Alarm {
  let cancel = () => {};
  const rung = new Promise<undefined>((resolve) => {
    if (signal?.aborted) return resolve(undefined);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ring = () => {
      cancel();
      resolve(undefined);
    };
    const check = (aimedAt: number) => {
      const now = performance.now();
      if (Number.isFinite(aimedAt)) learn(now - aimedAt);
      const left = deadline - now;
      if (left <= early()) return ring();
      // Whole milliseconds: the runtime drops a wait's fraction, so a
      // fractional aim landed early by up to 1 ms and a third of alarms
      // set a second timer, a wake-up each (1.42 timers an alarm at 10 ms,
      // 1.04 rounded; ring p90 1.6 ms late, 0.5 rounded).
      const wait = Math.max(0, Math.round(left - Math.min(lateness, MAX_TIMER_COMPENSATION_MS)));
      const aim = now + wait;
      timer = setTimeout(() => check(aim), wait);
    };
    signal?.addEventListener("abort", ring, { once: true });
    cancel = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", ring);
    };
    if (Number.isFinite(deadline)) check(NaN);
  });
  return { deadline, rung, cancel: () => cancel() };
}

/** How early a wake-up may come and still count as on time, ms. */
function early(): number {
  return Math.min(lateness, MAX_TIMER_COMPENSATION_MS) / 2;
}

/**
 * Whether `deadline` (a `performance.now()` time) counts as come: passed,
 * or close enough that an alarm for it rings now.
 *
 * @example
 * ```ts
 * import { dueBy } from "./timer.ts";
 * import { equal } from "node:assert/strict";
 * equal(dueBy(performance.now() - 1), true);
 * equal(dueBy(performance.now() + 60_000), false);
 * ```
 */
export function dueBy(deadline: number): boolean {
  return performance.now() >= deadline - early();
}

/** Folds one timer's lateness into the average. */
function learn(late: number): void {
  lateness += (Math.max(0, late) - lateness) / TIMER_LEARNING_WINDOW;
}

/**
 * Resolves at `deadline` (a `performance.now()` time) or when `signal`
 * aborts, whichever is first.
 *
 * @example
 * ```ts
 * import { sleepUntil } from "./timer.ts";
 * import { ok } from "node:assert/strict";
 * const deadline = performance.now() + 2;
 * await sleepUntil(deadline);
 * ok(performance.now() >= deadline);
 * ```
 */
export async function sleepUntil(deadline: number, signal?: AbortSignal): Promise<void> {
  await alarmAt(deadline, signal).rung;
}
