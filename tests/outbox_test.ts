/**
 * The outbox: a send that fails is counted once, and the shares of the
 * held-reply cap, over loopback (a flood of delayed replies from the ports
 * of one address cannot take the room of another client or address).
 *
 * @module
 */

import { assertEquals, assertMatch } from "./assert.ts";
import { serve, type Server } from "../server.ts";
import { Receiver } from "../lib/shared/socket.ts";
import { Outbox } from "../lib/server/outbox.ts";
import { newServerStats } from "../lib/server/verdict.ts";
import {
  MAX_HELD_REPLIES,
  MAX_HELD_REPLIES_PER_ADDRESS,
  MAX_HELD_REPLIES_PER_CLIENT,
} from "../settings.ts";
import { udpSocket, WAIT_MS, waitUntil } from "./helpers.ts";

const encoder = new TextEncoder();
/** Long enough that no held reply leaves while a test floods. */
const DELAY_MS = 5_000;

Deno.test("Outbox counts a request whose duplicate cannot be sent once, as replied", async () => {
  const stats = newServerStats();
  const notes: string[] = [];
  let sends = 0;
  const outbox = new Outbox(() => {
    if (++sends === 2) throw new Deno.errors.ConnectionRefused("refused");
  }, {
    prefixLength: 0,
    stats,
    clock: Date.now,
    sent: () => {},
    note: (_, text) => notes.push(text),
  });
  const to = { transport: "udp" as const, hostname: "127.0.0.1", port: 40000 };
  const fate = { drop: false, delay: 0, duplicate: true, reorder: false };
  await outbox.send(encoder.encode("twice"), to, fate, undefined);
  assertEquals([stats.replied, stats.failed, stats.duplicated, sends], [1, 0, 0, 2]);
  assertMatch(notes.join("\n"), /send failed/);
});

/** Sends `count` distinct datagrams to `server`, round robin over
 * `sockets`, in batches that the server's receive buffer holds, each batch
 * once the previous one has arrived. */
async function flood(server: Server, sockets: Deno.DatagramConn[], count: number): Promise<void> {
  const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: server.addr.port };
  const start = server.stats.received;
  for (let sent = 0; sent < count;) {
    const batch = Math.min(100, count - sent);
    for (let i = 0; i < batch; i++, sent++) {
      await sockets[sent % sockets.length]!.send(encoder.encode(`held ${sent}`), to);
    }
    await waitUntil(
      () => server.stats.received - start >= sent,
      () => `${sent} datagrams to arrive`,
    );
  }
}

Deno.test("serve() gives each address its share of held replies: 8 ports of 127.0.0.1 flood --delay, 127.0.0.2 loses nothing", async () => {
  await using server = await serve({ port: 0, delay: DELAY_MS, rate: 0 });
  const ports = Array.from({ length: 8 }, () => udpSocket("127.0.0.1"));
  using _ports = { [Symbol.dispose]: () => ports.forEach((socket) => socket.close()) };
  // More than the whole cap, each port under its own share.
  const count = MAX_HELD_REPLIES + 1_000;
  await flood(server, ports, count);

  // Loopback answers on all of 127/8: another address, on this machine.
  using other = udpSocket("127.0.0.2");
  const pings = 20;
  await flood(server, [other], pings);
  const replies = new Set<string>();
  using receiver = new Receiver(other);
  const deadline = performance.now() + DELAY_MS + WAIT_MS;
  while (replies.size < pings) {
    const reply = await receiver.next(deadline);
    if (reply === undefined) break;
    replies.add(new TextDecoder().decode(reply.data));
  }
  assertEquals(replies.size, pings, `127.0.0.2 had ${replies.size} of ${pings} replies`);
  assertEquals(server.stats.overflow, count - MAX_HELD_REPLIES_PER_ADDRESS);
});

Deno.test("serve() gives each client its share of held replies: past one port's, another port of its address is held", async () => {
  await using server = await serve({ port: 0, delay: DELAY_MS, rate: 0 });
  using busy = udpSocket("127.0.0.1");
  const count = MAX_HELD_REPLIES_PER_CLIENT + 100;
  await flood(server, [busy], count);
  assertEquals(server.stats.held, MAX_HELD_REPLIES_PER_CLIENT);
  assertEquals(server.stats.overflow, 100);

  using quiet = udpSocket("127.0.0.1");
  await flood(server, [quiet], 10);
  assertEquals(server.stats.held, MAX_HELD_REPLIES_PER_CLIENT + 10);
  assertEquals(server.stats.overflow, 100);
});
