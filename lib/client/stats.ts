/**
 * Streaming round-trip statistics: pure, no I/O, fixed memory whatever the
 * number of pings.
 *
 * - min/avg/max exactly; `mdev` as ping computes it, the population standard
 *   deviation sqrt(mean(rtt²) - mean(rtt)²).
 * - Percentiles by nearest rank (the smallest sample with at least p% of the
 *   samples at or below it): exact for the first {@linkcode EXACT_SAMPLES}
 *   samples, then read from a log-linear histogram whose buckets are 2%
 *   wide, so that a reported percentile is within 1% of the exact one.
 * - Delay variation two ways ({@linkcode DelayVariation}): RFC 3550's
 *   interarrival jitter J += (|D| - J) / 16 over the packets in arrival
 *   order, and the mean |IPDV| of RFC 3393 over pairs of consecutive
 *   packets (by send order) that both arrived.
 *
 * @module
 */
import { EXACT_SAMPLES } from "../../settings.ts";

/** Bucket growth factor; (γ - 1) / (γ + 1) < 1% is the relative error bound. */
const GAMMA = 1.02;
const LOG_GAMMA = Math.log(GAMMA);
/** The smallest RTT the histogram resolves, in ms (1 ns); smaller ones share
 * bucket 0. */
const HISTOGRAM_FLOOR_MS = 1e-6;
/** Enough buckets for 1 ns to well over a day. */
const HISTOGRAM_BUCKETS = 1700;

/**
 * The relative error bound of {@linkcode RttStats.percentile}.
 */
export const PERCENTILE_RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1);

/**
 * The distribution of round-trip times, in milliseconds.
 */
export interface RttDistribution {
  /** Round trips timed. */
  count: number;
  /** The lowest RTT. */
  min: number;
  /** The mean RTT. */
  avg: number;
  /** The highest RTT. */
  max: number;
  /** ping's mdev: the population standard deviation. */
  mdev: number;
  /** The median (nearest rank). */
  p50: number;
  /** The 90th percentile (nearest rank). */
  p90: number;
  /** The 99th percentile (nearest rank). */
  p99: number;
}

/**
 * How much the delay varies from packet to packet, in milliseconds.
 */
export interface VariationSummary {
  /** The mean |IPDV| (RFC 3393) over pairs of consecutive packets, by send
   * order, that both arrived; NaN when no such pair did. */
  ipdv: number;
  /** RFC 3550's interarrival jitter after the last arrival; NaN before
   * the first. */
  jitter: number;
}

/**
 * A summary of round-trip times (or of any delay), in milliseconds.
 */
export type RttSummary = RttDistribution & VariationSummary;

/**
 * Accumulates RTT samples in constant memory.
 *
 * @example
 * ```ts
 * import { RttStats } from "./stats.ts";
 * import { equal } from "node:assert/strict";
 * const stats = new RttStats();
 * for (const rtt of [0.1, 0.2, 0.4]) stats.add(rtt);
 * equal(stats.summary().max, 0.4);
 * equal(stats.percentile(50), 0.2);
 * ```
 */
export class RttStats {
  #count = 0;
  // Welford's running mean and sum of squared deviations: the textbook
  // sum-of-squares formula cancels badly when RTTs are nearly equal.
  #mean = 0;
  #squaredDeviations = 0;
  #min = Infinity;
  #max = -Infinity;
  readonly #buckets = new Float64Array(HISTOGRAM_BUCKETS);
  /** The first samples, for exact percentiles of short runs. */
  readonly #samples = new Float64Array(EXACT_SAMPLES);
  /** Samples counted in the buckets: the kept ones go in only when the
   * buckets are read. */
  #bucketed = 0;

  /** Adds one RTT in milliseconds. */
  add(rtt: number): void {
    this.#count++;
    const delta = rtt - this.#mean;
    this.#mean += delta / this.#count;
    this.#squaredDeviations += delta * (rtt - this.#mean);
    if (rtt < this.#min) this.#min = rtt;
    if (rtt > this.#max) this.#max = rtt;
    // A kept sample is bucketed later, all at once: its logarithm and its
    // bucket, another cache line, were 1-2 µs of each add at 10 ms (cold).
    if (this.#count <= EXACT_SAMPLES) {
      this.#samples[this.#count - 1] = rtt;
      return;
    }
    this.#fillBuckets();
    this.#buckets[bucketOf(rtt)]! += 1;
    this.#bucketed++;
  }

  /** Counts the kept samples not yet in the buckets. */
  #fillBuckets(): void {
    const kept = Math.min(this.#count, EXACT_SAMPLES);
    for (; this.#bucketed < kept; this.#bucketed++) {
      this.#buckets[bucketOf(this.#samples[this.#bucketed]!)]! += 1;
    }
  }

  /** The number of samples added. */
  get count(): number {
    return this.#count;
  }

  /**
   * The nearest-rank `p`th percentile (0 < p ≤ 100): exact up to
   * {@linkcode EXACT_SAMPLES} samples, within
   * {@linkcode PERCENTILE_RELATIVE_ERROR} beyond; NaN when there is no
   * sample.
   */
  percentile(p: number): number {
    return this.percentiles([p])[0]!;
  }

  /** Several percentiles at once (one sort for short runs). */
  percentiles(ps: number[]): number[] {
    if (this.#count <= EXACT_SAMPLES) {
      const sorted = this.#samples.slice(0, this.#count).sort();
      return ps.map((p) => this.#count === 0 ? NaN : sorted[rankOf(p, this.#count) - 1]!);
    }
    return ps.map((p) => this.#estimate(p));
  }

  #estimate(p: number): number {
    const rank = rankOf(p, this.#count);
    if (rank === 1) return this.#min;
    if (rank >= this.#count) return this.#max;
    let seen = 0;
    for (let bucket = 0; bucket < HISTOGRAM_BUCKETS; bucket++) {
      seen += this.#buckets[bucket]!;
      if (seen >= rank) {
        // The exact extremes are known: never report beyond them.
        return Math.min(this.#max, Math.max(this.#min, representative(bucket)));
      }
    }
    return this.#max;
  }

  #percentileFields(): Pick<RttDistribution, "p50" | "p90" | "p99"> {
    const [p50 = NaN, p90 = NaN, p99 = NaN] = this.percentiles([50, 90, 99]);
    return { p50, p90, p99 };
  }

  /**
   * The samples in at most `rows` rows between min and max, spaced
   * logarithmically (RTTs have long tails), each row's bounds rounded to the
   * histogram's buckets.
   */
  histogram(rows = 8): HistogramRow[] {
    if (this.#count === 0) return [];
    this.#fillBuckets();
    const first = bucketOf(this.#min);
    const last = bucketOf(this.#max);
    const perRow = Math.max(1, Math.ceil((last - first + 1) / rows));
    const result: HistogramRow[] = [];
    for (let start = first; start <= last; start += perRow) {
      let count = 0;
      for (let bucket = start; bucket < start + perRow && bucket <= last; bucket++) {
        count += this.#buckets[bucket]!;
      }
      result.push({
        from: Math.max(this.#min, lowerBound(start)),
        to: Math.min(this.#max, lowerBound(start + perRow)),
        count,
      });
    }
    return result;
  }

  /** The figures so far; every field is NaN while there is no sample. */
  summary(): RttDistribution {
    const n = this.#count;
    if (n === 0) {
      return { count: 0, min: NaN, avg: NaN, max: NaN, mdev: NaN, p50: NaN, p90: NaN, p99: NaN };
    }
    return {
      count: n,
      min: this.#min,
      avg: this.#mean,
      max: this.#max,
      // Population standard deviation, as ping's mdev.
      mdev: Math.sqrt(this.#squaredDeviations / n),
      ...this.#percentileFields(),
    };
  }
}

/** RFC 3550's gain: each new difference moves the jitter 1/16 of the way. */
const JITTER_GAIN = 1 / 16;

/**
 * Delay variation, the two standard ways, in constant memory. Which delays
 * make a pair is the caller's to know (it has the send order).
 *
 * @example
 * ```ts
 * import { DelayVariation } from "./stats.ts";
 * import { equal } from "node:assert/strict";
 * const variation = new DelayVariation();
 * variation.arrived(1); // seq 1
 * variation.arrived(3); // seq 3: seq 2 was lost, no pair
 * variation.arrived(4); // seq 4
 * variation.paired(3, 4);
 * equal(variation.summary().ipdv, 1);
 * equal(variation.summary().jitter, 2 / 16 + (1 - 2 / 16) / 16);
 * ```
 */
export class DelayVariation {
  #arrivals = 0;
  #previous = NaN;
  #jitter = 0;
  #pairs = 0;
  #ipdvSum = 0;

  /** The delay of the next packet to arrive, in arrival order: RFC 3550
   * (§6.4.1, A.8) takes D between each arrival and the one before it. */
  arrived(delay: number): void {
    if (this.#arrivals++ > 0) {
      this.#jitter += (Math.abs(delay - this.#previous) - this.#jitter) * JITTER_GAIN;
    }
    this.#previous = delay;
  }

  /** The delays of two packets sent one after the other, both arrived: one
   * IPDV of RFC 3393 (selection function: consecutive packets). */
  paired(earlier: number, later: number): void {
    this.#pairs++;
    this.#ipdvSum += Math.abs(later - earlier);
  }

  /** The figures so far. */
  summary(): VariationSummary {
    return {
      ipdv: this.#pairs > 0 ? this.#ipdvSum / this.#pairs : NaN,
      jitter: this.#arrivals > 0 ? this.#jitter : NaN,
    };
  }
}

/** The nearest rank of percentile `p` among `count` samples, 1-based. */
function rankOf(p: number, count: number): number {
  return Math.min(count, Math.max(1, Math.ceil((p / 100) * count)));
}

function bucketOf(rtt: number): number {
  if (!(rtt > HISTOGRAM_FLOOR_MS)) return 0;
  const bucket = Math.floor(Math.log(rtt / HISTOGRAM_FLOOR_MS) / LOG_GAMMA);
  return Math.min(bucket, HISTOGRAM_BUCKETS - 1);
}

function lowerBound(bucket: number): number {
  return HISTOGRAM_FLOOR_MS * GAMMA ** bucket;
}

/** The value that is within the error bound of every value in the bucket
 * [floor·γ^i, floor·γ^(i+1)). */
function representative(bucket: number): number {
  return (HISTOGRAM_FLOOR_MS * 2 * GAMMA ** (bucket + 1)) / (1 + GAMMA);
}

/**
 * Packet loss in percent as ping computes it: the share of transmitted
 * requests that got no reply (duplicates do not make up for losses).
 * 0 when nothing was transmitted.
 *
 * @example
 * ```ts
 * import { lossPercent } from "./stats.ts";
 * import { equal } from "node:assert/strict";
 * equal(lossPercent(10, 7), 30);
 * ```
 */
export function lossPercent(transmitted: number, received: number): number {
  if (transmitted === 0) return 0;
  return ((transmitted - received) / transmitted) * 100;
}

/**
 * One row of {@linkcode RttStats.histogram}: samples in [from, to).
 */
export interface HistogramRow {
  /** The row's lowest RTT, ms. */
  from: number;
  /** The row's upper bound, ms. */
  to: number;
  /** RTTs in the row. */
  count: number;
}

/**
 * One column of a {@linkcode Timeline}.
 */
export interface TimelineColumn {
  /** Mean RTT of the replies in the column (NaN when none). */
  rtt: number;
  /** Replies counted in the column. */
  replies: number;
  /** Requests in the column that got no reply. */
  losses: number;
}

/**
 * The run as a fixed number of columns, for the sparkline: each column
 * covers `span` consecutive requests; when the run outgrows the columns,
 * neighbours merge and the span doubles. Memory is fixed.
 *
 * @example
 * ```ts
 * import { Timeline } from "./stats.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * const timeline = new Timeline(64);
 * timeline.record(0, 0.2);
 * timeline.record(1, null); // lost
 * deepStrictEqual(timeline.columns(), [
 *   { rtt: 0.2, replies: 1, losses: 0 },
 *   { rtt: NaN, replies: 0, losses: 1 },
 * ]);
 * ```
 */
export class Timeline {
  readonly #width: number;
  #span = 1;
  #sum: Float64Array;
  #replies: Float64Array;
  #losses: Float64Array;
  #used = 0;

  /** A timeline at most `width` columns wide. */
  constructor(width = 64) {
    this.#width = width;
    this.#sum = new Float64Array(width);
    this.#replies = new Float64Array(width);
    this.#losses = new Float64Array(width);
  }

  /** Records request number `index` (0-based): its RTT, or `null` if lost.
   * A late reply to a request recorded as lost is recorded with `late`. */
  record(index: number, rtt: number | null, late = false): void {
    while (index >= this.#width * this.#span) this.#merge();
    const column = Math.floor(index / this.#span);
    this.#used = Math.max(this.#used, column + 1);
    if (rtt === null) {
      this.#losses[column]! += 1;
      return;
    }
    if (late) this.#losses[column]! -= 1;
    this.#sum[column]! += rtt;
    this.#replies[column]! += 1;
  }

  #merge(): void {
    for (const series of [this.#sum, this.#replies, this.#losses]) {
      for (let column = 0; column < this.#width; column++) {
        series[column] = column < this.#width / 2
          ? series[2 * column]! + series[2 * column + 1]!
          : 0;
      }
    }
    this.#span *= 2;
    this.#used = Math.ceil(this.#used / 2);
  }

  /** Requests per column. */
  get span(): number {
    return this.#span;
  }

  /** The columns in use, oldest first. */
  columns(): TimelineColumn[] {
    return Array.from({ length: this.#used }, (_, column) => ({
      rtt: this.#replies[column]! > 0 ? this.#sum[column]! / this.#replies[column]! : NaN,
      replies: this.#replies[column]!,
      losses: this.#losses[column]!,
    }));
  }
}
