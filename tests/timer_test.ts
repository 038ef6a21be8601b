import { assert, assertEquals } from "./assert.ts";
import { alarmAt, dueBy } from "../lib/shared/timer.ts";

/** Runs `body` with every `setTimeout` delay it asks for recorded. */
async function recordingTimers(body: () => Promise<void>): Promise<number[]> {
  const realSetTimeout = globalThis.setTimeout;
  const delays: number[] = [];
  globalThis.setTimeout = ((callback: () => void, delay?: number) => {
    delays.push(delay ?? 0);
    return realSetTimeout(callback, delay);
  }) as typeof setTimeout;
  try {
    await body();
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
  return delays;
}

/** Waits for alarms `spacing` ms apart, `count` of them, each deadline a
 * fraction of a millisecond off the whole. */
async function ringInTurn(count: number, spacing: number): Promise<void> {
  const start = performance.now() + 0.37;
  for (let n = 1; n <= count; n++) {
    const deadline = start + n * spacing;
    await alarmAt(deadline).rung;
    assert(dueBy(deadline), `alarm ${n} rang before its deadline counts as come`);
  }
}

Deno.test("alarmAt() asks the runtime for whole milliseconds, the only part it keeps", async () => {
  const delays = await recordingTimers(() => ringInTurn(5, 3));
  assert(delays.length >= 5, `${delays.length} timers for 5 alarms`);
  assertEquals(delays.filter((delay) => !Number.isInteger(delay)), []);
});

Deno.test("alarmAt() rings a run of deadlines 10 ms apart with one timer each, most times", async () => {
  // An early ring sets a second timer: a second wake-up of the process.
  const alarms = 30;
  const delays = await recordingTimers(() => ringInTurn(alarms, 10));
  assert(delays.length <= alarms * 1.2, `${delays.length} timers for ${alarms} alarms`);
});
