import { assert, assertEquals, assertRejects } from "./assert.ts";
import { ping, pingAll, type PingEvent } from "../client.ts";
import { FLOOD_GAP_MS, MIN_INTERVAL_MS } from "../settings.ts";
import { serve } from "../server.ts";
import { createRandom } from "../lib/server/verdict.ts";
import { findRecord } from "../protocol.ts";
import {
  collect,
  customServer,
  ofType,
  startServerProcess,
  summaryOf,
  udpSocket,
  within,
} from "./helpers.ts";
import { summaryLines } from "../lib/client/report.ts";

const encoder = new TextEncoder();
const fast = { interval: 0.01, timeout: 1 };

Deno.test("ping() gets every reply from an echo server", async () => {
  await using server = await serve({ port: 0 });
  const events = await collect(ping({ port: server.addr.port, count: 5, ...fast }));
  const replies = ofType(events, "reply");
  assertEquals(replies.map((reply) => reply.seq), [1, 2, 3, 4, 5]);
  assert(replies.every((reply) => reply.rtt > 0 && reply.bytes === 64));
  const summary = summaryOf(events);
  assertEquals([summary.transmitted, summary.received, summary.loss], [5, 5, 0]);
  assertEquals(summary.rtt.count, 5);
  assert(summary.rtt.min <= summary.rtt.avg && summary.rtt.avg <= summary.rtt.max);
});

for (
  const [name, options] of [["upper", { mode: "upper" }], ["prefix", { prefix: "OK..." }]] as const
) {
  Deno.test(`ping() reads its record back from a ${name} server's replies`, async () => {
    await using server = await serve({ port: 0, ...options });
    const summary = summaryOf(
      await collect(ping({ port: server.addr.port, count: 3, ...fast, size: 100 })),
    );
    assertEquals([summary.received, summary.stray], [3, 0]);
  });
}

Deno.test("ping() reports every request to a silent server as timed out", async () => {
  await using server = await serve({ port: 0, mode: "silent" });
  const events = await collect(
    ping({ port: server.addr.port, count: 3, interval: 0.01, timeout: 0.1 }),
  );
  assertEquals(ofType(events, "timeout").map((event) => event.seq), [1, 2, 3]);
  const summary = summaryOf(events);
  assertEquals([summary.received, summary.loss], [0, 100]);
  assertEquals(summary.rtt.count, 0);
  assertEquals(server.stats.ignored, 3);
});

Deno.test("ping() against a seeded lossy server loses exactly the predicted requests", async () => {
  const seed = 7;
  const count = 30;
  await using server = await serve({ port: 0, loss: 0.3, seed });
  const random = createRandom(seed);
  const predicted: number[] = [];
  for (let seq = 1; seq <= count; seq++) {
    if (random() < 0.3) predicted.push(seq);
    random(), random(), random(); // the jitter, duplicate and reorder draws
  }
  assert(predicted.length > 0 && predicted.length < count);
  const events = await collect(
    ping({ port: server.addr.port, count, interval: 0.01, timeout: 0.3 }),
  );
  assertEquals(ofType(events, "timeout").map((event) => event.seq), predicted);
  assertEquals(server.stats.dropped, predicted.length);
  assertEquals(summaryOf(events).received, count - predicted.length);
});

Deno.test("ping() measures at least the server's --delay on every reply", async () => {
  await using server = await serve({ port: 0, delay: 40 });
  const events = await collect(
    ping({ port: server.addr.port, count: 4, interval: 0.01, timeout: 2 }),
  );
  const replies = ofType(events, "reply");
  assertEquals(replies.length, 4);
  for (const reply of replies) assert(reply.rtt >= 40, `rtt ${reply.rtt} below the delay`);
});

Deno.test("ping() keeps several requests in flight when the interval is below the timeout", async () => {
  await using server = await serve({ port: 0, delay: 100 });
  let receivedAtFirstReply: number | undefined;
  const events: PingEvent[] = [];
  const run = ping({ port: server.addr.port, count: 5, interval: 0.01, timeout: 2 });
  for await (const event of run) {
    if (event.type === "reply") receivedAtFirstReply ??= server.stats.received;
    events.push(event);
  }
  // All five requests were at the server before the first reply came back.
  assertEquals(receivedAtFirstReply, 5);
  assertEquals(summaryOf(events).received, 5);
  assertEquals(server.stats.received, 5);
});

Deno.test("ping() sets the timer it waits on before each send, none between a send and its reply", async () => {
  // Setting a timer wakes the runtime's event loop: between a send and its
  // reply, that is timed in the round trip.
  await using echo = customServer((socket, data, from) => socket.send(data, from).then(() => {}));
  const realSetTimeout = globalThis.setTimeout;
  let timers = 0;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    timers++;
    return realSetTimeout(...args);
  }) as typeof setTimeout;
  const between: number[] = [];
  try {
    let atSend = 0;
    for await (const event of ping({ port: echo.port, count: 5, interval: 0.2, timeout: 1 })) {
      if (event.type === "sent") atSend = timers;
      if (event.type === "reply") between.push(timers - atSend);
    }
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
  assertEquals(between, [0, 0, 0, 0, 0]);
});

Deno.test("ping() marks a second reply to the same request as a duplicate", async () => {
  await using twice = customServer(async (socket, data, from) => {
    await socket.send(data, from);
    await socket.send(data, from);
  });
  const events = await collect(ping({ port: twice.port, count: 3, ...fast }));
  assertEquals(ofType(events, "reply").length, 3);
  // The run lingers a moment after the last reply: the copy of seq 3,
  // sent right behind it, is seen too.
  assertEquals(ofType(events, "duplicate").map((event) => event.seq), [1, 2, 3]);
  const summary = summaryOf(events);
  assertEquals([summary.received, summary.duplicates, summary.loss], [3, 3, 0]);
});

Deno.test("ping() ignores replies from a foreign socket, with a wrong token, or garbled", async () => {
  using foreign = udpSocket();
  await using hostile = customServer(async (socket, data, from) => {
    const text = new TextDecoder().decode(data);
    await foreign.send(data, from); // right record, wrong source address
    await socket.send(encoder.encode(text.replace("0000BEEF", "0BADBEEF")), from);
    await socket.send(encoder.encode("\x00garbage\xff"), from);
    await socket.send(encoder.encode(text.replace(/^PING \d+/, "PING 999")), from);
    await socket.send(data, from);
  });
  const events = await collect(
    ping({ port: hostile.port, count: 3, ...fast, token: "0000BEEF" }),
  );
  const strays = ofType(events, "stray").map((event) => event.reason);
  const tally = (reason: string) => strays.filter((r) => r === reason).length;
  assertEquals(
    [tally("foreign-address"), tally("wrong-token"), tally("no-record"), tally("unknown-seq")],
    [3, 3, 3, 3],
  );
  const summary = summaryOf(events);
  assertEquals([summary.received, summary.duplicates, summary.stray], [3, 0, 12]);
});

Deno.test("ping() counts a reply that arrives after its timeout as late, not lost", async () => {
  await using server = await serve({ port: 0, delay: 200 });
  // seq 1 times out at 50 ms, its reply comes at 200 ms while seq 2
  // (sent at 300 ms) is not yet due; seq 2 times out and ends the run.
  const events = await collect(
    ping({ port: server.addr.port, count: 2, interval: 0.3, timeout: 0.05 }),
  );
  assertEquals(
    events.map((event) => event.type),
    ["sent", "timeout", "reply", "sent", "timeout", "summary"],
  );
  const late = ofType(events, "reply")[0]!;
  assertEquals([late.seq, late.late], [1, true]);
  const summary = summaryOf(events);
  assertEquals([summary.transmitted, summary.received, summary.late, summary.loss], [
    2,
    1,
    1,
    50,
  ]);
});

Deno.test("ping()'s counters match what a seeded server did over 1,000 pings", async () => {
  await using server = await serve({
    port: 0,
    loss: 0.05,
    duplicate: 0.05,
    reorder: 0.05,
    seed: 2026,
  });
  const summary = summaryOf(
    await collect(ping({ port: server.addr.port, count: 1000, interval: 0.002, timeout: 3 })),
  );
  const { stats } = server;
  assert(stats.dropped > 0 && stats.duplicated > 0 && stats.reordered > 0, JSON.stringify(stats));
  assertEquals(summary.transmitted, 1000);
  assertEquals(summary.received, 1000 - stats.dropped);
  assertEquals(summary.duplicates, stats.duplicated);
  assertEquals(summary.reordered, stats.reordered);
  assertEquals(summary.late, 0);
  // Every drop happened on the way in; drops after the last reply have
  // no stamp to say so.
  const split = summary.lossSplit!;
  assertEquals([split.upstream + split.unknown, split.downstream], [stats.dropped, 0]);
});

Deno.test("ping() tells upstream from downstream loss only when the server stamps", async () => {
  {
    await using stamping = await serve({ port: 0, loss: 0.5, seed: 3 });
    const events = await collect(
      ping({ port: stamping.addr.port, count: 20, interval: 0.005, timeout: 0.3 }),
    );
    const { lossSplit, serverTime } = summaryOf(events);
    assertEquals(lossSplit!.upstream + lossSplit!.unknown, stamping.stats.dropped);
    assert(serverTime !== null && serverTime.avg >= 0);
  }
  {
    await using plainEcho = customServer((socket, data, from) =>
      socket.send(data, from).then(() => {})
    );
    const events = await collect(ping({ port: plainEcho.port, count: 3, ...fast }));
    assertEquals([summaryOf(events).lossSplit, summaryOf(events).serverTime], [null, null]);
  }
});

Deno.test("ping() with flood sends the next request as soon as a reply is in", async () => {
  await using server = await serve({ port: 0 });
  const floods = 200;
  // Even at one send per gap the run takes 2 s: a run that stalls fails.
  const events = await within(
    10_000,
    `ping() flooding ${floods} requests`,
    (signal) => collect(ping({ port: server.addr.port, count: floods, flood: true, signal })),
  );
  const summary = summaryOf(events);
  assertEquals([summary.transmitted, summary.received], [floods, floods]);
  // A local echo answers well within FLOOD_GAP_MS, so sending on each reply
  // puts most sends far less than a gap after the previous one; the median
  // gap, so that a busy machine's occasional slow reply does not count.
  const sends = ofType(events, "sent").map((event) => event.time);
  const gaps = sends.slice(1).map((time, i) => time - sends[i]!).sort((a, b) => a - b);
  const median = gaps[gaps.length >> 1]!;
  assert(
    median < FLOOD_GAP_MS / 2,
    `median ${median.toFixed(2)} ms between floods, not far below FLOOD_GAP_MS ` +
      `(${FLOOD_GAP_MS} ms): the sends did not follow the replies`,
  );
  // Each send after the first follows a reply, or comes FLOOD_GAP_MS after
  // the previous send when the reply is slow: no earlier than a timer that
  // counts as on time may ring (lib/shared/timer.ts: up to 2 ms before, on a busy
  // machine whose timers fire late).
  const early = 2;
  let previous: PingEvent | undefined;
  let previousSend = -Infinity;
  for (const event of events) {
    if (event.type === "sent") {
      if (previous?.type === "sent") {
        const gap = event.time - previousSend;
        assert(gap >= FLOOD_GAP_MS - early, `seq ${event.seq} sent early, ${gap.toFixed(2)} ms`);
      }
      previousSend = event.time;
    }
    if (event.type === "sent" || event.type === "reply") previous = event;
  }
});

Deno.test("ping() keeps to its schedule: the achieved mean interval is the asked one", async () => {
  await using server = await serve({ port: 0 });
  const { schedule } = summaryOf(
    await collect(ping({ port: server.addr.port, count: 50, interval: 0.01 })),
  );
  // No cumulative drift: the mean interval of a fixed schedule is exact
  // up to the lateness of the first and last sends.
  assert(
    Math.abs(schedule.meanInterval - 10) * 49 <= schedule.worstLateness * 2 + 1e-9,
    JSON.stringify(schedule),
  );
});

Deno.test("ping() refuses an interval shorter than MIN_INTERVAL_MS, which it could not keep", async () => {
  await using server = await serve({ port: 0 });
  const shorter = MIN_INTERVAL_MS / 1000 / 2;
  await assertRejects(
    () => collect(ping({ port: server.addr.port, count: 1, interval: shorter })),
    new RegExp(`^RangeError: interval must be a number from ${MIN_INTERVAL_MS / 1000} to`),
  );
  assertEquals(server.stats.received, 0);
});

Deno.test("ping() at the shortest interval counts every reply a default server sent, none late", async () => {
  await using server = await serve({ port: 0 });
  const count = 2000;
  const events = await within(
    30_000,
    `ping() sending ${count} requests ${MIN_INTERVAL_MS} ms apart`,
    (signal) =>
      collect(
        ping({ port: server.addr.port, count, interval: MIN_INTERVAL_MS / 1000, signal }),
      ),
  );
  const summary = summaryOf(events);
  assertEquals(server.stats.replied, count, JSON.stringify(server.stats));
  assertEquals(
    [summary.transmitted, summary.received, summary.loss, summary.late],
    [count, count, 0, 0],
    summaryLines(summary).join("\n"),
  );
  assertEquals(ofType(events, "timeout"), []);
});

Deno.test("ping() reads the replies already in while it catches up after a stall, so none is dropped", async () => {
  // A subprocess server answers at once while this process stands still;
  // no rate limit, so that the catching up is not refused.
  await using server = await startServerProcess(["--quiet", "--rate", "0"]);
  const count = 1500;
  const stallMs = 600;
  const events: PingEvent[] = [];
  // The timeout outlasts the stall: a request sent behind schedule times
  // out from when it was due.
  const run = ping({ port: server.port, count, interval: 0.001, timeout: 5 });
  for await (const event of run) {
    events.push(event);
    // The event loop stands still, as under a debugger or SIGSTOP: some
    // 600 requests fall due meanwhile, more replies than the socket's
    // receive buffer holds when they are all sent before any is read.
    if (event.type === "reply" && event.seq === 300) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, stallMs);
    }
  }
  const summary = summaryOf(events);
  assertEquals(
    [summary.transmitted, summary.received, summary.loss],
    [count, count, 0],
    summaryLines(summary).join("\n"),
  );
});

Deno.test("ping() stops at the deadline with requests outstanding", async () => {
  await using server = await serve({ port: 0, mode: "silent" });
  // Without its deadline the run would go on sending for ever: bound it at
  // ten times the deadline, so that the test fails instead of hanging.
  const events = await within(
    3000,
    "ping() with a 0.3 s deadline",
    (signal) =>
      collect(
        ping({ port: server.addr.port, interval: 0.05, timeout: 10, deadline: 0.3, signal }),
      ),
  );
  const summary = summaryOf(events);
  assert(summary.transmitted >= 1, "nothing sent before the deadline");
  assertEquals(summary.received, 0);
  // None timed out (10 s) or was answered: each is still outstanding.
  assertEquals(
    summary.outstanding,
    summary.transmitted,
    `${summary.outstanding} of ${summary.transmitted} requests outstanding at the deadline`,
  );
});

Deno.test("ping() ends early with a summary when its signal aborts", async () => {
  await using server = await serve({ port: 0 });
  const controller = new AbortController();
  const events: PingEvent[] = [];
  for await (
    const event of ping({
      port: server.addr.port,
      count: 1000,
      interval: 0.01,
      signal: controller.signal,
    })
  ) {
    events.push(event);
    if (event.type === "reply" && event.seq === 3) controller.abort();
  }
  const summary = summaryOf(events);
  assert(summary.transmitted >= 3 && summary.transmitted < 1000);
});

Deno.test("ping() works over IPv6 loopback", async () => {
  await using server = await serve({ host: "::1", port: 0 });
  const events = await collect(ping({ host: "::1", port: server.addr.port, count: 2, ...fast }));
  assertEquals(ofType(events, "reply").map((reply) => reply.from), [
    `[::1]:${server.addr.port}`,
    `[::1]:${server.addr.port}`,
  ]);
  assertEquals(summaryOf(events).target, `[::1]:${server.addr.port}`);
});

Deno.test("ping() sends requests of the asked size, record first", async () => {
  const sizes: number[] = [];
  await using recorder = customServer(async (socket, data, from) => {
    sizes.push(data.length);
    assert(findRecord(data) !== null);
    await socket.send(data, from);
  });
  await collect(ping({ port: recorder.port, count: 2, ...fast, size: 1000 }));
  assertEquals(sizes, [1000, 1000]);
});

Deno.test("ping() rejects out-of-range options and unknown hosts", async () => {
  const bad = [
    { count: 0 },
    { count: 1.5 },
    { interval: 0 },
    { timeout: -1 },
    { size: 65508 },
    { port: 70000 },
    { port: 0 },
    { host: "nonexistent.invalid" },
    { host: "999.1.1.1" },
  ];
  for (const options of bad) {
    await assertRejects(() => collect(ping({ port: 9, ...options })), Error);
  }
});

Deno.test("pingAll() pings three servers at once and summarizes each, the silent one lost", async () => {
  await using echo = await serve({ port: 0 });
  await using upper = await serve({ port: 0, mode: "upper" });
  await using silent = await serve({ port: 0, mode: "silent" });
  const servers = [echo, upper, silent];
  const targets = servers.map((server) => ({ host: "127.0.0.1", port: server.addr.port }));
  const events = await collect(pingAll(targets, { count: 3, interval: 0.02, timeout: 0.2 }));
  const received = new Map<string, number>();
  for (const { target, event } of events) {
    if (event.type === "summary") received.set(target, event.summary.received);
  }
  const expected = targets.map((
    { port },
    i,
  ): [string, number] => [`127.0.0.1:${port}`, i < 2 ? 3 : 0]);
  assertEquals(received, new Map(expected));
  // The runs overlap: every target's first request went out before any run ended.
  const firstSummary = events.findIndex(({ event }) => event.type === "summary");
  const sentBefore = new Set(
    events.slice(0, firstSummary).filter(({ event }) => event.type === "sent").map(({ target }) =>
      target
    ),
  );
  assertEquals(sentBefore.size, 3);
});

Deno.test("ping() at the default size counts every refusal the server's rate limit told it as rate-limited, past seq 1,000 too", async () => {
  // 1,200 requests at 1,000 a second against 300 a second: the bucket
  // empties near seq 430, then seven in ten are refused. From seq 1,000
  // on, a 64-byte request's stamp has no room for the count, receive time,
  // hold and refusals together.
  await using server = await serve({ port: 0, rate: 300 });
  const events = await collect(
    ping({ port: server.addr.port, count: 1200, interval: 0.001, timeout: 0.2 }),
  );
  const summary = summaryOf(events);
  const answered = new Set(ofType(events, "reply").map((reply) => reply.seq));
  const lastAnswered = Math.max(...answered);
  let refusedBefore = 0;
  let refusedAfter = 0;
  for (let seq = 1; seq <= summary.transmitted; seq++) {
    if (!answered.has(seq)) seq < lastAnswered ? refusedBefore++ : refusedAfter++;
  }
  assert(
    refusedBefore > 0 && lastAnswered > 1000,
    `${refusedBefore} refused before ${lastAnswered}`,
  );
  // Nothing is lost on loopback: every loss is a refusal, and the stamps
  // tell every one before the last answered request (those after it, no
  // stamp can tell).
  assertEquals(refusedBefore + refusedAfter, server.stats.limited);
  assertEquals(summary.lossSplit, {
    upstream: 0,
    downstream: 0,
    unknown: refusedAfter,
    rateLimited: refusedBefore,
  });
});

Deno.test("ping() sends to a resolved address without looking the host up again, and names the target by its host", async () => {
  await using server = await serve({ port: 0 });
  const host = "name.invalid"; // never looked up: the address is given
  const events = await collect(
    ping({ host, address: "127.0.0.1", port: server.addr.port, count: 2, ...fast }),
  );
  const summary = summaryOf(events);
  assertEquals([summary.received, summary.target], [2, `${host}:${server.addr.port}`]);
});
