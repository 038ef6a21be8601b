import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  encodeRequest,
  findRecord,
  formatRecord,
  formatStamp,
  formatToken,
  padding,
  randomToken,
  readStamp,
  readStampAt,
  refusalsThatFit,
  SEQ_MODULUS,
  writeStamp,
} from "../protocol.ts";
import fc from "npm:fast-check@4.10.2";

const encoder = new TextEncoder();
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const request = { seq: 42, sent: 1764064800123.456, token: "9F86D081", size: 64 };

Deno.test("encodeRequest() writes the record, then padding up to the size", () => {
  const bytes = encodeRequest(request);
  assertEquals(bytes.length, 64);
  assert(text(bytes).startsWith("PING 42 1764064800123.456 9F86D081 0123456789abc"));
});

Deno.test("encodeRequest() never cuts the record when the size is smaller", () => {
  // The record here is 34 bytes long.
  for (const size of [0, 1, 20, 34]) {
    assertEquals(text(encodeRequest({ ...request, size })), "PING 42 1764064800123.456 9F86D081");
  }
  // From one byte more on, the size is met exactly.
  assertEquals(
    text(encodeRequest({ ...request, size: 35 })),
    "PING 42 1764064800123.456 9F86D081 ",
  );
  assertEquals(encodeRequest({ ...request, size: 36 }).length, 36);
});

Deno.test("findRecord() reads back what encodeRequest() wrote", () => {
  for (const size of [0, 64, 1000, 65507]) {
    const bytes = encodeRequest({ ...request, size });
    const record = findRecord(bytes);
    assertEquals(record?.seq, 42);
    assertEquals(record?.sent, 1764064800123.456);
    assertEquals(record?.token, "9F86D081");
    assertEquals(record && bytes.length - record.paddingOffset, Math.max(0, size - 35));
  }
});

Deno.test("findRecord() finds the record in uppercased, prefixed and padded replies", () => {
  const original = text(encodeRequest({ ...request, token: "00abcdef" }));
  for (
    const reply of [
      original.toUpperCase(),
      `OK...${original}`,
      `Data received: ${original.toUpperCase()}\n`,
      `${original.toLowerCase()}`,
    ]
  ) {
    const record = findRecord(encoder.encode(reply));
    assertEquals(record?.seq, 42, reply);
    assertEquals(record?.token, "00ABCDEF", reply);
  }
});

Deno.test("findRecord() rejects garbage, truncated records and overlong fields", () => {
  for (
    const reply of [
      "",
      "hello",
      "\x00\xff\x1b[2J",
      "PING 42 1764064800123.456",
      "PING 42 1764064800123.456 9F86D0",
      "PING 42 1764064800123.456 9F86D081A", // a ninth hex digit: not this token
      "PING x 1764064800123.456 9F86D081",
      "PING 4294967296 1764064800123.456 9F86D081", // seq past 2^32 - 1
      "PING 42 1764064800123.456 NOTATOKN",
    ]
  ) {
    assertEquals(findRecord(encoder.encode(reply)), null, reply);
  }
});

Deno.test("findRecord() takes the first well-formed record after malformed ones", () => {
  const reply = "PING 1 2 ZZZZZZZZ junk PING 7 1.5 0000BEEF";
  assertEquals(findRecord(encoder.encode(reply))?.seq, 7);
  // A seq past 2^32 - 1 makes a record malformed, not the rest of its line.
  const overflow = "PING 4294967296 1.5 0000BEEF PING 8 1.5 0000BEEF";
  assertEquals(findRecord(encoder.encode(overflow))?.seq, 8);
});

Deno.test("findRecord() reads sent as Number() reads its text, to the last bit", () => {
  fc.assert(
    fc.property(
      fc.stringMatching(/^[1-9]\d{0,15}(\.\d{1,6})?$/),
      (sent) => findRecord(encoder.encode(`PING 1 ${sent} 0000BEEF`))?.sent === Number(sent),
    ),
    { numRuns: 5000 },
  );
});

Deno.test("findRecord() survives every byte value", () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  assertEquals(findRecord(bytes), null);
});

Deno.test("tokens are 8 uppercase hex digits", () => {
  assertEquals(formatToken(0xbeef), "0000BEEF");
  assertEquals(formatToken(2 ** 32 - 1), "FFFFFFFF");
  for (let i = 0; i < 100; i++) assert(/^[0-9A-F]{8}$/.test(randomToken()));
});

Deno.test("padding survives an uppercasing server and has the asked length", () => {
  const pad = padding(100);
  assertEquals(pad.length, 100);
  // Lowercase letters and digits: an uppercasing server's work shows.
  assertEquals(pad, "0123456789abcdefghijklmnopqrstuvwxyz".repeat(3).slice(0, 100));
  assertEquals(formatRecord(SEQ_MODULUS - 1, 1.5, "0000BEEF"), "PING 4294967295 1.500 0000BEEF");
});

Deno.test("encodeRequest() with stamp puts the ? marker first in the padding", () => {
  const bytes = encodeRequest({ ...request, stamp: true });
  assertEquals(bytes.length, 64);
  assertEquals(text(bytes.subarray(findRecord(bytes)!.paddingOffset)).slice(0, 3), "?01");
  // No room for padding: no marker either.
  assertEquals(text(encodeRequest({ ...request, size: 35, stamp: true })).endsWith(" "), true);
});

Deno.test("formatStamp() writes as much as fits: count, then receive time, then hold", () => {
  const stamp = { count: 12, received: 1764064800123.4567, held: 15.4 };
  assertEquals(formatStamp(stamp, 2), undefined);
  assertEquals(formatStamp(stamp, 3), undefined);
  assertEquals(formatStamp(stamp, 4), "=12;");
  assertEquals(formatStamp(stamp, 21), "=12;");
  assertEquals(formatStamp(stamp, 22), "=12,1764064800123.457;");
  assertEquals(formatStamp(stamp, 25), "=12,1764064800123.457,15;");
});

Deno.test("writeStamp() overwrites the padding in place and readStamp() reads it back", () => {
  const bytes = encodeRequest({ ...request, stamp: true });
  const record = findRecord(bytes)!;
  const stamp = { count: 3, received: 1764064800124.5, held: 7 };
  assert(writeStamp(bytes, record.paddingOffset, bytes.length - record.paddingOffset, stamp));
  assertEquals(bytes.length, 64);
  const reply = findRecord(bytes)!;
  assertEquals(reply.seq, 42);
  assertEquals(readStampAt(bytes, reply.paddingOffset), { kind: "stamped", stamp });
  assertMatch(text(bytes), / =3,1764064800124\.500,7;[0-9a-z]+$/);
});

Deno.test("readStamp() tells a returned marker from no marker", () => {
  assertEquals(readStamp("?0123"), { kind: "not-stamped" });
  assertEquals(readStamp("0123"), { kind: "none" });
  assertEquals(readStamp(""), { kind: "none" });
  assertEquals(readStamp("=5;ABC"), { kind: "stamped", stamp: { count: 5 } });
  // Without its ";" a stamp could have run on into the padding's digits.
  assertEquals(readStamp("=59ABC"), { kind: "none" });
});

Deno.test("findRecord() with anywhere: false reads only a record at the start of the datagram", () => {
  const atStart = (bytes: Uint8Array) => {
    const record = findRecord(bytes, { anywhere: false });
    if (record === null) return null;
    const { seq, tokenValue, paddingOffset, stampWanted } = record;
    return { seq, tokenValue, paddingOffset, stampWanted };
  };
  const bytes = encodeRequest({ ...request, size: 65507, stamp: true });
  assertEquals(atStart(bytes), {
    seq: 42,
    tokenValue: 0x9f86d081,
    paddingOffset: 35,
    stampWanted: true,
  });
  assertEquals(atStart(encoder.encode("OK...PING 1 2.000 0000BEEF ?")), null);
  assertEquals(atStart(encodeRequest({ ...request, size: 64 }))?.stampWanted, false);
  assertEquals(atStart(encoder.encode("ping 1 2 0000beef")), {
    seq: 1,
    tokenValue: 0xbeef,
    paddingOffset: 17,
    stampWanted: false,
  });
});

Deno.test("findRecord() with anywhere: false agrees with findRecord() on where a request's record is", () => {
  const samples = [
    "PING 42 1764064800123.456 9F86D081 ?0123",
    "PING 42 1764064800123.456 9F86D081",
    "PING 42 1764064800123.456 9F86D081A",
    "PING 4294967296 1.5 9F86D081 ?",
    "PING 4294967295 1.5 9F86D081 ?",
    "PING 1 12345678901234567 9F86D081",
    "PING 1 1.1234567 9F86D081",
    "PING 1 1. 9F86D081",
    "PING  1 1 9F86D081",
    "PING 1 1 9F86D08",
    "PING 1 1 9F86D081\n",
    "xPING 1 1 9F86D081",
    "PING",
    "",
  ];
  for (const sample of samples) {
    const bytes = encoder.encode(sample);
    const record = findRecord(bytes);
    const head = findRecord(bytes, { anywhere: false });
    const atStart = record !== null && record.offset === 0;
    assertEquals(head !== null, atStart, sample);
    if (head && record) {
      assertEquals(head.tokenValue, parseInt(record.token, 16), sample);
      assertEquals(head.seq, record.seq, sample);
      assertEquals(head.paddingOffset, record.paddingOffset, sample);
      assertEquals(
        head.stampWanted,
        sample.slice(record.paddingOffset - 1).startsWith(" ?"),
        sample,
      );
    }
  }
});

Deno.test("readStampAt() reads a stamp from bytes, however large the datagram", () => {
  const bytes = encodeRequest({ ...request, size: 65507, stamp: true });
  const { paddingOffset } = findRecord(bytes)!;
  assertEquals(readStampAt(bytes, paddingOffset), { kind: "not-stamped" });
  writeStamp(bytes, paddingOffset, bytes.length - paddingOffset, {
    count: 9,
    received: 5,
    held: 3,
  });
  assertEquals(readStampAt(bytes, paddingOffset), {
    kind: "stamped",
    stamp: { count: 9, received: 5, held: 3 },
  });
  assertEquals(readStampAt(encodeRequest(request), 35), { kind: "none" });
});

Deno.test("writeStamp() has room for the server's refusals in a default 64-byte request at seq 3000", () => {
  // 27 bytes of padding: "=3000,<received>,<held>," leaves none for refusals.
  const bytes = encodeRequest({ ...request, seq: 3000, stamp: true });
  const { paddingOffset } = findRecord(bytes)!;
  assertEquals(bytes.length - paddingOffset, 27);
  const stamp = { count: 2998, received: 1764064800123.5, held: 12, refused: 2 };
  assert(writeStamp(bytes, paddingOffset, bytes.length - paddingOffset, stamp));
  assertMatch(text(bytes), / =2998,,,2;[0-9a-z]+$/);
  assertEquals(readStampAt(bytes, paddingOffset), {
    kind: "stamped",
    stamp: { count: 2998, refused: 2 },
  });
});

Deno.test("formatStamp() tells refusals before the times: the whole stamp, else count and refusals", () => {
  const stamp = { count: 12, received: 1764064800123.4567, held: 15.4, refused: 3 };
  assertEquals(formatStamp(stamp, 27), "=12,1764064800123.457,15,3;");
  assertEquals(formatStamp(stamp, 26), "=12,,,3;");
  assertEquals(formatStamp(stamp, 8), "=12,,,3;");
  // No room for the refusals: the count alone, and the server keeps them.
  assertEquals(refusalsThatFit(12, 7), 0);
  assertEquals(formatStamp(stamp, 7), "=12;");
  assertEquals(readStamp("=12,,,3;abc"), { kind: "stamped", stamp: { count: 12, refused: 3 } });
  // A half-written form is no stamp.
  assertEquals(readStamp("=12,,3;abc"), { kind: "none" });
});

Deno.test("writeStamp() tells every refusal refusalsThatFit() allows, in any padding, and readStampAt() reads it back", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 9_999_999_999 }),
      fc.integer({ min: 1, max: 80 }),
      fc.integer({ min: 1, max: 9_999_999_999 }),
      fc.integer({ min: 0, max: 60_000_000 }),
      (count, room, wanted, held) => {
        const refused = Math.min(wanted, refusalsThatFit(count, room));
        const stamp = { count, received: 1764064800123.5, held, refused };
        const datagram = encoder.encode(`PING 1 0.000 0000BEEF ${"x".repeat(room)}`);
        const offset = datagram.length - room;
        const written = writeStamp(datagram, offset, room, stamp);
        const reading = readStampAt(datagram, offset);
        if (!written) return refused === 0 && reading.kind === "none";
        return reading.kind === "stamped" && reading.stamp.count === count &&
          (reading.stamp.refused ?? 0) === refused;
      },
    ),
  );
});
