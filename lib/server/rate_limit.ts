/**
 * The server's reply rate limit: a token bucket per client (address and
 * port), so that clients on one machine or behind one NAT do not share
 * one, and a bucket per address over all its ports, so that a forger who
 * varies the source port aims no more than {@linkcode ADDRESS_RATE_FACTOR}
 * × the rate at one victim. Memory is bounded, and forgetting a bucket never
 * hands its source a fresh one. Pure: the caller passes the time in ms; no
 * socket, no timer. docs/security.md says what it guards against.
 *
 * @module
 */

/**
 * How far short of a token, as a part of the bucket, still counts as one.
 * Refills add `elapsed × rate / 1000`, which floats cannot hold exactly
 * (1000 / 3 ms earns 0.9999999999999999 at 3/s), and the error grows with
 * every datagram between two full buckets; times near 1.8e12 ms come in
 * steps of 2^-12 ms, which costs up to `rate × 2.4e-7` tokens. A millionth
 * of the bucket covers both, many times over, and lets through at most
 * that much more than one burst.
 */
const TOKEN_SLACK = 1e-6;

import { ADDRESS_RATE_FACTOR, EVICTION_SCAN, MAX_RATE_SOURCES } from "../../settings.ts";
import { addressKey, clientKey } from "../shared/net.ts";
import { KeyMap } from "../shared/keyed_hash.ts";

/** Tokens and when they were last counted. */
interface Bucket {
  tokens: number;
  /** ms, the caller's clock. */
  updatedAt: number;
}

/** The bucket of one client (address and port), reused for another client
 * once forgotten. */
interface SourceBucket extends Bucket {
  key: number;
  address: AddressBuckets;
  readonly slot: number;
  refused: number;
}

/** The total of one address over its ports, pooled for reuse. */
interface AddressBuckets extends Bucket {
  key: number;
  ports: number;
}

/**
 * A fair token-bucket limit on replies: `rate` per second per client
 * (address and port) with bursts of `max(1, rate)`, and `rate ×`
 * {@linkcode ADDRESS_RATE_FACTOR} per address over all its ports. A request
 * passes only when both buckets have tokens.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "./rate_limit.ts";
 * import { equal } from "node:assert/strict";
 * const limiter = new RateLimiter(2); // 2 replies a second, bursts of 2
 * equal(limiter.allow("127.0.0.1", 40000, 0), true);
 * equal(limiter.allow("127.0.0.1", 40000, 0), true);
 * equal(limiter.allow("127.0.0.1", 40000, 0), false); // its bucket is empty
 * equal(limiter.allow("127.0.0.1", 40001, 0), true); // another port, another client
 * equal(limiter.takeRefused("127.0.0.1", 40000), 1); // then 0 until the next refusal
 * equal(limiter.allow("127.0.0.1", 40000, 500), true); // half a second earns a token
 * equal(limiter.allow("127.0.0.1", 40001, 1000, 2), true); // a duplicated reply takes 2
 * equal(limiter.allow("127.0.0.1", 40001, 1000), false);
 * ```
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #addressRate: number;
  readonly #addressBurst: number;
  /** Tokens that may be missing, each bucket's burst × TOKEN_SLACK. */
  readonly #slack: number;
  readonly #addressSlack: number;
  readonly #capacity: number;
  readonly #addresses: KeyMap<AddressBuckets>;
  readonly #sources: KeyMap<SourceBucket>;
  readonly #freeAddresses: AddressBuckets[] = [];
  /** Every client bucket, each at its place. Nothing is reordered on use,
   * as a least-recently-used list would be: a Map delete-and-add on every
   * datagram is too slow (docs/performance.md). */
  readonly #slots: SourceBucket[] = [];
  /** The next place the clock hand looks at for a bucket to forget. */
  #hand = 0;
  #untracked = 0;
  /** The bucket last found: a stamped request's refusals are read from the
   * bucket its admission just found (one table lookup less, a cache miss
   * after an idle wait). */
  #last: SourceBucket | undefined;

  /**
   * Allows `ratePerSecond` datagrams a second per client and remembers at
   * most `capacity` clients. Throws a `RangeError` naming the argument when
   * the rate is not a finite number above 0 or the capacity not a whole
   * number of at least 1.
   */
  constructor(ratePerSecond: number, capacity: number = MAX_RATE_SOURCES) {
    if (!Number.isFinite(ratePerSecond) || ratePerSecond <= 0) {
      throw new RangeError(`ratePerSecond must be a finite number above 0, got ${ratePerSecond}`);
    }
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a whole number of at least 1, got ${capacity}`);
    }
    this.#rate = ratePerSecond;
    this.#burst = Math.max(1, ratePerSecond);
    this.#addressRate = ratePerSecond * ADDRESS_RATE_FACTOR;
    this.#addressBurst = Math.max(1, this.#addressRate);
    this.#slack = this.#burst * TOKEN_SLACK;
    this.#addressSlack = this.#addressBurst * TOKEN_SLACK;
    this.#capacity = capacity;
    this.#sources = new KeyMap(capacity);
    this.#addresses = new KeyMap(capacity);
  }

  /**
   * Whether a reply of `cost` datagrams may go to `hostname:port` at `now`
   * (ms); takes the tokens from both of its buckets if so. A reply that
   * costs more than a bucket holds passes when the bucket is full and
   * leaves it in debt, so the long-run rate holds even then. Throws a
   * `RangeError` when `cost` is not a whole number of at least 1.
   */
  allow(hostname: string, port: number, now: number, cost: number = 1): boolean {
    if (!Number.isInteger(cost) || cost < 1) {
      throw new RangeError(`cost must be a whole number of at least 1, got ${cost}`);
    }
    const key = clientKey(hostname, port);
    const source = this.#find(key) ?? this.#admit(hostname, key, now);
    if (source === undefined) {
      this.#untracked++;
      return false;
    }
    const total = source.address;
    refill(source, this.#rate, this.#burst, now);
    refill(total, this.#addressRate, this.#addressBurst, now);
    if (
      source.tokens + this.#slack < Math.min(cost, this.#burst) ||
      total.tokens + this.#addressSlack < Math.min(cost, this.#addressBurst)
    ) {
      source.refused++;
      return false;
    }
    source.tokens -= cost;
    total.tokens -= cost;
    return true;
  }

  /**
   * Requests from `hostname:port` refused for its rate and not yet taken:
   * returns up to `most` of them and keeps the rest, so that a stamped
   * reply tells the client which of its losses were the limit's, and one
   * with no room for them leaves them to the next. A count is lost with its
   * bucket when the client is forgotten.
   */
  takeRefused(hostname: string, port: number, most: number = Infinity): number {
    const source = this.#find(clientKey(hostname, port));
    if (source === undefined) return 0;
    const taken = Math.min(source.refused, most);
    source.refused -= taken;
    return taken;
  }

  /** Client buckets remembered, at most the capacity. */
  get size(): number {
    return this.#slots.length;
  }

  /** Requests refused because the table was full of buckets in debt, so
   * that their clients could not be given a bucket. */
  get untracked(): number {
    return this.#untracked;
  }

  /** The bucket of `key`, if tracked. */
  #find(key: number): SourceBucket | undefined {
    if (this.#last?.key === key) return this.#last;
    const source = this.#sources.get(key);
    if (source !== undefined) this.#last = source;
    return source;
  }

  #admit(hostname: string, key: number, now: number): SourceBucket | undefined {
    let source: SourceBucket | undefined;
    if (this.#slots.length >= this.#capacity) {
      source = this.#forgetOneRefilled(now);
      if (source === undefined) return undefined;
    }
    const where = addressKey(hostname);
    let address = this.#addresses.get(where);
    if (address === undefined) {
      address = this.#freeAddresses.pop() ?? { key: where, tokens: 0, updatedAt: 0, ports: 0 };
      address.key = where;
      address.tokens = this.#addressBurst;
      address.updatedAt = now;
      address.ports = 0;
      this.#addresses.set(where, address);
    }
    address.ports++;
    if (source === undefined) {
      source = { key, address, slot: this.#slots.length, tokens: 0, updatedAt: 0, refused: 0 };
      this.#slots.push(source);
    }
    source.key = key;
    source.address = address;
    source.tokens = this.#burst;
    source.updatedAt = now;
    source.refused = 0;
    this.#sources.set(key, source);
    return this.#last = source;
  }

  #forgetOneRefilled(now: number): SourceBucket | undefined {
    for (let look = 0; look < EVICTION_SCAN; look++) {
      const source = this.#slots[this.#hand]!;
      this.#hand = (this.#hand + 1) % this.#slots.length;
      if (this.#refilled(source, now)) {
        this.#forget(source);
        return source;
      }
    }
    return undefined;
  }

  #refilled(source: SourceBucket, now: number): boolean {
    refill(source, this.#rate, this.#burst, now);
    if (source.tokens < this.#burst) return false;
    if (source.address.ports > 1) return true;
    const total = source.address;
    refill(total, this.#addressRate, this.#addressBurst, now);
    return total.tokens >= this.#addressBurst;
  }

  #forget(source: SourceBucket): void {
    this.#sources.delete(source.key);
    const { address } = source;
    if (--address.ports === 0) {
      this.#addresses.delete(address.key);
      this.#freeAddresses.push(address);
    }
  }
}

/** Adds the tokens earned since the bucket was last counted, up to `burst`.
 * A clock that steps back earns nothing for the step, and counts on from
 * where it now stands. */
function refill(bucket: Bucket, ratePerSecond: number, burst: number, now: number): void {
  if (now > bucket.updatedAt) {
    const earned = ((now - bucket.updatedAt) * ratePerSecond) / 1000;
    bucket.tokens = Math.min(burst, bucket.tokens + earned);
  }
  bucket.updatedAt = now;
}
