/**
 * What the server did to a reply, found by comparing it with the request
 * the client sent: every kind the client reports, and what is not a change
 * (the stamp a udping server writes over the padding).
 */

import { assertEquals } from "./assert.ts";
import { changeKind, checkReply, describeChange, isExactEcho } from "../lib/client/reply_check.ts";
import { encodeRequest, findRecord, writeStamp } from "../protocol.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const sent = (stamp = false) =>
  encodeRequest({ seq: 5, sent: 1e12, token: "0000BEEF", size: 80, stamp });
const check = (reply: Uint8Array, stamp = false) =>
  describeChange(checkReply(reply, findRecord(reply)!, 80, stamp));

Deno.test("checkReply() sees an exact echo as no change, a stamp included", () => {
  assertEquals(check(sent()), []);
  const stamped = sent(true);
  const { paddingOffset } = findRecord(stamped)!;
  writeStamp(stamped, paddingOffset, stamped.length - paddingOffset, {
    count: 1,
    received: 1e12,
    held: 7,
  });
  assertEquals(check(stamped, true), []);
});

Deno.test("checkReply() names uppercasing, a prefix, both, and a truncation", () => {
  const request = decoder.decode(sent());
  assertEquals(check(encoder.encode(request.toUpperCase())), ["uppercased"]);
  assertEquals(check(encoder.encode(`OK...${request}`)), ['prefixed "OK..."']);
  assertEquals(check(encoder.encode(`Data received: ${request.toUpperCase()}`)), [
    'prefixed "Data received: "',
    "uppercased",
  ]);
  assertEquals(check(sent().subarray(0, 60)), ["truncated to 60 bytes"]);
});

Deno.test("checkReply() reports the first altered byte as ping does, and bytes added", () => {
  const altered = sent();
  altered[70] = 0x21; // "!"
  const was = sent()[70]!.toString(16);
  assertEquals(check(altered), [`byte #70 should be 0x${was} but was 0x21`]);
  const longer = encoder.encode(`${decoder.decode(sent())}!!`);
  assertEquals(check(longer), ["80 bytes sent, more came back"]);
});

Deno.test("changeKind() names what the summary counts: the prefix's text kept, no lengths or bytes", () => {
  const kind = (reply: Uint8Array) => changeKind(checkReply(reply, findRecord(reply)!, 80, false));
  const request = decoder.decode(sent());
  assertEquals(kind(sent()), "");
  assertEquals(
    kind(encoder.encode(`OK...${request.toUpperCase()}`)),
    'prefixed "OK...", uppercased',
  );
  assertEquals(kind(sent().subarray(0, 60)), "truncated");
  const altered = sent();
  altered[70] = 0x21;
  assertEquals(kind(altered), "altered");
  assertEquals(kind(encoder.encode(`${request}!!`)), "altered");
});

Deno.test("checkReply() compares a reply carrying the latest request's record with the bytes sent", () => {
  // Sent bytes that differ from the request encoded again show which one
  // the reply was compared with.
  const latest = sent();
  latest[70] = 0x21; // "!"
  const was = sent()[70]!.toString(16);
  const checkAgainst = (reply: Uint8Array) =>
    describeChange(checkReply(reply, findRecord(reply)!, 80, false, latest));
  assertEquals(checkAgainst(sent()), [`byte #70 should be 0x21 but was 0x${was}`]);
  const upper = encoder.encode(decoder.decode(sent()).toUpperCase());
  assertEquals(checkAgainst(upper), [
    "uppercased",
    `byte #70 should be 0x21 but was 0x${upper[70]!.toString(16)}`,
  ]);
});

Deno.test("checkReply() compares a reply carrying another record with that record's request", () => {
  const latest = sent();
  latest[70] = 0x21;
  const check = (reply: Uint8Array) =>
    describeChange(checkReply(reply, findRecord(reply)!, 80, false, latest));
  const earlier = encodeRequest({ seq: 4, sent: 1e12, token: "0000BEEF", size: 80 });
  assertEquals(check(earlier), []);
  // The same seq with another time: not the record that went out last.
  const retimed = encodeRequest({ seq: 5, sent: 1e12 + 1, token: "0000BEEF", size: 80 });
  assertEquals(check(retimed), []);
  const unpadded = encodeRequest({ seq: 5, sent: 1e12, token: "0000BEEF", size: 10 });
  assertEquals(check(unpadded), ["truncated to 33 bytes"]);
});

Deno.test("isExactEcho() holds for an exact echo only", () => {
  const exact = (reply: Uint8Array) =>
    isExactEcho(checkReply(reply, findRecord(reply)!, 80, false));
  const request = decoder.decode(sent());
  assertEquals(exact(sent()), true);
  assertEquals(exact(encoder.encode(request.toUpperCase())), false);
  assertEquals(exact(encoder.encode(`OK...${request}`)), false);
  assertEquals(exact(sent().subarray(0, 60)), false);
  const altered = sent();
  altered[70] = 0x21;
  assertEquals(exact(altered), false);
});
