/**
 * The lab's impairments: loss, delay, jitter, duplicates and reordering,
 * drawn from a seeded generator so that `--seed` makes a run repeatable.
 *
 * @module
 */

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
 * import { impairmentsSet } from "./impairments.ts";
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
 * import { createRandom } from "./impairments.ts";
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
 * import { createRandom, decideFate } from "./impairments.ts";
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
