import { assert, assertEquals } from "./assert.ts";
import { lossPercent, PERCENTILE_RELATIVE_ERROR, RttStats } from "../stats.ts";
import { createRandom } from "../server.ts";

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
  assertEquals([one.min, one.avg, one.max, one.mdev, one.ipdv], [7.25, 7.25, 7.25, 0, 0]);
});

Deno.test("RttStats has no figures before the first sample", () => {
  const summary = new RttStats().summary();
  assertEquals(summary.count, 0);
  assert(Number.isNaN(summary.avg) && Number.isNaN(summary.p99));
});

Deno.test("RttStats computes IPDV and the RFC 3550 jitter", () => {
  const summary = statsOf([1, 2, 4]).summary();
  close(summary.ipdv, 1.5); // (|2-1| + |4-2|) / 2
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
