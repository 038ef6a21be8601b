/**
 * The runtime's floor, for bench/rtt.ts: the fewest lines of Deno that ping
 * or echo over UDP, with nothing of udping in them.
 *
 * - Client: `send`, `await socket.receive(buf)`, `performance.now()` right
 *   after, then sleep the interval with `setTimeout`. Prints one RTT in µs a
 *   line when done.
 * - `--server`: `receive`, `send` back, forever.
 *
 * ```sh
 * deno run --allow-net bench/bare_loop.ts HOST PORT COUNT INTERVAL_MS
 * deno run --allow-net bench/bare_loop.ts --server PORT
 * ```
 *
 * @module
 */

async function serve(port: number): Promise<void> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port });
  const buffer = new Uint8Array(65536);
  for (;;) {
    const [data, peer] = await socket.receive(buffer);
    await socket.send(data, peer);
  }
}

/** A 64-byte udping request, so that udping's server answers it too. */
function request(seq: number): Uint8Array {
  const head = `PING ${seq} ${Date.now().toFixed(3)} 0000BEEF `;
  return new TextEncoder().encode(
    (head + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ".repeat(2)).slice(0, 64),
  );
}

async function ping(hostname: string, port: number, count: number, intervalMs: number) {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const target: Deno.NetAddr = { transport: "udp", hostname, port };
  const buffer = new Uint8Array(65536);
  const rtts: number[] = [];
  // A lost reply would hang the loop: give up after 2 s without progress.
  let replies = -1;
  const watchdog = setInterval(() => {
    if (replies === rtts.length) {
      console.error("bare_loop: no reply for 2 s");
      Deno.exit(1);
    }
    replies = rtts.length;
  }, 2000);
  for (let seq = 1; seq <= count; seq++) {
    const data = request(seq);
    const sent = performance.now();
    await socket.send(data, target);
    await socket.receive(buffer);
    rtts.push((performance.now() - sent) * 1000);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  clearInterval(watchdog);
  socket.close();
  console.log(rtts.map((rtt) => rtt.toFixed(3)).join("\n"));
}

if (import.meta.main) {
  const args = Deno.args;
  if (args[0] === "--server") await serve(Number(args[1]));
  else await ping(args[0] ?? "127.0.0.1", Number(args[1]), Number(args[2]), Number(args[3]));
}
