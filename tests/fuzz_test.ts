/**
 * Hostile input: property tests that throw arbitrary datagrams at a live
 * in-process server and check that it stays up, honest and safe.
 */

import fc from "npm:fast-check@4.10.2";
import { assert, assertEquals } from "./assert.ts";
import { type ReplyMode, serve } from "../server.ts";
import { ping } from "../client.ts";
import { Receiver } from "../lib/shared/socket.ts";
import { encodeRequest, findRecord } from "../protocol.ts";
import { collect, hasControlCharacter, receiveWithin, summaryOf, udpSocket } from "./helpers.ts";

const ascii = (text: string) => Uint8Array.from(text, (char) => char.charCodeAt(0) & 0xff);

/** Datagrams as an attacker or a broken peer would send them. */
const hostileDatagram: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 512 }) },
  { weight: 2, arbitrary: fc.uint8Array({ minLength: 512, maxLength: 65507, size: "max" }) },
  // Terminal escapes: clear screen, OSC 52 clipboard write, bell, cursor moves.
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "\x1b[2J\x1b[H",
      "\x1b]52;c;cm0gLXJmIH4=\x07",
      "\x1b]0;owned\x07",
      "\x9b31m\x07\x08\x7f",
      "PING 1 2.000 0000BEEF \x1b[2J?",
    ).map(ascii),
  },
  // Invalid UTF-8 and NUL bytes around something that looks like a ping.
  {
    weight: 1,
    arbitrary: fc.tuple(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 })).map((
      [head, tail],
    ) =>
      Uint8Array.from([
        ...head,
        0xc3,
        0x28,
        0x00,
        ...ascii("PING 7 1.0 ABCDEF01 ?XYZ"),
        0xff,
        ...tail,
      ])
    ),
  },
  // One very long line.
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1000, max: 65507 }).map((n) => new Uint8Array(n).fill(0x41)),
  },
  // Real requests that ask for a stamp, of every size, whole or cut short.
  {
    weight: 2,
    arbitrary: fc.tuple(fc.nat(), fc.integer({ min: 0, max: 65507 }), fc.nat({ max: 100 })).map(
      ([seq, size, cut]) => {
        const request = encodeRequest({ seq, sent: 1, token: "0000BEEF", size, stamp: true });
        return cut < 80 ? request : request.subarray(0, Math.max(0, request.length - cut));
      },
    ),
  },
);

/** What {@linkcode exchanger}'s `exchange` waits for besides the reply. */
interface ExchangeOptions {
  /** How long to wait for the reply. */
  waitMs?: number;
  /** Stop waiting for a reply as soon as this holds (checked every
   * millisecond or so): the server has done something else instead. */
  until?: () => boolean;
}

/**
 * Sends each datagram from a fresh port and returns its reply (or
 * `undefined` when none comes within `waitMs`, or once `until()` holds).
 * A fresh port per datagram, because fast-check repeats a datagram while
 * it shrinks, and the same bytes coming back at once from where the server
 * just sent them is an echo loop, which the server stops (loop_guard.ts).
 * Each exchange closes its own socket, so disposing of the exchanger has
 * nothing left to release; `await using` it like the other fixtures.
 */
function exchanger(port: number) {
  return {
    async exchange(
      data: Uint8Array,
      { waitMs = 1000, until }: ExchangeOptions = {},
    ): Promise<Uint8Array | undefined> {
      using socket = udpSocket();
      using receiver = new Receiver(socket);
      const done = new AbortController();
      const watch = until && setInterval(() => {
        if (until()) done.abort();
      }, 1);
      try {
        await socket.send(data, { transport: "udp", hostname: "127.0.0.1", port });
        return (await receiver.next(performance.now() + waitMs, done.signal))?.data.slice();
      } finally {
        clearInterval(watch);
      }
    },
    async [Symbol.asyncDispose]() {},
  };
}

Deno.test("serve() survives 10,000 hostile datagrams: counters add up, logs stay inert, pings still work", async () => {
  const lines: string[] = [];
  await using server = await serve({ port: 0, rate: 0, log: (line) => lines.push(line) });
  await using peer = exchanger(server.addr.port);
  await fc.assert(
    fc.asyncProperty(hostileDatagram, async (datagram) => {
      const reply = await peer.exchange(datagram);
      // Echo: byte for byte, however large; a stamp is written over the
      // padding in place.
      assertEquals(reply?.length, datagram.length);
      if (!findRecord(datagram, { anywhere: false })?.stampWanted) assertEquals(reply, datagram);
    }),
    { numRuns: 10_000, seed: 20261125 },
  );
  const { stats } = server;
  assertEquals(stats.received, lines.length);
  assertEquals(
    stats.replied + stats.dropped + stats.limited + stats.ignored + stats.failed + stats.held,
    stats.received,
  );
  for (const line of lines) {
    assert(!hasControlCharacter(line), `raw control character in ${JSON.stringify(line)}`);
  }
  const summary = summaryOf(
    await collect(ping({ port: server.addr.port, count: 3, interval: 0.01 })),
  );
  assertEquals(summary.received, 3);
});

for (
  const [mode, prefix] of [["echo", ""], ["upper", ""], ["prefix", "OK..."]] as [
    ReplyMode,
    string,
  ][]
) {
  Deno.test(`serve() in ${mode} mode never replies with more than the request plus the prefix`, async () => {
    await using server = await serve({ port: 0, mode, prefix, rate: 0 });
    await using peer = exchanger(server.addr.port);
    await fc.assert(
      fc.asyncProperty(hostileDatagram, async (datagram) => {
        // Stamp requests included: a stamp is written over the padding.
        const tooLarge = datagram.length + prefix.length > 65507;
        const failedBefore = server.stats.failed;
        // Too large a reply fails at once: wait for the failure to be
        // counted, not for a set time in which no reply comes.
        const reply = await peer.exchange(datagram, {
          until: tooLarge ? () => server.stats.failed > failedBefore : undefined,
        });
        if (tooLarge) {
          // Too large to send with the prefix: no reply, counted as failed.
          assertEquals([reply, server.stats.failed], [undefined, failedBefore + 1]);
          return;
        }
        assert(reply !== undefined, `no reply to ${datagram.length} bytes`);
        assert(
          reply.length <= datagram.length + prefix.length,
          `${reply.length} > ${datagram.length}`,
        );
      }),
      { numRuns: 2000, seed: 7 },
    );
  });
}

Deno.test("serve() receives and echoes whole the largest IPv4 and IPv6 datagrams", async () => {
  for (const [hostname, size] of [["127.0.0.1", 65507], ["::1", 65527]] as const) {
    await using server = await serve({ host: hostname, port: 0 });
    using socket = udpSocket(hostname);
    const datagram = Uint8Array.from({ length: size }, (_, i) => i % 251);
    await socket.send(datagram, { transport: "udp", hostname, port: server.addr.port });
    const reply = await receiveWithin(socket, 2000, 70000);
    assertEquals(reply?.data.length, size);
    assertEquals(reply?.data, datagram);
  }
});
