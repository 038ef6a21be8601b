import { assert, assertEquals, assertThrows } from "./assert.ts";
import { RateLimiter } from "../lib/server/rate_limit.ts";
import { ADDRESS_RATE_FACTOR, MAX_RATE_SOURCES } from "../settings.ts";
import fc from "npm:fast-check@4.10.2";

const HOST = "127.0.0.1";

/** How many of `count` requests at `now` pass. */
function allowed(limiter: RateLimiter, port: number, now: number, count: number, cost = 1) {
  let passed = 0;
  for (let i = 0; i < count; i++) if (limiter.allow(HOST, port, now, cost)) passed++;
  return passed;
}

Deno.test("RateLimiter refuses a rate or capacity it cannot work with, naming the argument", () => {
  for (const rate of [0, -1, NaN, Infinity]) {
    assertThrows(() => new RateLimiter(rate), /^RangeError: ratePerSecond must be/);
  }
  for (const capacity of [0, 1.5, NaN]) {
    assertThrows(() => new RateLimiter(10, capacity), /^RangeError: capacity must be/);
  }
  assertThrows(() => new RateLimiter(10).allow(HOST, 1, 0, 0), /^RangeError: cost must be/);
});

Deno.test("RateLimiter gives each client a burst of its rate, then the rate", () => {
  const limiter = new RateLimiter(100);
  assertEquals(allowed(limiter, 5000, 0, 150), 100);
  assertEquals(allowed(limiter, 5000, 250, 150), 25); // 250 ms earn 25 tokens
  assertEquals(allowed(limiter, 5000, 10_000, 150), 100); // never more than a burst
});

Deno.test("RateLimiter with a rate below 1 still answers: a bucket holds at least one token", () => {
  const limiter = new RateLimiter(0.5);
  assertEquals(allowed(limiter, 5000, 0, 3), 1);
  assertEquals(allowed(limiter, 5000, 1999, 3), 0);
  assertEquals(allowed(limiter, 5000, 2000, 3), 1);
});

Deno.test("RateLimiter counts every datagram of a duplicated reply against the bucket", () => {
  const limiter = new RateLimiter(10);
  assertEquals(allowed(limiter, 5000, 0, 10, 2), 5);
  // With a bucket of 1, a reply costing 2 passes when full and leaves a
  // debt: one reply every 2 s, the rate of 1 datagram a second.
  const slow = new RateLimiter(1);
  const times = [0, 1000, 1999, 2000, 3000, 4000];
  assertEquals(times.map((now) => slow.allow(HOST, 5000, now, 2)), [
    true,
    false,
    false,
    true,
    false,
    true,
  ]);
});

Deno.test("RateLimiter keeps a 10/s client whole beside a 12,000/s flood from another port of its address", () => {
  const rate = 1000;
  const limiter = new RateLimiter(rate);
  let flooderPassed = 0;
  let clientSent = 0;
  let clientPassed = 0;
  for (let ms = 0; ms < 5000; ms++) {
    for (let i = 0; i < 12; i++) if (limiter.allow(HOST, 40000, ms + i / 12)) flooderPassed++;
    if (ms % 100 === 50) {
      clientSent++;
      if (limiter.allow(HOST, 40001, ms)) clientPassed++;
    }
  }
  assertEquals(clientPassed, clientSent, `${clientSent - clientPassed} of ${clientSent} lost`);
  assert(flooderPassed <= rate * 5 + rate, `the flooder got ${flooderPassed}`);
});

Deno.test("RateLimiter caps all the ports of one address together at rate × ADDRESS_RATE_FACTOR", () => {
  const rate = 10;
  const limiter = new RateLimiter(rate);
  let passed = 0;
  for (let port = 1024; port < 1024 + 4 * ADDRESS_RATE_FACTOR; port++) {
    passed += allowed(limiter, port, 0, rate);
  }
  assertEquals(passed, rate * ADDRESS_RATE_FACTOR);
  assert(limiter.allow("127.0.0.2", 1024, 0), "another address has its own total");
});

Deno.test("RateLimiter never hands a flooder a fresh bucket while 20,000 forged sources push it out", () => {
  const rate = 1000;
  const limiter = new RateLimiter(rate);
  let flooderPassed = 0;
  let forged = 0;
  for (let ms = 0; ms < 4000; ms++) {
    // The flooder bursts 2,000 requests every 400 ms; in between come 30
    // forged sources a millisecond, 12,000 per gap: more than the table.
    if (ms % 400 === 0) {
      flooderPassed += allowed(limiter, 40000, ms, 2000);
      // A token bucket's promise: one burst, then `rate` a second.
      const most = rate + (rate * ms) / 1000;
      assert(flooderPassed <= most, `${flooderPassed} replies by ${ms} ms, at most ${most}`);
    }
    for (let i = 0; i < 30; i++, forged++) {
      limiter.allow(`10.0.${(forged % 20_000) >> 8}.${forged & 255}`, 5000, ms);
    }
  }
  assert(limiter.size <= MAX_RATE_SOURCES);
});

Deno.test("RateLimiter refuses new sources while every bucket it could forget is in debt", () => {
  const limiter = new RateLimiter(10, 2);
  assertEquals(allowed(limiter, 1, 0, 10), 10);
  assertEquals(allowed(limiter, 2, 0, 10), 10);
  assertEquals(allowed(limiter, 3, 0, 1), 0);
  assertEquals(limiter.untracked, 1);
  assertEquals(allowed(limiter, 1, 0, 1), 0, "port 1 keeps its empty bucket");
  assertEquals(allowed(limiter, 3, 1000, 1), 1, "a second later, a refilled bucket makes room");
  assertEquals(limiter.size, 2);
});

Deno.test("RateLimiter makes room by forgetting a refilled bucket, never one in debt", () => {
  const limiter = new RateLimiter(10, 2);
  assertEquals(allowed(limiter, 1, 0, 10), 10); // port 1 in debt, least recently used
  assertEquals(allowed(limiter, 2, 0, 1), 1); // port 2 refills within 100 ms
  assertEquals(allowed(limiter, 3, 200, 1), 1); // takes port 2's place
  assertEquals(allowed(limiter, 1, 200, 10), 2, "port 1 still has only what it earned");
});

Deno.test("RateLimiter keeps an address's total in debt when it forgets the address's last client", () => {
  const limiter = new RateLimiter(10, 80); // 80 a second for the whole address
  let spent = 0;
  for (let port = 1; port <= 80; port++) spent += allowed(limiter, port, 0, 1);
  assertEquals(spent, 80, "80 clients, one token each: the total is spent");
  // 100 ms later every client bucket is full again, the total is not; 80
  // clients of another address push the first address's clients out.
  for (let port = 1; port <= 80; port++) limiter.allow("127.0.0.2", port, 100);
  let passed = 0;
  for (let port = 100; port < 110; port++) passed += allowed(limiter, port, 200, 10);
  assertEquals(passed, 16, "200 ms earn the address 16 tokens, however many clients it had");
});

Deno.test("RateLimiter.takeRefused() returns a client's refusals once, then 0", () => {
  const limiter = new RateLimiter(2);
  assertEquals(allowed(limiter, 7000, 0, 6), 2);
  assertEquals(limiter.takeRefused(HOST, 7000), 4);
  assertEquals(limiter.takeRefused(HOST, 7000), 0);
  assertEquals(limiter.takeRefused(HOST, 7001), 0, "an unknown client");
});

Deno.test("RateLimiter.takeRefused() takes at most what it is asked for and keeps the rest", () => {
  const limiter = new RateLimiter(2);
  assertEquals(allowed(limiter, 7000, 0, 14), 2);
  assertEquals(limiter.takeRefused(HOST, 7000, 9), 9);
  assertEquals(limiter.takeRefused(HOST, 7000, 0), 0);
  assertEquals(limiter.takeRefused(HOST, 7000), 3);
});

Deno.test("RateLimiter keeps a client within its rate answered when the clock steps back an hour", () => {
  // The --fast socket's times are the kernel's wall clock, which NTP or an
  // administrator may set back.
  const limiter = new RateLimiter(10);
  const start = 1.8e12;
  assertEquals(allowed(limiter, 5000, start, 5), 5);
  // The step back earns nothing; the time after it earns as always.
  const stepped = start - 3_600_000;
  let refused = 0;
  for (let ms = 0; ms <= 5000; ms += 100) {
    if (!limiter.allow(HOST, 5000, stepped + ms)) refused++;
  }
  assertEquals(refused, 0, "a request every 100 ms is the rate of 10 a second");
});

/** An exact fraction: numerator and (positive) denominator. */
type Fraction = readonly [bigint, bigint];

function fraction(n: bigint, d: bigint): Fraction {
  let [a, b] = [n < 0n ? -n : n, d];
  while (b !== 0n) [a, b] = [b, a % b];
  return a === 0n ? [0n, 1n] : [n / a, d / a];
}
const plus = ([a, b]: Fraction, [c, d]: Fraction) => fraction(a * d + c * b, b * d);
const minus = ([a, b]: Fraction, [c, d]: Fraction) => fraction(a * d - c * b, b * d);
const times = ([a, b]: Fraction, [c, d]: Fraction) => fraction(a * c, b * d);
const over = ([a, b]: Fraction, [c, d]: Fraction) => fraction(a * d, b * c);
const compare = ([a, b]: Fraction, [c, d]: Fraction) => Math.sign(Number(a * d - c * b));

/** A double as the exact fraction it is: an integer over a power of two. */
function exactly(value: number): Fraction {
  let denominator = 1n;
  let scaled = value;
  // Doubling is exact, and a double has at most 1074 binary places.
  for (let step = 0; step < 1100 && !Number.isInteger(scaled); step++) {
    scaled *= 2;
    denominator *= 2n;
  }
  return fraction(BigInt(scaled), denominator);
}

/** The next double up or down from a positive double. */
function step(value: number, by: 1n | -1n): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  view.setBigUint64(0, view.getBigUint64(0) + by);
  return view.getFloat64(0);
}

/** The smallest double at or after the exact time `time`. */
function firstDoubleFrom(time: Fraction): number {
  let value = Number(time[0]) / Number(time[1]);
  for (let i = 0; i < 64 && compare(exactly(value), time) < 0; i++) value = step(value, 1n);
  for (let i = 0; i < 64 && value > 0 && compare(exactly(step(value, -1n)), time) >= 0; i++) {
    value = step(value, -1n);
  }
  return value;
}

/**
 * A token bucket in exact arithmetic, `rate` a second and `max(1, rate)`
 * tokens, full at the first request: what "within rate and burst" means.
 */
class ExactBucket {
  readonly #rate: Fraction;
  readonly #burst: Fraction;
  #tokens: Fraction;
  #at: Fraction | undefined;

  constructor(rate: number) {
    this.#rate = over(exactly(rate), [1000n, 1n]); // tokens a ms
    this.#burst = exactly(Math.max(1, rate));
    this.#tokens = this.#burst;
  }

  /** The first double, `wait` tokens' time after the last request or
   * later, at which the bucket holds a whole token. */
  nextTime(wait: number, last: number): number {
    const at = this.#at ?? exactly(last);
    const short = minus([1n, 1n], this.#tokens);
    const waited = plus(at, over(exactly(wait), this.#rate));
    const whole = compare(short, [0n, 1n]) > 0 ? plus(at, over(short, this.#rate)) : at;
    return firstDoubleFrom(compare(waited, whole) > 0 ? waited : whole);
  }

  /** Takes a token at `now` (ms); false if there is none. */
  take(now: number): boolean {
    const at = exactly(now);
    if (this.#at !== undefined) {
      const filled = plus(this.#tokens, times(minus(at, this.#at), this.#rate));
      this.#tokens = compare(filled, this.#burst) > 0 ? this.#burst : filled;
    }
    this.#at = at;
    if (compare(this.#tokens, [1n, 1n]) < 0) return false;
    this.#tokens = minus(this.#tokens, [1n, 1n]);
    return true;
  }
}

Deno.test("RateLimiter never refuses a client that stays within its rate and burst (property)", () => {
  // Rounding loses a token's last bits where the bucket holds a fraction
  // and a time's last bit is worth less than that: rates that are not whole
  // numbers, low ones most of all, and waits that are not whole tokens.
  const rates = fc.oneof(
    fc.constantFrom(0.3, 1, 3, 7, 999.9, 1000, 1e6 / 7),
    fc.double({ min: 0.1, max: 20, noNaN: true }),
    fc.double({ min: 0.1, max: 100_000, noNaN: true }),
  );
  // Each request waits this many tokens' time (1000 / rate ms) after the
  // one before, and at least until the bucket holds a token again: bursts
  // at one instant, requests at the very edge of the rate (the first
  // double at which a token is whole), and anything between.
  const waits = fc.array(
    fc.oneof(
      { arbitrary: fc.constant(0), weight: 3 },
      { arbitrary: fc.integer({ min: 1, max: 3 }), weight: 1 },
      { arbitrary: fc.integer({ min: 0, max: 3 * 2 ** 20 }).map((k) => k / 2 ** 20), weight: 2 },
    ),
    { minLength: 1, maxLength: 300 },
  );
  // Times near 0, and near now in ms since the epoch, where a double's
  // steps are 2^-12 ms.
  const starts = fc.constantFrom(0, 1, 1_795_790_037_169.044, 2 ** 40);
  fc.assert(
    fc.property(rates, waits, starts, (rate, gaps, start) => {
      const exact = new ExactBucket(rate);
      const limiter = new RateLimiter(rate);
      let now = start;
      for (const wait of gaps) {
        now = exact.nextTime(wait, now);
        if (!exact.take(now)) throw new Error(`the schedule left rate and burst at ${now}`);
        if (!limiter.allow(HOST, 5000, now)) return false;
      }
      return true;
    }),
    { numRuns: 5000 },
  );
});

Deno.test("RateLimiter answers a request at the first instant its bucket holds a whole token", () => {
  // At 1.06.../s the burst leaves 0.06... tokens; the next requests come
  // the moment the exact bucket holds one again. Floats lose its last bit.
  const rate = 1.0607680453790462;
  const exact = new ExactBucket(rate);
  const limiter = new RateLimiter(rate);
  let now = 0;
  for (let request = 1; request <= 3; request++) {
    now = exact.nextTime(0, now);
    assert(exact.take(now));
    assert(limiter.allow(HOST, 5000, now), `request ${request} at ${now} ms was refused`);
  }
});

Deno.test("RateLimiter allows a second's worth of burst per source, then the refill rate", () => {
  const limiter = new RateLimiter(3);
  const allowed = (source: string, at: number) => limiter.allow(source, 1, at);
  assertEquals([0, 0, 0, 0].map((at) => allowed("a", at)), [true, true, true, false]);
  assertEquals(allowed("b", 0), true); // another source has its own bucket
  assertEquals(allowed("a", 300), false); // 0.9 of a token so far
  assertEquals(allowed("a", 340), true);
  assertEquals([allowed("a", 10_000), allowed("a", 10_000), allowed("a", 10_000)], [
    true,
    true,
    true,
  ]);
  assertEquals(allowed("a", 10_000), false); // the bucket holds no more than a second's worth
});
