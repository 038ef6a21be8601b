import { assertEquals } from "./assert.ts";
import {
  colored,
  eventLine,
  floodMark,
  formatG,
  formatTime,
  headerLine,
  histogramLines,
  jsonDocument,
  PingRecords,
  sparkline,
  summaryLines,
} from "../lib/client/report.ts";
import type { PingSummary } from "../client.ts";
import { PingTally } from "../lib/client/tally.ts";

Deno.test("formatTime() uses ping's decimals: 3 below 1 ms, 2 below 10, 1 below 100", () => {
  assertEquals(formatTime(0.1124), "0.112");
  assertEquals(formatTime(5.414), "5.41");
  assertEquals(formatTime(12.34), "12.3");
  assertEquals(formatTime(123.4), "123");
  assertEquals(formatTime(1000.6), "1001");
});

Deno.test("formatG() prints like C's %g", () => {
  const cases: [number, string][] = [
    [0, "0"],
    [30, "30"],
    [100, "100"],
    [100 / 3, "33.3333"],
    [100 / 7, "14.2857"],
    [0.001, "0.001"],
    [0.00001, "1e-05"],
    [1234567, "1.23457e+06"],
    [99.99999, "100"],
  ];
  for (const [value, text] of cases) assertEquals(formatG(value), text, String(value));
});

/** A real summary: a tally fed `transmitted` sends and replies with
 * `rtts` for the first requests, the rest left to time out. */
function summary(
  transmitted: number,
  rtts: number[],
  extra: { duplicates?: number; errors?: number; unreachable?: number; stamps?: boolean } = {},
): PingSummary {
  const tally = new PingTally(transmitted, 1000);
  for (let seq = 1; seq <= transmitted; seq++) tally.sent(seq, 0, 0);
  rtts.forEach((rtt, i) => {
    tally.reply(i + 1, rtt, extra.stamps ? { count: i + 1, held: 12 } : undefined);
  });
  for (let i = 0; i < (extra.duplicates ?? 0); i++) tally.reply(1, 1);
  for (let seq = transmitted; seq > transmitted - (extra.errors ?? 0); seq--) tally.sendFailed(seq);
  for (let seq = 1; seq <= (extra.unreachable ?? 0); seq++) tally.sendFailed(seq, true);
  [...tally.expire(Infinity)];
  return {
    clock: "runtime",
    target: "127.0.0.1:12000",
    address: "127.0.0.1:12000",
    time: 9004.2,
    ...tally.summary(),
  };
}

Deno.test("summaryLines() prints ping's two lines, then percentiles, jitter and ipdv by name", () => {
  assertEquals(summaryLines(summary(10, [0.081, 0.123, 0.201, 0.1])), [
    "",
    "--- 127.0.0.1:12000 udp ping statistics ---",
    "10 packets transmitted, 4 received, 60% packet loss, time 9004ms",
    "rtt min/avg/max/mdev = 0.081/0.126/0.201/0.046 ms",
    // RFC 3550: J += (|D| - J) / 16 from 0, three times; IPDV: (42 + 78 + 101) µs / 3.
    "rtt p50/p90/p99 = 0.100/0.201/0.201 ms, jitter 0.013 ms, ipdv 0.074 ms",
    "lost upstream/downstream: unknown (the server does not stamp replies)",
  ]);
});

Deno.test("summaryLines() counts duplicates' round trips in min/avg/max/mdev, as iputils ping", () => {
  // The copy of seq 1 comes back 1 ms after its send.
  assertEquals(summaryLines(summary(10, [0.081, 0.123, 0.201], { duplicates: 1 })).slice(2, 5), [
    "10 packets transmitted, 3 received, +1 duplicates, 70% packet loss, time 9004ms",
    "rtt min/avg/max/mdev = 0.081/0.351/1.000/0.377 ms",
    "rtt p50/p90/p99 = 0.123/1.000/1.000 ms, jitter 0.007 ms, ipdv 0.060 ms",
  ]);
});

Deno.test("summaryLines() and jsonDocument() give every rtt figure the same name and value", () => {
  const of = summary(10, [0.081, 0.123, 0.201, 0.1], { duplicates: 1 });
  const options = { count: 10, interval: 1, timeout: 1, size: 64, deadline: null, flood: false };
  const json = JSON.parse(jsonDocument(of, options)).rtt;
  const figures = new Map<string, string>();
  for (const line of summaryLines(of).filter((line) => line.startsWith("rtt "))) {
    const [, names = "", values = "", rest = ""] = /^rtt (\S+) = (\S+) ms(.*)$/.exec(line)!;
    const valueList = values.split("/");
    names.split("/").forEach((name, i) => figures.set(name, valueList[i]!));
    for (const [, name = "", value = ""] of rest.matchAll(/, (\w+) ([\d.]+) ms/g)) {
      figures.set(name, value);
    }
  }
  assertEquals([...figures.keys()], [
    "min",
    "avg",
    "max",
    "mdev",
    "p50",
    "p90",
    "p99",
    "jitter",
    "ipdv",
  ]);
  for (const [name, value] of figures) assertEquals(json[name].toFixed(3), value, name);
});

Deno.test("summaryLines() leaves ipdv out when no two consecutive requests were answered", () => {
  const tally = new PingTally(3, 1000);
  for (let seq = 1; seq <= 3; seq++) tally.sent(seq, 0, 0);
  tally.reply(1, 0.1);
  tally.reply(3, 0.2);
  const lines = summaryLines({ ...summary(0, []), ...tally.summary() });
  assertEquals(lines[4], "rtt p50/p90/p99 = 0.100/0.200/0.200 ms, jitter 0.006 ms");
});

Deno.test("summaryLines() leaves out the rtt lines at 100% loss and prints %g loss", () => {
  assertEquals(summaryLines(summary(10, [])).slice(0, 3), [
    "",
    "--- 127.0.0.1:12000 udp ping statistics ---",
    "10 packets transmitted, 0 received, 100% packet loss, time 9004ms",
  ]);
  assertEquals(
    summaryLines(summary(3, [1, 2], { errors: 1 }))[2],
    "3 packets transmitted, 2 received, +1 errors, 33.3333% packet loss, time 9004ms",
  );
});

Deno.test("summaryLines() splits the loss and gives the server's time when replies are stamped", () => {
  // Requests 1 and 2 answered with stamps 1 and 2; 3 and 4 lost after them.
  const lines = summaryLines(summary(4, [0.2, 0.3], { stamps: true }));
  assertEquals(lines.slice(5), [
    "lost upstream 0, downstream 0, unknown 2 (after the last reply); server time avg 0.012 ms",
  ]);
});

Deno.test("summaryLines() adds a reorder/late/stray line only when one is non-zero", () => {
  assertEquals(summaryLines(summary(2, [0.2, 0.3])).length, 5);
  const tally = new PingTally(2, 1000);
  tally.sent(1, 0, 0);
  tally.sent(2, 0, 0);
  tally.reply(2, 1);
  tally.reply(1, 2);
  tally.stray("wrong-token");
  const lines = summaryLines({
    target: "t",
    address: "a",
    time: 1,
    clock: "runtime",
    ...tally.summary(),
  });
  assertEquals(lines.at(-1), "reordered 1, late 0, stray 1");
});

Deno.test("summaryLines() ends a run with no reply with what it says of the port", () => {
  const stateLine = (of: PingSummary) => summaryLines(of).at(-1);
  const silent = summary(3, []);
  assertEquals(
    stateLine(silent),
    "127.0.0.1:12000: no answer: the port may be closed or filtered (--allow-ffi tells them apart)",
  );
  assertEquals(
    stateLine({ ...silent, clock: "kernel" }),
    "127.0.0.1:12000: no answer (filtered or lost)",
  );
  assertEquals(
    stateLine({ ...summary(3, [], { unreachable: 3 }), clock: "kernel" }),
    "127.0.0.1:12000: closed (port unreachable)",
  );
  const strayByReason = { ...silent.strayByReason, "no-record": 2, "foreign-address": 5 };
  assertEquals(
    stateLine({ ...silent, stray: 7, strayByReason }),
    "127.0.0.1:12000: answering, but not with an echo (2 datagrams with no ping record; -v shows them)",
  );
  // A reply, or every send failed (the error lines said why): no port state line.
  assertEquals(summaryLines(summary(3, [1])).some((line) => line.includes("answer")), false);
  assertEquals(summaryLines(summary(2, [], { errors: 2 })).length, 3);
});

Deno.test("eventLine() prints ping's reply, DUP and timeout lines", () => {
  const from = "127.0.0.1:12000";
  assertEquals(
    headerLine("localhost", "127.0.0.1", 12000, 64),
    "PING localhost (127.0.0.1) port 12000 (udp): 64 data bytes",
  );
  assertEquals(
    eventLine({
      type: "reply",
      seq: 1,
      rtt: 0.1123,
      bytes: 64,
      from,
      late: false,
      reordered: false,
    }),
    "64 bytes from 127.0.0.1:12000: seq=1 time=0.112 ms",
  );
  assertEquals(
    eventLine({ type: "reply", seq: 1, rtt: 1200, bytes: 64, from, late: true, reordered: false }),
    "64 bytes from 127.0.0.1:12000: seq=1 time=1200 ms (late)",
  );
  assertEquals(
    eventLine({ type: "duplicate", seq: 3, rtt: 0.098, bytes: 64, from }),
    "64 bytes from 127.0.0.1:12000: seq=3 time=0.098 ms (DUP!)",
  );
  assertEquals(eventLine({ type: "timeout", seq: 2 }), "Request timeout for seq=2");
  assertEquals(eventLine({ type: "stray", reason: "no-record", bytes: 3, from }), undefined);
  // With -v, the event carries the text, and a stray datagram shows.
  assertEquals(
    eventLine({ type: "stray", reason: "no-record", bytes: 5, from, payload: "pong\\n" }),
    '5 bytes from 127.0.0.1:12000: stray (no ping record: not an echo)\n    "pong\\n"',
  );
  assertEquals(eventLine({ type: "sent", seq: 1, bytes: 64, time: 0 }), undefined);
});

Deno.test("eventLine() colours replies green, timeouts red and DUP yellow on request", () => {
  const from = "x";
  const reply = eventLine({
    type: "reply",
    seq: 1,
    rtt: 1,
    bytes: 1,
    from,
    late: false,
    reordered: false,
  }, colored);
  assertEquals(reply, "\x1b[32m1 bytes from x: seq=1 time=1.00 ms\x1b[39m");
  assertEquals(
    eventLine({ type: "timeout", seq: 2 }, colored),
    "\x1b[31mRequest timeout for seq=2\x1b[39m",
  );
  assertEquals(
    eventLine({ type: "duplicate", seq: 3, rtt: 1, bytes: 1, from }, colored),
    "\x1b[33m1 bytes from x: seq=3 time=1.00 ms (DUP!)\x1b[39m",
  );
});

Deno.test("sparkline() draws one block per column by RTT and a dot for a lost column", () => {
  const columns = [
    { rtt: 1, replies: 1, losses: 0 },
    { rtt: NaN, replies: 0, losses: 1 },
    { rtt: 8, replies: 1, losses: 0 },
    { rtt: 4.5, replies: 2, losses: 0 },
  ];
  assertEquals(sparkline(columns), "▁·█▅");
  assertEquals(sparkline([{ rtt: 2, replies: 1, losses: 0 }]), "▁");
});

Deno.test("histogramLines() draws bars proportional to the counts", () => {
  const lines = histogramLines([
    { from: 0.1, to: 0.2, count: 10 },
    { from: 0.2, to: 0.4, count: 5 },
    { from: 0.4, to: 0.8, count: 0 },
  ], 10);
  assertEquals(lines, [
    "0.100 - 0.200 ms │██████████ 10",
    "0.200 - 0.400 ms │█████ 5",
    "0.400 - 0.800 ms │ 0",
  ]);
});

Deno.test("floodMark() prints a dot per send and erases it per reply, like ping -f", () => {
  assertEquals(floodMark({ type: "sent", seq: 1, bytes: 64, time: 0 }), ".");
  const from = "x";
  assertEquals(
    floodMark({ type: "reply", seq: 1, rtt: 1, bytes: 1, from, late: false, reordered: false }),
    "\b \b",
  );
  assertEquals(floodMark({ type: "timeout", seq: 1 }), "");
});

Deno.test("PingRecords and jsonDocument() give one record per request, NaN as null", () => {
  const records = new PingRecords();
  const from = "x";
  records.add({ type: "sent", seq: 1, bytes: 64, time: 1000 });
  records.add({ type: "sent", seq: 2, bytes: 64, time: 2000 });
  records.add({ type: "reply", seq: 1, rtt: 0.5, bytes: 64, from, late: false, reordered: false });
  records.add({ type: "duplicate", seq: 1, rtt: 0.6, bytes: 64, from });
  records.add({ type: "timeout", seq: 2 });
  assertEquals(records.list(), [
    { seq: 1, sent: 1000, rtt: 0.5, flags: ["duplicate"] },
    { seq: 2, sent: 2000, rtt: null, flags: ["timeout"] },
  ]);
  const options = { count: 2, interval: 1, timeout: 1, size: 64, deadline: null, flood: false };
  const document = JSON.parse(jsonDocument(summary(2, []), options, records.list()));
  assertEquals(document.rtt.avg, null);
  assertEquals(document.options, options);
  assertEquals(document.pings.length, 2);
});
