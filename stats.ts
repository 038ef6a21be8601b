/**
 * Streaming round-trip statistics: pure, no I/O, fixed memory whatever the
 * number of pings.
 *
 * - min/avg/max exactly; `mdev` as ping computes it, the population standard
 *   deviation sqrt(mean(rtt²) - mean(rtt)²).
 * - Percentiles by nearest rank (the smallest sample with at least p% of the
 *   samples at or below it), read from a log-linear histogram whose buckets
 *   are 2% wide: a reported percentile is within 1% of the exact one.
 * - Jitter two ways: IPDV, the mean absolute difference between consecutive
 *   RTTs (RFC 3393), and RFC 3550's smoothed estimate J += (|D| - J) / 16.
 *
 * @module
 */

/** Bucket growth factor; (γ - 1) / (γ + 1) < 1% is the relative error bound. */
const GAMMA = 1.02;
const LOG_GAMMA = Math.log(GAMMA);
/** The smallest RTT the histogram resolves, in ms (1 ns); smaller ones share
 * bucket 0. */
const HISTOGRAM_FLOOR_MS = 1e-6;
/** Enough buckets for 1 ns to well over a day. */
const HISTOGRAM_BUCKETS = 1700;

/** The relative error bound of {@linkcode RttStats.percentile}. */
export const PERCENTILE_RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1);

/** A summary of round-trip times, in milliseconds. */
export interface RttSummary {
  /** Replies timed, duplicates excluded. */
  count: number;
  min: number;
  avg: number;
  max: number;
  /** ping's mdev: the population standard deviation. */
  mdev: number;
  p50: number;
  p90: number;
  p99: number;
  /** Mean absolute difference between consecutive RTTs (RFC 3393 IPDV). */
  ipdv: number;
  /** RFC 3550 interarrival jitter, smoothed over 16 samples. */
  jitter: number;
}

/** Accumulates RTT samples in constant memory. */
export class RttStats {
  #count = 0;
  // Welford's running mean and sum of squared deviations: the textbook
  // sum-of-squares formula cancels badly when RTTs are nearly equal.
  #mean = 0;
  #squaredDeviations = 0;
  #min = Infinity;
  #max = -Infinity;
  #previous: number | undefined;
  #ipdvSum = 0;
  #jitter = 0;
  readonly #buckets = new Float64Array(HISTOGRAM_BUCKETS);

  /** Adds one RTT in milliseconds. */
  add(rtt: number): void {
    this.#count++;
    const delta = rtt - this.#mean;
    this.#mean += delta / this.#count;
    this.#squaredDeviations += delta * (rtt - this.#mean);
    if (rtt < this.#min) this.#min = rtt;
    if (rtt > this.#max) this.#max = rtt;
    if (this.#previous !== undefined) {
      const difference = Math.abs(rtt - this.#previous);
      this.#ipdvSum += difference;
      this.#jitter += (difference - this.#jitter) / 16;
    }
    this.#previous = rtt;
    this.#buckets[bucketOf(rtt)]! += 1;
  }

  /** The number of samples added. */
  get count(): number {
    return this.#count;
  }

  /**
   * The nearest-rank `p`th percentile (0 < p ≤ 100) within
   * {@linkcode PERCENTILE_RELATIVE_ERROR}, or NaN when there is no sample.
   */
  percentile(p: number): number {
    if (this.#count === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count));
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

  /** The figures so far; every field is NaN while there is no sample. */
  summary(): RttSummary {
    const n = this.#count;
    if (n === 0) {
      return {
        count: 0,
        min: NaN,
        avg: NaN,
        max: NaN,
        mdev: NaN,
        p50: NaN,
        p90: NaN,
        p99: NaN,
        ipdv: NaN,
        jitter: NaN,
      };
    }
    return {
      count: n,
      min: this.#min,
      avg: this.#mean,
      max: this.#max,
      // Population standard deviation, as ping's mdev.
      mdev: Math.sqrt(this.#squaredDeviations / n),
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      ipdv: n > 1 ? this.#ipdvSum / (n - 1) : 0,
      jitter: this.#jitter,
    };
  }
}

function bucketOf(rtt: number): number {
  if (!(rtt > HISTOGRAM_FLOOR_MS)) return 0;
  const bucket = Math.floor(Math.log(rtt / HISTOGRAM_FLOOR_MS) / LOG_GAMMA);
  return Math.min(bucket, HISTOGRAM_BUCKETS - 1);
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
 */
export function lossPercent(transmitted: number, received: number): number {
  if (transmitted === 0) return 0;
  return ((transmitted - received) / transmitted) * 100;
}
