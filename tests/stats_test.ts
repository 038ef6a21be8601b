import { assert, assertEquals } from "./assert.ts";
import {
  DelayVariation,
  lossPercent,
  PERCENTILE_RELATIVE_ERROR,
  RttStats,
  Timeline,
} from "../lib/client/stats.ts";
import { PingTally } from "../lib/client/tally.ts";
import { createRandom } from "../lib/server/verdict.ts";

function statsOf(samples: number[]): RttStats {
  const stats = new RttStats();
  for (const sample of samples) stats.add(sample);
  return stats;
}

const close = (actual: number, expected: number, tolerance = 1e-9) =>
  assert(Math.abs(actual - expected) <= tolerance, `${actual} is not ${expected}`);

Deno.test("RttStats gives min/avg/max and ping's mdev for a hand-computed vector", () => {
  const summary = statsOf([1, 2, 3, 4]).summary();
  assertEquals([summary.count, summary.min, summary.avg, summary.max], [4, 1, 2.5, 4]);
  // sqrt(mean(x²) - mean(x)²) = sqrt(30/4 - 6.25) = sqrt(1.25)
  close(summary.mdev, Math.sqrt(1.25));
});

Deno.test("RttStats gives mdev 0 for equal samples and for a single one", () => {
  assertEquals(statsOf([0.3, 0.3, 0.3]).summary().mdev, 0);
  const one = statsOf([7.25]).summary();
  assertEquals([one.min, one.avg, one.max, one.mdev], [7.25, 7.25, 7.25, 0]);
});

Deno.test("RttStats has no figures before the first sample", () => {
  const summary = new RttStats().summary();
  assertEquals(summary.count, 0);
  assert(Number.isNaN(summary.avg) && Number.isNaN(summary.p99));
});

Deno.test("DelayVariation gives RFC 3550 jitter over arrivals and mean |IPDV| over pairs", () => {
  const variation = new DelayVariation();
  assertEquals(variation.summary(), { ipdv: NaN, jitter: NaN });
  variation.arrived(1);
  assertEquals(variation.summary(), { ipdv: NaN, jitter: 0 }); // J starts at 0
  variation.arrived(2);
  variation.arrived(4);
  variation.paired(1, 2);
  variation.paired(4, 2);
  const summary = variation.summary();
  close(summary.ipdv, 1.5); // (|2-1| + |2-4|) / 2
  close(summary.jitter, 1 / 16 + (2 - 1 / 16) / 16); // J += (|D| - J) / 16, twice
});

Deno.test("RttStats percentiles are nearest-rank within the stated error over 200,000 samples", () => {
  const random = createRandom(2026);
  const samples = Array.from({ length: 200_000 }, () => {
    // A long-tailed mix, as RTTs are: mostly ~0.1 ms, some far out.
    const base = 0.05 + random() * 0.1;
    return random() < 0.02 ? base * (10 + random() * 1000) : base;
  });
  const stats = statsOf(samples);
  const sorted = [...samples].sort((a, b) => a - b);
  for (const p of [1, 10, 50, 90, 99, 99.9, 100]) {
    const exact = sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!;
    const estimate = stats.percentile(p);
    const error = Math.abs(estimate - exact) / exact;
    assert(error <= PERCENTILE_RELATIVE_ERROR, `p${p}: ${estimate} vs ${exact} (${error})`);
  }
  assertEquals(stats.percentile(100), sorted.at(-1));
});

Deno.test("lossPercent() follows ping: 0%, 100%, thirds, and nothing sent", () => {
  assertEquals(lossPercent(10, 10), 0);
  assertEquals(lossPercent(10, 7), 30);
  assertEquals(lossPercent(10, 0), 100);
  close(lossPercent(3, 2), 100 / 3);
  assertEquals(lossPercent(0, 0), 0);
});

Deno.test("RttStats percentiles are exact nearest-rank for short runs", () => {
  const stats = statsOf([0.081, 0.201, 0.123, 5, 0.09]);
  // Sorted: 0.081 0.09 0.123 0.201 5; ranks ceil(p/100 * 5).
  assertEquals(stats.percentiles([20, 50, 90, 99, 100]), [0.081, 0.123, 5, 5, 5]);
});

Deno.test("RttStats.histogram() covers min to max and counts every sample", () => {
  const samples = [0.1, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2];
  const rows = statsOf(samples).histogram(4);
  assert(rows.length <= 4);
  assertEquals(rows[0]!.from, 0.1);
  assertEquals(rows.at(-1)!.to, 3.2);
  assertEquals(rows.reduce((sum, row) => sum + row.count, 0), samples.length);
});

/** A tally with `transmitted` requests sent, seq 1..n at time 0. */
function tallyOf(transmitted: number): PingTally {
  const tally = new PingTally(transmitted, 100);
  for (let seq = 1; seq <= transmitted; seq++) tally.sent(seq, 0, 0);
  return tally;
}

Deno.test("PingTally classifies replies: first, duplicate, late, reordered, unknown", () => {
  const tally = tallyOf(3);
  assertEquals(tally.reply(2, 1), { kind: "reply", rtt: 1, late: false, reordered: false });
  assertEquals(tally.reply(2, 2), { kind: "duplicate", rtt: 2 });
  assertEquals(tally.reply(1, 3), { kind: "reply", rtt: 3, late: false, reordered: true });
  assertEquals([...tally.expire(99)], []);
  assertEquals([...tally.expire(100)], [3]);
  assertEquals(tally.reply(3, 150), { kind: "reply", rtt: 150, late: true, reordered: false });
  assertEquals(tally.reply(4, 1), { kind: "unknown-seq" });
  const summary = tally.summary();
  assertEquals(
    [summary.received, summary.duplicates, summary.late, summary.reordered, summary.loss],
    [3, 1, 1, 1, 0],
  );
  assert(tally.settled());
});

Deno.test("PingTally counts duplicates' round trips in min/avg/max/mdev, as iputils ping does", () => {
  const tally = tallyOf(2);
  tally.reply(1, 1);
  tally.reply(1, 3); // a duplicate, 3 ms after the send
  tally.reply(2, 2);
  const { rtt, duplicates } = tally.summary();
  assertEquals(duplicates, 1);
  assertEquals([rtt.count, rtt.min, rtt.avg, rtt.max], [3, 1, 2, 3]);
  close(rtt.mdev, Math.sqrt(2 / 3)); // sqrt(mean(1, 9, 4) - 2²)
  close(rtt.ipdv, 1); // first copies only: |2 - 1|
});

Deno.test("PingTally takes IPDV over consecutive requests by seq (RFC 3393), jitter by arrival (RFC 3550)", () => {
  // Sent 1-5; 2 comes back before 1, 3 is lost.
  const tally = tallyOf(5);
  const arrivals: [number, number][] = [[2, 5], [1, 1], [4, 10], [5, 4]];
  for (const [seq, rtt] of arrivals) tally.reply(seq, rtt);
  const { rtt } = tally.summary();
  close(rtt.ipdv, (4 + 6) / 2); // pairs (1,2) and (4,5); 3 breaks (2,3) and (3,4)
  let jitter = 0;
  for (let i = 1; i < arrivals.length; i++) {
    jitter += (Math.abs(arrivals[i]![1] - arrivals[i - 1]![1]) - jitter) / 16;
  }
  close(rtt.jitter, jitter);
  // No two consecutive requests answered: no IPDV at all.
  const apart = tallyOf(3);
  apart.reply(1, 1);
  apart.reply(3, 2);
  assert(Number.isNaN(apart.summary().rtt.ipdv), `ipdv ${apart.summary().rtt.ipdv}`);
  assertEquals(apart.summary().rtt.jitter, 1 / 16);
});

Deno.test("PingTally takes the server time's IPDV over consecutive requests too", () => {
  // 1, 2 and 4 answered and stamped (3 lost upstream), held 10, 30, 100 µs.
  const tally = tallyOf(4);
  tally.reply(1, 1, { count: 1, held: 10 });
  tally.reply(2, 1, { count: 2, held: 30 });
  tally.reply(4, 1, { count: 3, held: 100 });
  close(tally.summary().serverTime!.ipdv, 0.02);
});

Deno.test("PingTally counts stray datagrams by reason, and port unreachable apart from errors", () => {
  const tally = tallyOf(3);
  tally.stray("no-record");
  tally.stray("no-record");
  tally.stray("foreign-address");
  tally.sendFailed(2, true);
  tally.sendFailed(3);
  const summary = tally.summary();
  assertEquals(summary.stray, 3);
  assertEquals(summary.strayByReason, {
    "foreign-address": 1,
    "no-record": 2,
    "wrong-token": 0,
    "unknown-seq": 0,
    "before-request": 0,
  });
  assertEquals([summary.errors, summary.unreachable], [2, 1]);
});

Deno.test("PingTally splits loss by the latest stamp's count", () => {
  // 10 sent. The server saw 1,2,4,5,7 (3 and 6 lost upstream); the reply to
  // 4 was lost downstream; 8-10 were sent after the last stamped reply (7).
  const tally = tallyOf(10);
  const seen = [1, 2, 4, 5, 7];
  for (const [i, seq] of seen.entries()) {
    if (seq !== 4) tally.reply(seq, 1, { count: i + 1 });
  }
  assertEquals(tally.summary().lossSplit, {
    upstream: 2,
    downstream: 1,
    unknown: 3,
    rateLimited: 0,
  });
  assertEquals(tally.summary().received, 4);
});

Deno.test("PingTally counts requests the server refused by rate apart from upstream loss", () => {
  // 6 sent; the server refused 3 and 4 by rate and said so in the stamp of 5.
  const tally = tallyOf(6);
  tally.reply(1, 1, { count: 1 });
  tally.reply(2, 1, { count: 2 });
  tally.reply(5, 1, { count: 3, refused: 2 });
  tally.reply(6, 1, { count: 4 });
  assertEquals(tally.summary().lossSplit, {
    upstream: 0,
    downstream: 0,
    unknown: 0,
    rateLimited: 2,
  });
});

Deno.test("PingTally believes no stamp that cannot be true: the figures become unknown", () => {
  const cases: [string, (tally: PingTally) => void, RegExp][] = [
    ["a count of 0", (tally) => tally.reply(1, 1, { count: 0 }), /counted 0 requests where 1/],
    ["a count past what was sent", (tally) => tally.reply(2, 1, { count: 7 }), /counted 7/],
    ["a count that goes backwards (a forgotten token)", (tally) => {
      tally.reply(1, 1, { count: 1 });
      tally.reply(2, 1, { count: 2 });
      tally.reply(3, 1, { count: 1 });
    }, /had been answered|went backwards/],
    ["a count of 1 on every reply", (tally) => {
      tally.reply(1, 1, { count: 1 });
      tally.reply(2, 1, { count: 1 });
    }, /counted 1 requests where 2 had been answered/],
    ["a hold longer than the round trip", (tally) => {
      tally.reply(1, 0.5, { count: 1, held: 9_999_999_999 });
    }, /longer than its round trip/],
  ];
  for (const [name, feed, reason] of cases) {
    const tally = tallyOf(3);
    feed(tally);
    const summary = tally.summary();
    assertEquals([summary.lossSplit, summary.serverTime], [null, null], name);
    assert(reason.test(summary.stampProblem ?? ""), `${name}: ${summary.stampProblem}`);
  }
  // An honest run keeps its figures.
  const honest = tallyOf(2);
  honest.reply(1, 1, { count: 1, held: 20 });
  honest.reply(2, 1, { count: 2, held: 20 });
  assertEquals(honest.summary().stampProblem, null);
  assertEquals(honest.summary().serverTime?.avg, 0.02);
});

Deno.test("PingTally leaves the split unknown without stamps", () => {
  const tally = tallyOf(2);
  tally.reply(1, 1);
  assertEquals(tally.summary().lossSplit, null);
  assertEquals(tally.summary().serverTime, null);
});

Deno.test("PingTally reports the schedule: mean interval and lateness", () => {
  const tally = new PingTally(3, 100);
  tally.sent(1, 0, 0);
  tally.sent(2, 10.5, 10);
  tally.sent(3, 20, 20);
  const { schedule } = tally.summary();
  assertEquals(schedule.meanInterval, 10);
  assertEquals(schedule.worstLateness, 0.5);
});

Deno.test("PingTally forgets nothing it still needs when seqs wrap at 2^32", () => {
  const tally = new PingTally(4, 100);
  for (const seq of [2 ** 32 - 2, 2 ** 32 - 1, 0, 1]) tally.sent(seq, 0, 0);
  for (const seq of [0, 1, 2 ** 32 - 1]) assertEquals(tally.reply(seq, 1).kind, "reply");
});

Deno.test("Timeline merges columns as the run grows and keeps losses apart", () => {
  const timeline = new Timeline(4);
  for (let index = 0; index < 8; index++) timeline.record(index, index === 5 ? null : index);
  assertEquals(timeline.span, 2);
  assertEquals(timeline.columns(), [
    { rtt: 0.5, replies: 2, losses: 0 },
    { rtt: 2.5, replies: 2, losses: 0 },
    { rtt: 4, replies: 1, losses: 1 },
    { rtt: 6.5, replies: 2, losses: 0 },
  ]);
  timeline.record(5, 5, true); // the lost one came late after all
  assertEquals(timeline.columns()[2], { rtt: 4.5, replies: 2, losses: 0 });
});

Deno.test("PingTally never takes a reply received before its request was sent for a round trip", () => {
  const tally = new PingTally(4, 1000);
  tally.sent(1, 10, 10);
  // Received at 9.5 (a kernel time), read after the send at 10.
  assertEquals(tally.reply(1, 9.5), { kind: "before-request" });
  assertEquals(tally.reply(1, 10.25).kind, "reply");
  const summary = tally.summary();
  assertEquals([summary.received, summary.duplicates, summary.rtt.min], [1, 0, 0.25]);
});
