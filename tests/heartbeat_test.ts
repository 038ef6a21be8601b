import { assert, assertEquals, assertMatch, assertThrows } from "./assert.ts";
import {
  describeNote,
  HeartbeatMonitor,
  type HeartbeatNote,
  heartbeatSummaryLines,
} from "../lib/server/heartbeat.ts";
import {
  HEARTBEAT_WINDOW,
  MAX_HEARTBEAT_JUMP,
  MAX_HEARTBEAT_SOURCES,
  MAX_HEARTBEAT_SUMMARY_SOURCES,
  MIN_HEARTBEAT_INTERVAL_MS,
} from "../settings.ts";
import { SEQ_MODULUS } from "../protocol.ts";
import { isoTime } from "../lib/shared/log.ts";

const localIso = (ms: number, offsetMinutes?: number) => isoTime(ms, false, offsetMinutes);

const SOURCE = "127.0.0.1:5555";
/** 2026-11-26T04:09:23.523+05:30 */
const T0 = Date.UTC(2026, 10, 25, 22, 39, 23, 523);

type Beat = Extract<HeartbeatNote, { kind: "beat" }>;

/** Feeds one heartbeat sent 0.25 ms before `received` and returns its notes. */
function beat(
  monitor: HeartbeatMonitor,
  seq: number,
  received = T0 + seq * 1000,
  source = SOURCE,
): HeartbeatNote[] {
  return monitor.beat({ source, seq, sent: received - 0.25, received });
}

/** The `beat` note of one heartbeat. */
function beatNote(monitor: HeartbeatMonitor, seq: number, received?: number, source?: string) {
  const note = beat(monitor, seq, received, source).at(-1);
  assert(note?.kind === "beat", `no beat note for seq ${seq}`);
  return note as Beat;
}

/** A monitor that has taken `seqs` from SOURCE, sent one a second from
 * T0 on: each arrives when it was sent, or 1 ms after the one before. */
function fed(seqs: number[], silenceSeconds = 3): HeartbeatMonitor {
  const monitor = new HeartbeatMonitor(silenceSeconds);
  let at = -Infinity;
  for (const seq of seqs) {
    at = Math.max(at + 1, T0 + (seq - seqs[0]!) * 1000);
    beat(monitor, seq, at);
  }
  return monitor;
}

const totals = (monitor: HeartbeatMonitor, source = SOURCE) => {
  const row = monitor.summary().sources.find((row) => row.source === source);
  assert(row !== undefined, `${source} is not in the summary`);
  return { received: row.received, lost: row.lost, outOfOrder: row.outOfOrder };
};

// ------------------------------------------------------------ the sequence

Deno.test("beat() counts nothing lost before a source's first heartbeat, whether seq 1 or 7", () => {
  for (const first of [1, 7]) {
    const monitor = new HeartbeatMonitor(3);
    const note = beatNote(monitor, first);
    assertEquals([note.lost, note.outOfOrder, note.duplicate, note.restarted], [
      0,
      false,
      false,
      false,
    ]);
    assertEquals(totals(monitor), { received: 1, lost: 0, outOfOrder: 0 });
  }
});

Deno.test("beat() counts the gaps as lost: seqs 1, 2, 5 lose 3 and 4", () => {
  const monitor = fed([1, 2]);
  assertEquals(beatNote(monitor, 5).lost, 2);
  assertEquals(totals(monitor), { received: 3, lost: 2, outOfOrder: 0 });
});

Deno.test("beat() takes a late seq off the lost and flags it out of order", () => {
  const monitor = fed([1, 2, 5]);
  const late = beatNote(monitor, 3);
  assertEquals([late.outOfOrder, late.lost, late.duplicate], [true, -1, false]);
  assertEquals(totals(monitor), { received: 4, lost: 1, outOfOrder: 1 });
});

Deno.test("beat() counts a duplicate neither as received nor against the lost", () => {
  const monitor = fed([1, 2, 5, 3]);
  for (const seq of [5, 3, 1]) {
    const note = beatNote(monitor, seq);
    assertEquals([note.duplicate, note.lost, note.outOfOrder], [true, 0, false], `seq ${seq}`);
  }
  assertEquals(totals(monitor), { received: 4, lost: 1, outOfOrder: 1 });
});

Deno.test("beat() counts a seq before the first one seen as out of order, lost unchanged", () => {
  const monitor = fed([7, 8]);
  const early = beatNote(monitor, 5);
  assertEquals([early.outOfOrder, early.lost], [true, 0]);
  assertEquals(beatNote(monitor, 5).duplicate, true);
  assertEquals(totals(monitor), { received: 3, lost: 0, outOfOrder: 1 });
});

Deno.test("beat() remembers the last HEARTBEAT_WINDOW seqs: an older one is too old to count", () => {
  const newest = HEARTBEAT_WINDOW + 1;
  const monitor = fed([1, newest]); // 2 ... newest - 1 lost
  assertEquals(totals(monitor).lost, newest - 2);
  // Seq 2 is HEARTBEAT_WINDOW - 1 behind: still in the window.
  assertEquals(beatNote(monitor, 2).lost, -1);
  assertEquals(beatNote(monitor, 2).duplicate, true);
  // Seq 1 is HEARTBEAT_WINDOW behind: forgotten, so it cannot be told from
  // a replay; it is counted nowhere, however often it comes.
  for (let replay = 0; replay < 3; replay++) {
    const old = beatNote(monitor, 1);
    assertEquals([old.tooOld, old.outOfOrder, old.duplicate, old.lost], [true, true, false, 0]);
  }
  assertEquals(totals(monitor), { received: 3, lost: newest - 3, outOfOrder: 1 });
  assertEquals(monitor.summary().sources[0]!.tooOld, 3);
});

Deno.test("beat() forgets what a seq's window slot held the last time round", () => {
  // Seq 5 and seq 5 + HEARTBEAT_WINDOW share a slot in the bitmap.
  const shared = 5 + HEARTBEAT_WINDOW;
  const stepping = fed([1, 5, shared - 1]); // still in the window: slots cleared one by one
  beat(stepping, shared + 1);
  const late = beatNote(stepping, shared);
  assertEquals([late.duplicate, late.outOfOrder, late.lost], [false, true, -1]);
  const jumping = fed([1, 5, shared + 1]); // a window ahead: all slots cleared at once
  const lateAgain = beatNote(jumping, shared);
  assertEquals([lateAgain.duplicate, lateAgain.outOfOrder, lateAgain.lost], [false, true, -1]);
});

Deno.test("beat() reads the wrap at 2^32 as forward progress", () => {
  const top = SEQ_MODULUS - 1;
  const monitor = fed([top - 1, top]);
  const wrapped = beatNote(monitor, 0);
  assertEquals([wrapped.lost, wrapped.outOfOrder, wrapped.restarted], [0, false, false]);
  assertEquals(beatNote(monitor, 2).lost, 1); // 1 missing
  assertEquals(beatNote(monitor, 1).lost, -1); // late across the wrap
  assertEquals(beatNote(monitor, top).duplicate, true);
  assertEquals(totals(monitor), { received: 5, lost: 0, outOfOrder: 1 });
});

Deno.test("beat() restarts the sequence after a jump beyond MAX_HEARTBEAT_JUMP either way", () => {
  const monitor = fed([1]);
  assertEquals(beatNote(monitor, 1 + MAX_HEARTBEAT_JUMP).lost, MAX_HEARTBEAT_JUMP - 1);
  const forged = beatNote(monitor, 2 + 2 * MAX_HEARTBEAT_JUMP + 1);
  assertEquals([forged.restarted, forged.lost, forged.outOfOrder], [true, 0, false]);
  const back = beatNote(monitor, 3);
  assertEquals([back.restarted, back.lost, back.outOfOrder], [true, 0, false]);
  // A late seq from before the restart is not taken off the lost.
  assertEquals(beatNote(monitor, 2).lost, 0);
  assertEquals(totals(monitor).lost, MAX_HEARTBEAT_JUMP - 1);
});

Deno.test("beat() throws a RangeError for a seq outside 0 to 2^32 - 1 or a time that is not finite", () => {
  const monitor = new HeartbeatMonitor(3);
  for (const seq of [-1, SEQ_MODULUS, 1.5, NaN]) {
    assertThrows(() => beat(monitor, seq, T0), /seq must be a whole number from 0 to 2\^32 - 1/);
  }
  assertThrows(() => monitor.beat({ source: SOURCE, seq: 1, sent: NaN, received: T0 }), RangeError);
  const late = { source: SOURCE, seq: 1, sent: T0, received: Infinity };
  assertThrows(() => monitor.beat(late), /received must be a finite time/);
  assertEquals(monitor.summary().sources, []);
});

Deno.test("new HeartbeatMonitor() throws a RangeError for a bad silence or capacity", () => {
  for (const silence of [0, -1, NaN, Infinity]) {
    assertThrows(() => new HeartbeatMonitor(silence), /silenceSeconds must be a number above 0/);
  }
  for (const capacity of [0, 1.5, -3]) {
    assertThrows(() => new HeartbeatMonitor(3, capacity), /capacity must be a whole number from 1/);
  }
});

// ------------------------------------------------------------ silence

Deno.test("check() declares a silent source stopped once per silence", () => {
  const monitor = fed([1]);
  assertEquals(monitor.check(T0 + 2999), []);
  assertEquals(monitor.check(T0 + 3500), [{ kind: "stopped", source: SOURCE, silentFor: 3.5 }]);
  assertEquals(monitor.check(T0 + 10_000), []);
});

Deno.test("beat() reports a stopped source resumed, which can then stop again", () => {
  const monitor = fed([1]);
  monitor.check(T0 + 3000);
  const notes = beat(monitor, 2, T0 + 7200);
  assertEquals(notes.map((note) => note.kind), ["resumed", "beat"]);
  assertEquals(notes[0], { kind: "resumed", source: SOURCE, after: 7.2 });
  assertEquals(beat(monitor, 3, T0 + 8200).map((note) => note.kind), ["beat"]);
  assertEquals(monitor.check(T0 + 11_200).map((note) => note.kind), ["stopped"]);
  assertEquals(beat(monitor, 4, T0 + 12_000).map((note) => note.kind), ["resumed", "beat"]);
});

Deno.test("check() stops only the silent sources, and nextCheck() says when the next is due", () => {
  const monitor = new HeartbeatMonitor(3);
  assertEquals(monitor.nextCheck(), Infinity);
  beat(monitor, 1, T0, "a:1");
  beat(monitor, 1, T0 + 1000, "b:1");
  beat(monitor, 2, T0 + 1500, "a:1"); // a is now heard after b
  assertEquals(monitor.nextCheck(), T0 + 4000);
  assertEquals(monitor.check(T0 + 4000).map((note) => note.source), ["b:1"]);
  assertEquals(monitor.nextCheck(), T0 + 4500);
  assertEquals(monitor.check(T0 + 4500).map((note) => note.source), ["a:1"]);
  assertEquals(monitor.nextCheck(), Infinity);
});

Deno.test("check(nextCheck()) fires even when the sum rounds, and not a µs before", () => {
  // (received + 300.00000000000006) - received is 300: below the silence.
  const monitor = new HeartbeatMonitor(0.1 + 0.2);
  beat(monitor, 1, 1764064800123.456);
  const due = monitor.nextCheck();
  assertEquals(monitor.check(due - 0.001), []);
  assertEquals(monitor.check(due).length, 1);
});

// ------------------------------------------------------------ memory

Deno.test("beat() makes room by forgetting a one-shot source, never one heard again", () => {
  const monitor = new HeartbeatMonitor(3, 2);
  beat(monitor, 1, T0, "a:1");
  beat(monitor, 1, T0 + 1, "b:1");
  beat(monitor, 2, T0 + 2, "a:1"); // a is heard again: no longer a one-shot source
  beat(monitor, 1, T0 + 3, "c:1");
  assertEquals(monitor.summary().sources.map((row) => row.source), ["a:1", "c:1"]);
  // Forgotten, b starts afresh: its first heartbeat again, nothing lost.
  assertEquals(beatNote(monitor, 9, T0 + 4, "b:1").lost, 0);
  // a was heard less recently than c, but c had sent one heartbeat only.
  assertEquals(monitor.summary().sources.map((row) => row.source), ["a:1", "b:1"]);
  assertEquals(monitor.summary().forgotten, 2);
});

Deno.test("beat() forgets a stopped source before a live one", () => {
  const monitor = new HeartbeatMonitor(3, 2);
  beat(monitor, 1, T0, "a:1");
  beat(monitor, 2, T0 + 1000, "a:1");
  monitor.check(T0 + 4000);
  beat(monitor, 1, T0 + 4100, "b:1");
  beat(monitor, 2, T0 + 4200, "b:1");
  beat(monitor, 1, T0 + 4300, "c:1");
  assertEquals(monitor.summary().sources.map((row) => row.source), ["b:1", "c:1"]);
  assertEquals(monitor.nextCheck(), T0 + 7200);
});

Deno.test("beat() keeps a silent source until check() has reported it, and leaves a newcomer out", () => {
  const monitor = new HeartbeatMonitor(3, 2);
  for (const source of ["a:1", "b:1"]) {
    beat(monitor, 1, T0, source);
    beat(monitor, 2, T0 + 1000, source);
  }
  // Both are past their silence, but not yet reported: c is not remembered.
  assertEquals(beatNote(monitor, 1, T0 + 5000, "c:1").lost, 0);
  assertEquals(monitor.summary().sources.map((row) => row.source), ["a:1", "b:1"]);
  const stopped = monitor.check(T0 + 5000);
  assertEquals(stopped.map((note) => [note.kind, note.source]), [
    ["stopped", "a:1"],
    ["stopped", "b:1"],
  ]);
  beat(monitor, 1, T0 + 5100, "c:1");
  assertEquals(monitor.summary().sources.map((row) => row.source), ["b:1", "c:1"]);
  assertEquals(monitor.summary().forgotten, 2);
});

Deno.test("HeartbeatMonitor remembers MAX_HEARTBEAT_SOURCES sources by default", () => {
  const monitor = new HeartbeatMonitor(3);
  for (let port = 0; port <= MAX_HEARTBEAT_SOURCES; port++) {
    beat(monitor, 1, T0, `10.0.0.1:${port}`);
  }
  const sources = monitor.summary().sources.map((row) => row.source);
  assertEquals(sources.length, MAX_HEARTBEAT_SOURCES);
  assertEquals(sources[0], "10.0.0.1:1");
});

Deno.test("a flood of 360,000 one-shot sources in 45 s does not hide a real source's stop, and the summary stays short", () => {
  const monitor = new HeartbeatMonitor(3);
  const real = "127.0.0.1:5555";
  const realNotes: HeartbeatNote[] = [];
  const keep = (notes: HeartbeatNote[]) =>
    realNotes.push(...notes.filter((note) => note.source === real));
  const floodEveryMs = 45_000 / 360_000;
  let seq = 0;
  let nextCheck = T0;
  for (let forged = 0; forged < 360_000; forged++) {
    const at = T0 + forged * floodEveryMs;
    // The real source beats every 500 ms for its first 10 s, then stops.
    if (at - T0 < 10_000 && at >= T0 + seq * 500) keep(beat(monitor, ++seq, at, real));
    const source = `10.${forged >> 16}.${(forged >> 8) & 255}.${forged & 255}:4000`;
    monitor.beat({ source, seq: 1, sent: at, received: at });
    if (at >= nextCheck) { // the server checks every 250 ms
      keep(monitor.check(at));
      nextCheck += 250;
    }
  }
  const stops = realNotes.filter((note) => note.kind === "stopped");
  assertEquals(stops.length, 1, "the real source's stop was never reported");
  const lines = heartbeatSummaryLines(monitor.summary(), true);
  assert(
    lines.length <= MAX_HEARTBEAT_SUMMARY_SOURCES + 2,
    `${lines.length} summary lines`,
  );
  assertMatch(lines.find((line) => line.includes(real)) ?? "", / 20 received, 0 lost, /);
  assertMatch(lines.at(-1)!, /^heartbeats from \d+ more sources forgotten \(10000 are/);
});

// ------------------------------------------------------------ forged numbers

Deno.test("beat() counts no more lost than fit in the time since the last heartbeat, at the source's interval", () => {
  // A source heard every second: 3 s of silence hold 2 lost heartbeats.
  const monitor = fed([1, 2, 3]);
  assertEquals(beatNote(monitor, 6, T0 + 5000).lost, 2);
  // A jump 10 ms later is forged (or replayed): nothing fits, nothing is lost.
  const jump = beatNote(monitor, 6 + 999_999, T0 + 5010);
  assertEquals([jump.lost, jump.skipped, jump.restarted], [0, 999_998, false]);
  assertEquals(totals(monitor).lost, 2);
});

Deno.test("1,000 forged jumps just under MAX_HEARTBEAT_JUMP add no more lost than their time allows", () => {
  const monitor = new HeartbeatMonitor(3);
  const step = MAX_HEARTBEAT_JUMP - 1;
  for (let n = 0; n < 1000; n++) beat(monitor, (n * step) % SEQ_MODULUS, T0 + n * 2);
  const elapsed = 999 * 2;
  const { lost } = totals(monitor);
  assert(lost <= elapsed / MIN_HEARTBEAT_INTERVAL_MS, `${lost} lost in ${elapsed} ms`);
});

Deno.test("beat() takes off the lost only a late seq that was counted lost, never below 0", () => {
  const monitor = fed([1, 2, 3]);
  beatNote(monitor, 3 + 500, T0 + 4000); // 1 s: 1 counted lost, the rest skipped
  let change = 0;
  for (let seq = 4; seq < 503; seq++) change += beatNote(monitor, seq, T0 + 4001).lost;
  assertEquals(change, -1);
  assertEquals(totals(monitor).lost, 0);
});

Deno.test("a replay further back than HEARTBEAT_WINDOW is not counted again: 11 distinct seqs, 11 received", () => {
  const seqs = [...Array.from({ length: 10 }, (_, index) => index + 1), 20 + HEARTBEAT_WINDOW];
  const monitor = fed(seqs);
  for (let replay = 0; replay < 1000; replay++) beat(monitor, 1 + (replay % 10), T0 + 2_000_000);
  assertEquals(totals(monitor).received, 11);
});

// ------------------------------------------------------------ wording

Deno.test("describeNote() gives the one-way delay in ms with 3 decimals, labelled with its clocks", () => {
  const monitor = fed([1, 2]);
  assertEquals(
    describeNote(beatNote(monitor, 4, T0 + 3000)),
    "127.0.0.1:5555 heartbeat seq=4 one-way 0.250 ms (receiver − sender clock), 1 lost before it",
  );
  const behind = monitor.beat({ source: "[::1]:5555", seq: 1, sent: T0 + 0.5, received: T0 });
  assertEquals(
    describeNote(behind[0]!),
    "[::1]:5555 heartbeat seq=1 one-way -0.500 ms (receiver − sender clock)",
  );
});

Deno.test("describeNote() says out of order, duplicate and restarted", () => {
  const monitor = fed([1, 2, 5]);
  const line = (seq: number) => describeNote(beatNote(monitor, seq, T0 + 3000));
  assertEquals(
    line(3),
    `${SOURCE} heartbeat seq=3 one-way 0.250 ms (receiver − sender clock), ` +
      "out of order, no longer counted lost",
  );
  assertEquals(
    line(3),
    `${SOURCE} heartbeat seq=3 one-way 0.250 ms (receiver − sender clock), duplicate`,
  );
  const old = 5 + HEARTBEAT_WINDOW;
  beat(monitor, old, T0 + 3000);
  const tooLate = line(5);
  assert(
    tooLate.endsWith("clock), out of order, too old to tell from a replay: not counted"),
    tooLate,
  );
  const restarted = line(old + MAX_HEARTBEAT_JUMP + 1);
  assert(restarted.endsWith("clock), sequence restarted"), restarted);
});

Deno.test("describeNote() words a stop and a resumption with the source and the seconds", () => {
  const stopped: HeartbeatNote = { kind: "stopped", source: SOURCE, silentFor: 3.0004 };
  assertEquals(describeNote(stopped), "127.0.0.1:5555 silent for 3 s: presumed stopped");
  const resumed: HeartbeatNote = { kind: "resumed", source: "[::1]:5555", after: 7.2 };
  assertEquals(describeNote(resumed), "[::1]:5555 resumed after 7.2 s");
  // One decimal of a second, three below one second.
  assertEquals(describeNote({ ...resumed, after: 3.04 }), "[::1]:5555 resumed after 3 s");
  assertEquals(describeNote({ ...resumed, after: 0.125 }), "[::1]:5555 resumed after 0.125 s");
});

Deno.test("heartbeatSummaryLines() lists received, lost, out of order and last seen per source", () => {
  const monitor = fed([1, 2, 5, 3]);
  beat(monitor, 1, T0 + 5000, "[::1]:6000");
  assertEquals(heartbeatSummaryLines(monitor.summary()), [
    `heartbeats from ${SOURCE}: 4 received, 1 lost, 1 out of order, last seen ${
      localIso(T0 + 4001)
    }`,
    `heartbeats from [::1]:6000: 1 received, 0 lost, last seen ${localIso(T0 + 5000)}`,
  ]);
  assertEquals(heartbeatSummaryLines({ sources: [], forgotten: 0, capacity: 1 }), []);
});
