import { assert, assertEquals, assertMatch, assertRejects } from "./assert.ts";
import { serve } from "../server.ts";
import { createRandom } from "../lib/server/verdict.ts";
import { MAX_PREFIX_BYTES, MAX_REORDER_HOLD_MS } from "../settings.ts";
import { serverSummary } from "../lib/server/serve_options.ts";
import {
  collect,
  exchange,
  hasControlCharacter,
  ofType,
  portOf,
  startServerProcess,
  summaryOf,
  udpSocket,
  WAIT_MS,
  waitUntil,
} from "./helpers.ts";
import { ping } from "../client.ts";
import { encodeRequest, findRecord, formatRecord, readStamp, readStampAt } from "../protocol.ts";
import { Receiver } from "../lib/shared/socket.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("serve() echoes byte for byte, binary and empty datagrams included", async () => {
  await using server = await serve({ port: 0 });
  const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
  assertEquals(await exchange(server.addr.port, binary), binary);
  assertEquals(await exchange(server.addr.port, new Uint8Array()), new Uint8Array());
  assertEquals(server.stats.received, 2);
  assertEquals(server.stats.replied, 2);
  assertEquals(server.stats.clients, 2);
});

Deno.test("serve() in upper mode uppercases ASCII letters only", async () => {
  await using server = await serve({ port: 0, mode: "upper" });
  const reply = await exchange(server.addr.port, "ping 1 héllo\n");
  assertEquals(decoder.decode(reply), "PING 1 HéLLO\n");
});

Deno.test("serve() in prefix mode puts the prefix before the request", async () => {
  await using server = await serve({ port: 0, prefix: "OK..." });
  assertEquals(decoder.decode(await exchange(server.addr.port, "PING 1")), "OK...PING 1");
});

Deno.test("serve() in silent mode logs but never replies", async () => {
  const lines: string[] = [];
  await using server = await serve({ port: 0, mode: "silent", log: (line) => lines.push(line) });
  assertEquals(await exchange(server.addr.port, "anyone?", { waitMs: 200 }), undefined);
  assertEquals(server.stats.received, 1);
  assertEquals(server.stats.ignored, 1);
  assertEquals(server.stats.replied, 0);
  assertMatch(
    lines[0] ?? "",
    /^\d{4}-\d\d-\d\dT\S+(Z|[+-]\d\d:\d\d) 127\.0\.0\.1:\d+ 7 bytes "anyone\?" not answered/,
  );
});

Deno.test("serve() listens on IPv6 loopback", async () => {
  await using server = await serve({ host: "::1", port: 0 });
  assertEquals(server.addr.hostname, "::1");
  const reply = await exchange(server.addr.port, "six", { hostname: "::1" });
  assertEquals(decoder.decode(reply), "six");
});

Deno.test("serve() escapes control characters and terminal escapes in its log", async () => {
  const lines: string[] = [];
  await using server = await serve({ port: 0, log: (line) => lines.push(line) });
  await exchange(server.addr.port, '\x1b[2J\x1b]52;c;aGk=\x07\u0000\n"\\\xff');
  assertEquals(lines.length, 1);
  assert(!hasControlCharacter(lines[0]!), lines[0]);
  assertMatch(lines[0]!, /"\\x1b\[2J\\x1b\]52;c;aGk=\\x07\\x00\\n\\"\\\\ÿ"/);
});

Deno.test("serve() keeps serving after a send fails", async () => {
  const lines: string[] = [];
  await using server = await serve({
    port: 0,
    prefix: "X".repeat(MAX_PREFIX_BYTES),
    log: (l) => lines.push(l),
  });
  // Prefix + request is over the IPv4 maximum: the reply cannot be sent.
  {
    using sender = udpSocket();
    await sender.send(new Uint8Array(65507), {
      transport: "udp",
      hostname: "127.0.0.1",
      port: server.addr.port,
    });
  }
  const reply = await exchange(server.addr.port, "still there?");
  assertEquals(decoder.decode(reply), "X".repeat(MAX_PREFIX_BYTES) + "still there?");
  assertEquals(server.stats.failed, 1);
  assert(lines.some((line) => /send failed: Message too long/.test(line)), lines.join("\n"));
});

Deno.test("serve() refuses a port in use and bad options with one clear message", async () => {
  using taken = udpSocket();
  await assertRejects(() => serve({ port: portOf(taken) }), Deno.errors.AddrInUse);
  await assertRejects(() => serve({ port: 0, loss: 1.5 }), RangeError);
  await assertRejects(() => serve({ port: 70000 }), RangeError);
  await assertRejects(() => serve({ port: 0, prefix: "x".repeat(65) }), RangeError);
});

Deno.test("serve() stamps a request that asks, with its count, receive time and hold", async () => {
  await using server = await serve({ port: 0, mode: "upper" });
  for (const seq of [1, 2]) {
    const request = encodeRequest({ seq, sent: 1, token: "0000BEEF", size: 80, stamp: true });
    const reply = (await exchange(server.addr.port, request))!;
    assertEquals(reply.length, 80);
    const stamp = readStampAt(reply, findRecord(reply)!.paddingOffset);
    assert(stamp.kind === "stamped");
    assertEquals(stamp.stamp.count, seq);
    assert(Math.abs(stamp.stamp.received! - Date.now()) < 60_000);
    assert(stamp.stamp.held! >= 0);
  }
});

Deno.test("serve() logs what it did to each datagram", async () => {
  const lines: string[] = [];
  {
    await using server = await serve({
      port: 0,
      delay: 1,
      duplicate: 1,
      log: (line) => lines.push(line),
    });
    await exchange(server.addr.port, "x");
    assertMatch(lines[0]!, /"x" delayed 1\.0 ms, duplicated$/);
  }
  {
    await using dropper = await serve({
      port: 0,
      loss: 1,
      reorder: 1,
      log: (line) => lines.push(line),
    });
    assertEquals(await exchange(dropper.addr.port, "y", { waitMs: 100 }), undefined);
    assertMatch(lines[1]!, /"y" dropped$/);
  }
});

Deno.test("serve() --rate drops a flooding address's excess and still serves another address", async () => {
  await using server = await serve({ port: 0, rate: 100 });
  // Any 127.0.0.0/8 address is loopback: the flood comes from 127.0.0.2,
  // the ping from 127.0.0.1.
  using flooder = udpSocket("127.0.0.2");
  const to = { transport: "udp" as const, hostname: "127.0.0.1", port: server.addr.port };
  // Never more than 64 small datagrams ahead of the server, well within
  // its socket buffer: the kernel drops none, so all 500 are to be counted.
  for (let i = 0; i < 500; i++) {
    await waitUntil(() => i - server.stats.received < 64, "the server to keep up with the flood");
    // Requests with rising seqs, as a pinger sends: back to back, any other
    // bytes are answered no faster than a loop would be (loop_guard.ts).
    await flooder.send(encoder.encode(`PING ${i + 1} 0 0000F100 flood`), to);
  }
  await waitUntil(
    () => server.stats.replied + server.stats.limited >= 500,
    () => `the server to answer or rate-limit all 500: ${JSON.stringify(server.stats)}`,
  );
  const flood = { ...server.stats };
  assert(flood.received > 150, JSON.stringify(flood));
  // A second's burst (100) and a little refill got through; the rest not.
  assertEquals(flood.replied + flood.limited, flood.received);
  assert(flood.replied >= 100 && flood.replied <= 150, JSON.stringify(flood));
  const summary = summaryOf(
    await collect(ping({ port: server.addr.port, count: 5, interval: 0.01 })),
  );
  assertEquals(summary.received, 5);
  assertEquals(server.stats.limited, flood.limited);
});

Deno.test("serve() goes on, counting the failed send, when a client vanishes before its delayed reply", async () => {
  const lines: string[] = [];
  await using server = await serve({
    port: 0,
    delay: 30,
    prefix: "X",
    log: (line) => lines.push(line),
  });
  {
    // A send to a closed port does not fail on Linux; one over the IPv4
    // maximum does: this reply, prefix and 65,507 bytes, cannot be sent.
    using gone = udpSocket();
    await gone.send(new Uint8Array(65507), {
      transport: "udp",
      hostname: "127.0.0.1",
      port: server.addr.port,
    });
  } // closed before the 30 ms are up
  await waitUntil(
    () => server.stats.failed > 0,
    () => `the held reply's send to fail: ${JSON.stringify(server.stats)}`,
  );
  const summary = summaryOf(
    await collect(ping({ port: server.addr.port, count: 2, interval: 0.01 })),
  );
  assertEquals(summary.received, 2);
  assertEquals(server.stats.received, 3);
  assertEquals([server.stats.failed, server.stats.replied], [1, 2]);
  assert(lines.some((line) => /send failed: Message too long/.test(line)), lines.join("\n"));
});

Deno.test("serve().close() abandons held replies at once", async () => {
  await using server = await serve({ port: 0, delay: 60_000, reorder: 1 });
  using client = udpSocket();
  await client.send(encoder.encode("held"), {
    transport: "udp",
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  // Wait (boundedly) until the server has it, then close with it held.
  await waitUntil(() => server.stats.held > 0, "the server to hold the reply");
  assertEquals(server.stats.held, 1);
  await server.close(); // the test's timer sanitizer fails if a timer is left behind
});

/** What the log says became of each reply held for `--reorder`, by seq:
 * "reordered" (sent after a later reply) or "in order". */
function releasedAs(lines: string[]): Map<number, string> {
  const released = new Map<number, string>();
  for (const line of lines) {
    const match = /reply "PING (\d+) .* sent (after a later reply|in order)/.exec(line);
    if (match) released.set(Number(match[1]), match[2] === "in order" ? "in order" : "reordered");
  }
  return released;
}

Deno.test("serve() --reorder 1 loses nothing with the client's default timeout, and logs each reply's real fate", async () => {
  const lines: string[] = [];
  await using server = await serve({ port: 0, reorder: 1, log: (line) => lines.push(line) });
  const events = await collect(ping({ port: server.addr.port, count: 5, interval: 0.2 }));
  const summary = summaryOf(events);
  assertEquals([summary.received, summary.loss, summary.late], [5, 0, 0]);
  assert(summary.reordered > 0, JSON.stringify(summary));
  assertEquals(server.stats.reordered, summary.reordered);
  // Each reply the log calls reordered came after a later one, and no other.
  const replies = ofType(events, "reply");
  const seen = new Map(replies.map((r) => [r.seq, r.reordered ? "reordered" : "in order"]));
  assertEquals(releasedAs(lines), seen);
  const held = lines.filter((line) =>
    line.endsWith(`held for reorder (at most ${MAX_REORDER_HOLD_MS} ms)`)
  );
  assertEquals(held.length, 5);
});

Deno.test("serve() --reorder P reorders exactly the replies the seed draws, but the newest one", async () => {
  const [seed, reorder, count] = [11, 0.3, 40];
  const random = createRandom(seed);
  const drawn: number[] = [];
  for (let seq = 1; seq <= count; seq++) {
    random(), random(), random(); // the loss, jitter and duplicate draws
    if (random() < reorder) drawn.push(seq);
  }
  // A drawn reply waits for a later one to go out; the last request's has
  // none, so it goes out in order when its hold runs out.
  const predicted = drawn.filter((seq) => seq !== count);
  assert(predicted.length > count * 0.2 && predicted.length < count * 0.4, `${predicted}`);
  const lines: string[] = [];
  await using server = await serve({ port: 0, reorder, seed, log: (line) => lines.push(line) });
  const events = await collect(ping({ port: server.addr.port, count, interval: 0.01 }));
  const summary = summaryOf(events);
  assertEquals([summary.received, summary.loss], [count, 0]);
  const reordered = ofType(events, "reply").filter((r) => r.reordered).map((r) => r.seq);
  assertEquals(reordered.sort((a, b) => a - b), predicted);
  assertEquals([summary.reordered, server.stats.reordered], [predicted.length, predicted.length]);
  const logged = [...releasedAs(lines)].filter(([, fate]) => fate === "reordered");
  assertEquals(logged.map(([seq]) => seq).sort((a, b) => a - b), predicted);
});

Deno.test("serve() counts replies still held at close as abandoned, and its summary adds up", async () => {
  await using server = await serve({ port: 0, delay: 60_000 });
  using client = udpSocket();
  const to = { transport: "udp" as const, hostname: "127.0.0.1", port: server.addr.port };
  await client.send(encoder.encode("one"), to);
  await client.send(encoder.encode("two"), to);
  await waitUntil(() => server.stats.held === 2, "the server to hold both replies");
  await server.close();
  assertEquals([server.stats.held, server.stats.abandoned], [0, 2]);
  const line = serverSummary(server.addr, server.stats)[2]!;
  assertEquals(
    line,
    "2 received, 0 replied, 0 dropped, 0 rate-limited, 0 ignored, 0 failed sends, " +
      "2 abandoned at exit, 1 client",
  );
});

Deno.test("serve() refuses a jitter wider than the delay, which would move the mean delay", async () => {
  await assertRejects(
    () => serve({ port: 0, delay: 5, jitter: 6 }),
    /^RangeError: --jitter must be at most --delay \(5 ms\), got '6'$/,
  );
  await assertRejects(() => serve({ port: 0, jitter: 1 }), /--jitter must be at most --delay/);
  await using server = await serve({ port: 0, delay: 5, jitter: 5 });
  assert(server.addr.port > 0);
});

Deno.test("serve() keeps the refusals a stamp has no room for and tells them in the next that has", async () => {
  await using server = await serve({ port: 0, rate: 10 });
  using socket = udpSocket();
  using receiver = new Receiver(socket);
  const to = { transport: "udp" as const, hostname: "127.0.0.1", port: server.addr.port };
  const token = "0000BEEF";
  // 5 bytes of padding: room for "=21;", none for "=21,,,1;".
  const small = (seq: number) =>
    encodeRequest({
      seq,
      sent: 0,
      token,
      size: formatRecord(seq, 0, token).length + 6,
      stamp: true,
    });
  /** Sends `request` until the server answers it (each unanswered one is
   * refused), and returns the reply's padding as text. */
  const answered = async (request: Uint8Array, seq: number) => {
    const deadline = performance.now() + WAIT_MS;
    while (performance.now() < deadline) {
      await socket.send(request, to);
      for (;;) {
        const reply = await receiver.next(performance.now() + 20);
        if (reply === undefined) break;
        const record = findRecord(reply.data);
        if (record?.seq === seq) return decoder.decode(reply.data.subarray(record.paddingOffset));
      }
    }
    throw new Error(`no reply to seq ${seq} within ${WAIT_MS} ms`);
  };
  // A bucket of 10: 20 at once leave some refused.
  for (let seq = 1; seq <= 20; seq++) await socket.send(small(seq), to);
  await waitUntil(() => server.stats.received === 20, "the server to receive all 20");
  const refusedFirst = server.stats.limited;
  assert(refusedFirst > 0, JSON.stringify(server.stats));
  // The next answer has no room for them: the server keeps them...
  assertMatch(await answered(small(21), 21), /^=\d+;/);
  // ...and tells all of them, and those since, in a stamp that has room.
  const roomy = encodeRequest({ seq: 22, sent: 0, token, size: 100, stamp: true });
  const stamp = readStamp(await answered(roomy, 22));
  assert(stamp.kind === "stamped", JSON.stringify(stamp));
  assertEquals(stamp.stamp.refused, server.stats.limited);
});

Deno.test("server.ts answers while its log goes to a pipe nobody reads, and notes the log lines it dropped", async () => {
  await using server = await startServerProcess(["--rate", "0"]);
  // From here on nothing reads the server's output until stop(). Each
  // datagram makes a log line of about 140 bytes: 30,000 are far more than
  // the pipe (64 KiB), what this side reads ahead, and the server's queue.
  const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: server.port };
  using flood = udpSocket();
  using replies = new Receiver(flood);
  let answered = 0;
  for (let batch = 0; batch < 300; batch++) {
    for (let n = 0; n < 100; n++) {
      // A rising seq: back-to-back datagrams that are not a pinger's
      // requests are answered no faster than a loop would be.
      const request = `PING ${batch * 100 + n + 1} 0 0000F10D flood ${batch}.${n} `;
      await flood.send(encoder.encode(request.padEnd(48, "x")), to);
    }
    // Each batch answered before the next: none is lost to a full socket.
    const deadline = performance.now() + WAIT_MS;
    while (answered < (batch + 1) * 100 && await replies.next(deadline)) answered++;
    if (answered < (batch + 1) * 100) break; // the server has stopped answering
  }
  for (let probe = 1; probe <= 3; probe++) {
    const reply = await exchange(server.port, `probe ${probe}`, { waitMs: WAIT_MS });
    assert(reply !== undefined, `probe ${probe} was not answered within ${WAIT_MS} ms`);
    assertEquals(decoder.decode(reply), `probe ${probe}`);
  }
  assertEquals(answered, 30_000, "the flood was not all answered");
  const { code, stdout } = await server.stop();
  assertEquals(code, 0);
  // Every datagram's line was either written or counted in a note.
  const notes = [...stdout.matchAll(/ (\d+) log lines? dropped \(output not keeping up\)\n/g)];
  assert(notes.length > 0, "no note of dropped log lines");
  const dropped = notes.reduce((sum, note) => sum + Number(note[1]), 0);
  const written = stdout.split("\n").filter((line) => / bytes "/.test(line)).length;
  assertEquals(written + dropped, 30_003);
});
