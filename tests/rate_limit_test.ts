import { assert, assertEquals, assertThrows } from "./assert.ts";
import { ADDRESS_RATE_FACTOR, MAX_RATE_SOURCES, RateLimiter } from "../lib/rate_limit.ts";

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
