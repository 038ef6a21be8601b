/**
 * Hostile input for the outbox (lib/server/outbox.ts): delayed replies
 * that would hold more than its caps allow, in count, in bytes, and in the
 * memory of a server.ts process.
 *
 * @module
 */

import { assert, assertEquals } from "./assert.ts";
import { serve, type Server } from "../server.ts";
import { udpSocket, waitUntil } from "./helpers.ts";
import { here, LINUX, pause, spawnServer, summaryCounters } from "./namespace.ts";
import { MAX_HELD_BYTES, MAX_HELD_REPLIES } from "../settings.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ============================================================ 1. held replies

/** Sends `count` datagrams of `size` bytes to `server`, each once the
 * previous one has arrived (so the kernel drops none). */
async function sendPaced(server: Server, count: number, size: number): Promise<void> {
  using socket = udpSocket();
  const data = new Uint8Array(size).fill(0x41);
  for (let i = 0; i < count; i++) {
    const before = server.stats.received;
    data.set(encoder.encode(`${i} `)); // no two alike: not a loop
    await socket.send(data, here(server.addr.port));
    await waitUntil(() => server.stats.received > before, `datagram ${i} to arrive`);
  }
}

Deno.test("serve() holds at most MAX_HELD_BYTES of delayed replies and counts the rest as overflow", async () => {
  await using server = await serve({ port: 0, delay: 10_000, rate: 0 });
  const size = 60_000;
  const count = Math.ceil(MAX_HELD_BYTES / size) + 20;
  await sendPaced(server, count, size);
  const { held, overflow } = server.stats;
  assert(held * size <= MAX_HELD_BYTES, `${held} replies of ${size} bytes held`);
  assert(overflow >= count - Math.floor(MAX_HELD_BYTES / size), `overflow ${overflow}`);
  assertEquals(held + overflow, count);
});

Deno.test("serve() holds at most MAX_HELD_REPLIES delayed replies and counts the rest as overflow", async () => {
  await using server = await serve({ port: 0, delay: 10_000, rate: 0 });
  const count = MAX_HELD_REPLIES + 50;
  // From eight addresses, each within its share of the cap (outbox_test.ts).
  const sockets = Array.from({ length: 8 }, (_, i) => udpSocket(`127.0.0.${i + 1}`));
  using _sockets = { [Symbol.dispose]: () => sockets.forEach((socket) => socket.close()) };
  for (let sent = 0; sent < count;) {
    // Batches small enough for the socket's receive buffer.
    const batch = Math.min(100, count - sent);
    for (let i = 0; i < batch; i++, sent++) {
      await sockets[sent % 8]!.send(encoder.encode(`held ${sent}`), here(server.addr.port));
    }
    await waitUntil(() => server.stats.received >= sent, () => `${sent} datagrams to arrive`);
  }
  assert(server.stats.held <= MAX_HELD_REPLIES, `held ${server.stats.held}`);
  assertEquals(server.stats.overflow, count - MAX_HELD_REPLIES);
});

/** A process's resident memory in MB: VmRSS of /proc/<pid>/status (read
 * by `cat`: Deno asks for --allow-all to read another process's /proc). */
function residentMB(pid: number): number {
  const output = new Deno.Command("cat", { args: [`/proc/${pid}/status`], stdout: "piped" })
    .outputSync();
  const match = /VmRSS:\s+(\d+) kB/.exec(decoder.decode(output.stdout));
  assert(match, `no VmRSS for process ${pid}`);
  return Number(match[1]) / 1024;
}

Deno.test({
  name: "server.ts --delay 10000 stays under 100 MB while 300 MB of replies would be held",
  ignore: !LINUX,
  async fn() {
    await using server = await spawnServer(["--delay", "10000", "--rate", "0", "-q"]);
    using socket = udpSocket();
    const data = new Uint8Array(60_000).fill(0x42);
    let peak = residentMB(server.pid);
    // 300 MB of replies if nothing capped them; the overflow costs nothing.
    for (let i = 0; i < 5000; i++) {
      data.set(encoder.encode(`${i} `));
      await socket.send(data, here(server.port));
      // Two at a time: a datagram this size leaves room for few more in the
      // server's receive buffer.
      if (i % 2 === 1) await pause(1);
      if (i % 100 === 99) peak = Math.max(peak, residentMB(server.pid));
    }
    peak = Math.max(peak, residentMB(server.pid));
    const { stdout } = await server.stop();
    const counters = summaryCounters(stdout);
    assert(counters.received! * 60_000 > 100 * 2 ** 20, `only ${counters.received} arrived`);
    assert(peak < 100, `server RSS reached ${peak.toFixed(1)} MB`);
    assert(counters.overflow! > 0, `no overflow: ${stdout.slice(-300)}`);
  },
});
