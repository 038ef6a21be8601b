/**
 * lib/shared/log.ts: the escaping every datagram's text goes through before it
 * reaches a terminal (the server's log, the client's chat and `-v`), and
 * the log's times.
 */

import { assertEquals, assertThrows } from "./assert.ts";
import { hasControlCharacter } from "./helpers.ts";
import { escapeBytes, isoTime } from "../lib/shared/log.ts";

const encoder = new TextEncoder();
const bytes = (...values: number[]) => Uint8Array.from(values);
const localIso = (ms: number, offsetMinutes?: number) => isoTime(ms, false, offsetMinutes);
/** 2026-11-26T04:09:23.523+05:30 */
const T0 = Date.UTC(2026, 10, 25, 22, 39, 23, 523);

/** isoTime() of each time, in a fresh runtime with `TZ` set. */
async function localIsoIn(tz: string, times: number[]): Promise<string[]> {
  const module = new URL("../lib/shared/log.ts", import.meta.url).href;
  const code = `import { isoTime } from ${JSON.stringify(module)};\n` +
    `console.log(JSON.stringify(${JSON.stringify(times)}.map((t) => isoTime(t))));`;
  const { code: status, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env: { TZ: tz },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  assertEquals(status, 0, decoder.decode(stderr));
  return JSON.parse(decoder.decode(stdout));
}

Deno.test("escapeBytes() shows valid UTF-8 as text, not as escapes", () => {
  assertEquals(escapeBytes(encoder.encode("HéLLO ñandú 日本 🙂")), "HéLLO ñandú 日本 🙂");
});

Deno.test("escapeBytes() escapes each byte that is not valid UTF-8, and goes on after it", () => {
  const cases: [Uint8Array, string][] = [
    [bytes(0x68, 0xff, 0x69), "h\\xffi"], // never in UTF-8
    [bytes(0x68, 0xc3, 0x28), "h\\xc3("], // a lead byte without its continuation
    [bytes(0xa9, 0x41), "\\xa9A"], // a continuation without its lead
    [bytes(0xc0, 0xaf), "\\xc0\\xaf"], // an overlong "/"
    [bytes(0xed, 0xa0, 0x80), "\\xed\\xa0\\x80"], // a UTF-16 surrogate
    [bytes(0xf4, 0x90, 0x80, 0x80), "\\xf4\\x90\\x80\\x80"], // past U+10FFFF
    [bytes(0x41, 0xe6, 0x97), "A\\xe6\\x97"], // cut short by the end of the datagram
  ];
  for (const [data, shown] of cases) assertEquals(escapeBytes(data), shown);
});

Deno.test("escapeBytes() escapes control characters, C1 and bidirectional controls included", () => {
  const hostile = '\x1b]0;title\x07\u009b2J\r\n\t\x00\x7f\u202e\u2028"\\';
  const shown = escapeBytes(encoder.encode(hostile));
  assertEquals(
    shown,
    '\\x1b]0;title\\x07\\xc2\\x9b2J\\r\\n\\t\\x00\\x7f\\xe2\\x80\\xae\\xe2\\x80\\xa8\\"\\\\',
  );
  assertEquals(hasControlCharacter(shown), false);
});

Deno.test("escapeBytes() cuts at the limit with an ellipsis, never inside a character", () => {
  assertEquals(escapeBytes(encoder.encode("abcé"), 4), "abc…");
  assertEquals(escapeBytes(encoder.encode("abcé"), 5), "abcé");
});

Deno.test("escapeBytes() cuts long datagrams with an ellipsis", () => {
  assertEquals(escapeBytes(encoder.encode("a".repeat(100)), 4), "aaaa…");
  assertEquals(escapeBytes(Uint8Array.of(0, 0x7f, 0x41)), "\\x00\\x7fA");
});

Deno.test("isoTime() writes the given offset as ±HH:MM, +00:00 rather than Z", () => {
  assertEquals(localIso(T0, 330), "2026-11-26T04:09:23.523000+05:30");
  assertEquals(localIso(T0, 0), "2026-11-25T22:39:23.523000+00:00");
  assertEquals(localIso(T0, -210), "2026-11-25T19:09:23.523000-03:30");
  assertEquals(localIso(T0 + 0.999, 345), "2026-11-26T04:24:23.523999+05:45");
  assertThrows(() => localIso(NaN), /ms must be a finite time/);
  assertThrows(() => localIso(T0, 24 * 60), /offsetMinutes must be within/);
});

Deno.test("isoTime() uses the local zone's offset at that instant (TZ)", async () => {
  const july = Date.UTC(2026, 6, 1, 12);
  assertEquals(await localIsoIn("Asia/Kolkata", [T0, july]), [
    "2026-11-26T04:09:23.523000+05:30",
    "2026-07-01T17:30:00.000000+05:30",
  ]);
  assertEquals(await localIsoIn("UTC", [T0]), ["2026-11-25T22:39:23.523000+00:00"]);
  assertEquals(await localIsoIn("America/New_York", [T0, july]), [
    "2026-11-25T17:39:23.523000-05:00",
    "2026-07-01T08:00:00.000000-04:00",
  ]);
});

Deno.test("isoTime() is exact within a second and across seconds, even where the offset changes", async () => {
  // It keeps the last second's text: each of these must still be its own.
  const second = Date.UTC(2026, 10, 25, 22, 39, 23);
  assertEquals(localIso(second + 0.25, 0), "2026-11-25T22:39:23.000250+00:00");
  assertEquals(localIso(second + 999.9996, 0), "2026-11-25T22:39:24.000000+00:00");
  assertEquals(localIso(second + 500, 0), "2026-11-25T22:39:23.500000+00:00");
  assertEquals(isoTime(second + 500, true), "2026-11-25T22:39:23.500000Z");
  assertEquals(localIso(second + 500, 60), "2026-11-25T23:39:23.500000+01:00");
  // New York's clocks went forward at 07:00 UTC on 8 March 2026.
  const change = Date.UTC(2026, 2, 8, 7);
  assertEquals(
    await localIsoIn("America/New_York", [change - 0.5, change - 0.25, change, change + 0.5]),
    [
      "2026-03-08T01:59:59.999500-05:00",
      "2026-03-08T01:59:59.999750-05:00",
      "2026-03-08T03:00:00.000000-04:00",
      "2026-03-08T03:00:00.000500-04:00",
    ],
  );
});

Deno.test("isoTime() writes years past 9999 and before year 0 whole", () => {
  const late = Date.UTC(10000, 0, 1, 0, 0, 5, 123);
  assertEquals(isoTime(late, true), "+010000-01-01T00:00:05.123000Z");
  assertEquals(localIso(late, 60), "+010000-01-01T01:00:05.123000+01:00");
  assertEquals(isoTime(Date.UTC(-1, 0, 1, 0, 0, 5, 123), true), "-000001-01-01T00:00:05.123000Z");
});
