/**
 * The server's reply modes (lib/server/reply.ts): what each one makes of a
 * request, and that a reply never outgrows its request and the prefix.
 */

import { assert, assertEquals, assertRejects } from "./assert.ts";
import { reply } from "../lib/server/reply.ts";
import { serve } from "../server.ts";
import { receiveWithin, udpSocket, waitUntil } from "./helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NO_PREFIX = new Uint8Array();

Deno.test("reply() never makes a reply larger than request plus prefix", () => {
  const request = encoder.encode("ping 1 x");
  const prefix = encoder.encode("OK...");
  assertEquals(reply("echo", request.slice(), prefix)?.length, request.length);
  assertEquals(reply("upper", request.slice(), prefix)?.length, request.length);
  assertEquals(reply("prefix", request.slice(), prefix)?.length, request.length + prefix.length);
});

Deno.test("reply() answers nothing in silent and heartbeat mode", () => {
  assertEquals(reply("silent", encoder.encode("ping"), NO_PREFIX), undefined);
  assertEquals(reply("heartbeat", encoder.encode("ping"), NO_PREFIX), undefined);
});

Deno.test("reply() echoes and uppercases in the request's own bytes, ASCII letters only", () => {
  const request = encoder.encode("ping é 1");
  assert(reply("echo", request, NO_PREFIX) === request);
  assert(reply("upper", request, NO_PREFIX) === request);
  assertEquals(decoder.decode(request), "PING é 1");
});

Deno.test("reply() in prefix mode puts the prefix first in a new array, the request untouched", () => {
  const request = encoder.encode("ping 1");
  const data = reply("prefix", request, encoder.encode("OK "));
  assertEquals(decoder.decode(data), "OK ping 1");
  data![3] = 0;
  assertEquals(decoder.decode(request), "ping 1");
});

Deno.test("serve() in heartbeat mode needs the seconds of silence, and never replies", async () => {
  await assertRejects(() => serve({ port: 0, mode: "heartbeat" }), /needs heartbeat/);
  await using server = await serve({ port: 0, mode: "heartbeat", heartbeat: 5 });
  using socket = udpSocket();
  await socket.send(encoder.encode("ping 1"), server.addr);
  await waitUntil(() => server.stats.received === 1, () => "the datagram to arrive");
  assertEquals(await receiveWithin(socket, 50), undefined);
});
