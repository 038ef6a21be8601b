/**
 * Schedule accuracy: 1,000 pings at 10 ms to a udping server on loopback;
 * prints the achieved mean interval and the send lateness. A benchmark,
 * not a test: it asserts nothing, it measures.
 *
 * ```sh
 * deno task bench:schedule
 * ```
 *
 * @module
 */

import { serve } from "../server.ts";
import { ping, type PingSummary } from "../client.ts";

const COUNT = 1000;
const INTERVAL_S = 0.01;

/** Runs the schedule benchmark once and returns the run's summary. */
export async function measureSchedule(count = COUNT, interval = INTERVAL_S): Promise<PingSummary> {
  const server = await serve({ port: 0 });
  try {
    let summary: PingSummary | undefined;
    for await (const event of ping({ port: server.addr.port, count, interval })) {
      if (event.type === "summary") summary = event.summary;
    }
    return summary!;
  } finally {
    await server.close();
  }
}

if (import.meta.main) {
  const { schedule, transmitted } = await measureSchedule();
  const requested = INTERVAL_S * 1000;
  const drift = ((schedule.meanInterval - requested) / requested) * 100;
  console.log(`schedule: ${transmitted} pings at ${requested} ms`);
  console.log(
    `  achieved mean interval  ${schedule.meanInterval.toFixed(4)} ms (${drift >= 0 ? "+" : ""}${
      drift.toFixed(4)
    }%)`,
  );
  console.log(`  p99 send lateness       ${schedule.p99Lateness.toFixed(3)} ms`);
  console.log(`  worst send lateness     ${schedule.worstLateness.toFixed(3)} ms`);
}
