/**
 * The runtime's floor, for bench/rtt.ts: the fewest lines of Deno that ping
 * or echo over UDP, with nothing of udping in them.
 *
 * - Client: `send`, `await socket.receive(buf)`, `performance.now()` right
 *   after, then sleep the interval with `setTimeout`. Prints one RTT in µs a
 *   line when done.
 * - `--server`: `receive`, `send` back, forever.
 * - `--ffi-server`: the same through the C library (`recvfrom`, `sendto`,
 *   blocking, on the main thread): the floor of a Deno server that uses
 *   FFI, as `server.ts --fast` does.
 *
 * ```sh
 * deno run --allow-net bench/bare_loop.ts HOST PORT COUNT INTERVAL_MS
 * deno run --allow-net bench/bare_loop.ts --server PORT
 * deno run --allow-ffi bench/bare_loop.ts --ffi-server PORT
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

/** `--ffi-server`: one `recvfrom` and one `sendto` per datagram, as the C
 * echo does, from JavaScript (Linux, IPv4 loopback). */
function serveFfi(port: number): void {
  const libc = Deno.dlopen("libc.so.6", {
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    recvfrom: {
      parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"],
      result: "isize",
    },
    sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  });
  const AF_INET = 2;
  const SOCK_DGRAM = 2;
  const fd = libc.symbols.socket(AF_INET, SOCK_DGRAM, 0);
  const local = new Uint8Array(16);
  const view = new DataView(local.buffer);
  view.setUint16(0, AF_INET, true);
  view.setUint16(2, port);
  local.set([127, 0, 0, 1], 4);
  if (fd < 0 || libc.symbols.bind(fd, local, local.length) < 0) throw new Error("cannot bind");
  const buffer = new Uint8Array(65536);
  const peer = new Uint8Array(128);
  const peerLength = new Uint32Array(1);
  for (;;) {
    peerLength[0] = peer.length;
    const n = libc.symbols.recvfrom(fd, buffer, 65536n, 0, peer, new Uint8Array(peerLength.buffer));
    if (n > 0) libc.symbols.sendto(fd, buffer, BigInt(n), 0, peer, peerLength[0]!);
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
  else if (args[0] === "--ffi-server") serveFfi(Number(args[1]));
  else await ping(args[0] ?? "127.0.0.1", Number(args[1]), Number(args[2]), Number(args[3]));
}
