/**
 * lib/shared/log.ts: the escaping every datagram's text goes through before it
 * reaches a terminal (the server's log, the client's chat and `-v`).
 */

import { assertEquals } from "./assert.ts";
import { hasControlCharacter } from "./helpers.ts";
import { escapeBytes } from "../lib/shared/log.ts";

const encoder = new TextEncoder();
const bytes = (...values: number[]) => Uint8Array.from(values);

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
