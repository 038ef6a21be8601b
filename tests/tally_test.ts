/**
 * The ping run's bookkeeping without I/O: the memory a tally takes, and the
 * requests it remembers as its ring grows.
 *
 * @module
 */

import { assert, assertEquals } from "./assert.ts";
import { PingTally } from "../lib/client/tally.ts";

Deno.test("a one-ping PingTally takes under 512 KB, not the 3 MB of a full ring", () => {
  // Held, so that no collection hides what they took.
  const tallies: PingTally[] = [];
  const before = Deno.memoryUsage().external;
  for (let i = 0; i < 8; i++) tallies.push(new PingTally(1, 1000));
  const each = (Deno.memoryUsage().external - before) / tallies.length / 1024;
  assert(each < 512, `each tally took ${each.toFixed(0)} KB`);
});

Deno.test("PingTally, grown past its first ring, still knows a reply 65,535 sends back", () => {
  const tally = new PingTally(1, 1000);
  const sends = 70_000;
  for (let seq = 1; seq <= sends; seq++) tally.sent(seq, seq, seq);
  for (const _ of tally.expire(Infinity));
  const at = sends + 1;
  assertEquals(tally.reply(sends - 65_535, at).kind, "reply");
  assertEquals(tally.reply(sends - 65_536, at).kind, "unknown-seq");
  assertEquals(tally.reply(sends, at).kind, "reply");
  assertEquals(tally.reply(sends, at).kind, "duplicate");
  assertEquals(tally.reply(sends + 1, at).kind, "unknown-seq");
  const { transmitted, received, duplicates } = tally.summary();
  assertEquals({ transmitted, received, duplicates }, {
    transmitted: sends,
    received: 2,
    duplicates: 1,
  });
});

Deno.test("PingTally.expire() makes nothing when no request timed out, and lists those that did", () => {
  const tally = new PingTally(4, 1000);
  for (let seq = 1; seq <= 3; seq++) tally.sent(seq, seq, seq);
  tally.reply(2, 10);
  // Twice a probe, nearly always empty: the same empty list each time.
  assert(tally.expire(500) === tally.expire(600), "a new object for nothing expired");
  assertEquals([...tally.expire(500)], []);
  assertEquals([...tally.expire(1003)], [1, 3]);
  assertEquals([...tally.expire(2000)], []);
});
