import { assertEquals } from "./assert.ts";
import { eventLine, formatG, formatTime, headerLine, summaryLines } from "../report.ts";
import type { PingSummary } from "../client.ts";
import { RttStats } from "../stats.ts";

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

function summary(transmitted: number, rtts: number[], extra: Partial<PingSummary> = {}) {
  const stats = new RttStats();
  for (const rtt of rtts) stats.add(rtt);
  const received = rtts.length;
  return {
    target: "127.0.0.1:12000",
    address: "127.0.0.1:12000",
    transmitted,
    received,
    duplicates: 0,
    late: 0,
    reordered: 0,
    stray: 0,
    errors: 0,
    loss: ((transmitted - received) / transmitted) * 100,
    time: 9004.2,
    rtt: stats.summary(),
    ...extra,
  };
}

Deno.test("summaryLines() prints ping's two summary lines", () => {
  assertEquals(summaryLines(summary(10, [0.081, 0.123, 0.201], { duplicates: 1 })), [
    "",
    "--- 127.0.0.1:12000 udp ping statistics ---",
    "10 packets transmitted, 3 received, +1 duplicates, 70% packet loss, time 9004ms",
    "rtt min/avg/max/mdev = 0.081/0.135/0.201/0.050 ms",
  ]);
});

Deno.test("summaryLines() leaves out the rtt line at 100% loss and prints %g loss", () => {
  assertEquals(
    summaryLines(summary(10, []))[2],
    "10 packets transmitted, 0 received, 100% packet loss, time 9004ms",
  );
  assertEquals(summaryLines(summary(10, [])).length, 3);
  assertEquals(
    summaryLines(summary(3, [1, 2], { errors: 1 }))[2],
    "3 packets transmitted, 2 received, +1 errors, 33.3333% packet loss, time 9004ms",
  );
});

Deno.test("eventLine() prints ping's reply, DUP and timeout lines", () => {
  const from = "127.0.0.1:12000";
  assertEquals(headerLine(from, 64), "PING 127.0.0.1:12000 (udp): 64 data bytes");
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
    eventLine({ type: "duplicate", seq: 3, rtt: 0.098, bytes: 64, from }),
    "64 bytes from 127.0.0.1:12000: seq=3 time=0.098 ms (DUP!)",
  );
  assertEquals(eventLine({ type: "timeout", seq: 2 }), "Request timeout for seq=2");
  assertEquals(eventLine({ type: "stray", reason: "no-record", bytes: 3, from }), undefined);
});
