/**
 * lib/client/beacon.ts: --send, the fire-and-forget beacon.
 */

import { assert, assertEquals } from "./assert.ts";
import { collect, portOf, udpSocket } from "./helpers.ts";
import { beacon } from "../client.ts";
import { expandBeacon } from "../lib/client/beacon.ts";
import { Receiver } from "../lib/shared/socket.ts";

Deno.test("beacon() sends its text count times, expanding {seq} and {now}", async () => {
  using listener = udpSocket();
  using receiver = new Receiver(listener);
  const sent = await collect(
    beacon({ port: portOf(listener), text: "tick {seq} {now}", count: 3, interval: 0.01 }),
  );
  assert(/^tick 3 \d{4}-\d\d-\d\dT/.test(sent[2]?.text ?? ""), sent[2]?.text);
  const arrived: string[] = [];
  for (let i = 0; i < 3; i++) {
    const datagram = await receiver.next(performance.now() + 2000);
    arrived.push(new TextDecoder().decode(datagram?.data));
  }
  assertEquals(arrived, sent.map((each) => each.text));
  assertEquals(expandBeacon("{seq}/{seq} {now}", 2, 0, true), "2/2 1970-01-01T00:00:00.000000Z");
});

Deno.test("beacon() after a stall sends the next seq once, late, and still sends count", async () => {
  using listener = udpSocket();
  const sent = [];
  const options = { port: portOf(listener), text: "{seq}", count: 4, interval: 0.05 };
  for await (const each of beacon(options)) {
    sent.push(each);
    // The process stalls for 6 intervals: nothing runs, no timer fires.
    const until = performance.now() + 300;
    while (each.seq === 1 && performance.now() < until);
  }
  assertEquals(sent.map((each) => each.seq), [1, 2, 3, 4]);
  assertEquals(sent.map((each) => each.skipped !== undefined), [false, true, false, false]);
  assert(sent[1]!.skipped! >= 4 && sent[1]!.behindMs! >= 200, JSON.stringify(sent[1]));
});
