/**
 * The server's fast path (`--fast`: the C library's socket calls through
 * FFI) keeps the behaviour of the ordinary one: replies, reply modes,
 * stamps, the rate limit, hostile input, large datagrams. Its loop blocks
 * its process's event loop while it waits, so it runs as a subprocess here,
 * as it would in use.
 */

import fc from "npm:fast-check@4.10.2";
import { assert, assertEquals, assertMatch, assertRejects } from "./assert.ts";
import { serve } from "../server.ts";
import { ping } from "../client.ts";
import { Receiver } from "../lib/shared/socket.ts";
import {
  collect,
  ofType,
  type ServerProcess,
  startServerProcess,
  summaryOf,
  udpSocket,
} from "./helpers.ts";

const LINUX = Deno.build.os === "linux";
const FAST = { permissions: ["--allow-net", "--allow-ffi"] };
const encoder = new TextEncoder();

/** The counters from a stopped server's summary line. */
function counters(summary: string): Record<string, number> {
  const line =
    /(\d+) received, (\d+) replied, (\d+) dropped, (\d+) rate-limited, (\d+) ignored, (\d+) failed sends, (\d+) clients?/
      .exec(summary);
  assert(line, summary);
  const [received, replied, dropped, limited, ignored, failed, clients] = line.slice(1).map(Number);
  return { received, replied, dropped, limited, ignored, failed, clients } as Record<
    string,
    number
  >;
}

Deno.test({
  name: "server.ts --fast answers pings, stamps them, and uppercases over IPv4 and IPv6",
  ignore: !LINUX,
  async fn() {
    for (const host of ["127.0.0.1", "::1"]) {
      await using server = await startServerProcess(
        ["--fast", "--upper", "--quiet", "--host", host],
        FAST,
      );
      const events = await collect(ping({ host, port: server.port, count: 5, interval: 0.01 }));
      assertEquals(ofType(events, "reply").length, 5);
      const summary = summaryOf(events);
      assertEquals(summary.lossSplit, { upstream: 0, downstream: 0, unknown: 0, rateLimited: 0 });
      assert(summary.serverTime !== null);
      const stopped = await server.stop("SIGINT");
      assertEquals(stopped.code, 0);
      assertMatch(stopped.stdout, /fast path \(C library\)/);
      const { received, replied, clients } = counters(stopped.stdout);
      assertEquals([received, replied, clients], [5, 5, 1]);
    }
  },
});

Deno.test({
  name: "server.ts --fast keeps the rate limit per address",
  ignore: !LINUX,
  async fn() {
    await using server = await startServerProcess(["--fast", "--quiet", "--rate", "100"], FAST);
    using flooder = udpSocket("127.0.0.2");
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port: server.port };
    // 250, a millisecond or more apart: faster, the loop guard would take
    // datagrams that come back-to-back after their replies for a loop
    // before the rate limit saw them.
    const start = performance.now();
    for (let i = 0; i < 250; i++) {
      await flooder.send(encoder.encode(`flood ${i}`), to);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const seconds = (performance.now() - start) / 1000;
    const summary = summaryOf(
      await collect(ping({ port: server.port, count: 3, interval: 0.01 })),
    );
    assertEquals(summary.received, 3);
    const { received, replied, limited } = counters((await server.stop()).stdout);
    // A second's burst (100) and the refill while it lasted got through
    // (one more for the refill's rounding), the rest was refused.
    const allowed = 100 + Math.ceil(100 * seconds) + 1;
    assert(limited! >= 250 - allowed, `${limited} rate-limited in ${seconds} s`);
    assert(limited! >= 50, `${limited} rate-limited in ${seconds} s`);
    assertEquals(replied! + limited!, received);
  },
});

/** A `--fast --prefix OK.` server without a rate limit, and a client
 * socket with a receiver for replies of any size. */
async function prefixServer() {
  const server = await startServerProcess(
    ["--fast", "--quiet", "--rate", "0", "--prefix", "OK."],
    FAST,
  );
  const socket = udpSocket();
  const receiver = new Receiver(socket, 70000);
  const to = { transport: "udp" as const, hostname: "127.0.0.1", port: server.port };
  return {
    server,
    socket,
    receiver,
    to,
    async [Symbol.asyncDispose]() {
      receiver.close();
      socket[Symbol.dispose]();
      await server[Symbol.asyncDispose]();
    },
  };
}

Deno.test({
  name: "server.ts --fast echoes hostile and 65507-byte datagrams whole, never larger",
  ignore: !LINUX,
  async fn() {
    await using fixture = await prefixServer();
    const { server, socket, receiver, to } = fixture;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), async (datagram) => {
        await socket.send(datagram, to);
        const reply = await receiver.next(performance.now() + 1000);
        assertEquals(reply?.data.length, datagram.length + 3);
        // As a client, not a loop: the next request a millisecond on, not
        // at once after this reply (the loop guard's FAST_BOUNCE_MS).
        await new Promise((resolve) => setTimeout(resolve, 1));
      }),
      { numRuns: 1000, seed: 3 },
    );
    await socket.send(new Uint8Array(65504).fill(0x61), to);
    assertEquals((await receiver.next(performance.now() + 2000))?.data.length, 65507);
    // One byte more does not fit with the prefix: no reply, a failed send.
    await socket.send(new Uint8Array(65505), to);
    assertEquals(await receiver.next(performance.now() + 200), undefined);
    const { failed, received } = counters((await server.stop()).stdout);
    assertEquals([failed, received], [1, 1002]);
  },
});

Deno.test({
  name: "server.ts and server.ts --fast log a failed send in the same words",
  ignore: !LINUX,
  async fn() {
    const reasons = [];
    for (const fast of [[], ["--fast"]]) {
      await using server = await startServerProcess(
        [...fast, "--rate", "0", "--prefix", "OK."],
        fast.length ? FAST : {},
      );
      using socket = udpSocket();
      using receiver = new Receiver(socket, 70000);
      const to = { transport: "udp" as const, hostname: "127.0.0.1", port: server.port };
      // 65505 bytes and the prefix do not fit in a datagram: the send fails.
      await socket.send(new Uint8Array(65505), to);
      // The server answers in order: this reply comes after that failure.
      await socket.send(encoder.encode("after"), to);
      assertEquals((await receiver.next(performance.now() + 2000))?.data.length, 8);
      const { stdout } = await server.stop();
      reasons.push(/send failed: (.*)$/m.exec(stdout)?.[1]);
    }
    assertEquals(reasons[1], reasons[0]);
    assertEquals(reasons[0], "Message too long");
  },
});

/** Stops `server` while `send` runs, so that the server finds all that was
 * sent waiting and takes it in bursts (the fast socket's recvmmsg). */
async function whileStopped(server: ServerProcess, send: () => Promise<void>): Promise<void> {
  server.child.kill("SIGSTOP");
  try {
    await send();
  } finally {
    server.child.kill("SIGCONT");
  }
}

Deno.test({
  name:
    "server.ts --fast answers a burst of more than 64 datagrams from several sources, each once, in order, whole",
  ignore: !LINUX,
  async fn() {
    await using server = await startServerProcess(
      ["--fast", "--quiet", "--rate", "0", "--upper"],
      FAST,
    );
    using stack = new DisposableStack();
    const sockets = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
      .map((host) => stack.use(udpSocket(host)));
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port: server.port };
    const perSource = 24;
    const sent: string[][] = sockets.map(() => []);
    await whileStopped(server, async () => {
      for (let i = 0; i < perSource; i++) {
        for (const [s, socket] of sockets.entries()) {
          // A udping request with a new seq, as a -f client sends: the loop
          // guard lets a burst of them through. Lengths vary, 40-339 bytes.
          const text = `ping ${i + 1} 0.000 0000bee${s} `.padEnd(40 + (i * 37 + s * 11) % 300, "x");
          sent[s]!.push(text);
          await socket.send(encoder.encode(text), to);
        }
      }
    });
    const decoder = new TextDecoder();
    for (const [s, socket] of sockets.entries()) {
      using receiver = new Receiver(socket);
      for (const text of sent[s]!) {
        const reply = await receiver.next(performance.now() + 2000);
        assert(reply, `no reply to "${text.slice(0, 24)}" from source ${s}`);
        assertEquals(decoder.decode(reply.data), text.toUpperCase());
      }
      assertEquals(await receiver.next(performance.now() + 100), undefined, "a reply too many");
    }
    const { received, replied } = counters((await server.stop()).stdout);
    assertEquals([received, replied], [4 * perSource, 4 * perSource]);
  },
});

Deno.test({
  name: "server.ts --fast sends the rest of a burst when one reply in it cannot be sent",
  ignore: !LINUX,
  async fn() {
    await using fixture = await prefixServer();
    const { server, socket, receiver, to } = fixture;
    const count = 20;
    const tooLong = 10;
    await whileStopped(server, async () => {
      for (let i = 0; i < count; i++) {
        // 65505 bytes and the prefix do not fit in a datagram: that send fails.
        await socket.send(i === tooLong ? new Uint8Array(65505) : encoder.encode(`burst ${i}`), to);
      }
    });
    const decoder = new TextDecoder();
    for (let i = 0; i < count; i++) {
      if (i === tooLong) continue;
      const reply = await receiver.next(performance.now() + 2000);
      assert(reply, `no reply to "burst ${i}"`);
      assertEquals(decoder.decode(reply.data), `OK.burst ${i}`);
    }
    assertEquals(await receiver.next(performance.now() + 100), undefined, "a reply too many");
    const { received, replied, failed } = counters((await server.stop()).stdout);
    assertEquals([received, replied, failed], [count, count - 1, 1]);
  },
});

Deno.test("serve({ fast }) refuses the impairments it leaves out", async () => {
  await assertRejects(() => serve({ port: 0, fast: true, loss: 0.1 }), TypeError);
  await assertRejects(() => serve({ port: 0, fast: true, delay: 5, reorder: 0.5 }), TypeError);
});
