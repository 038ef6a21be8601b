/**
 * Which clock times a round trip: the kernel's receive timestamps through
 * the C library's socket (`--allow-ffi`, Linux), or the runtime's the
 * moment a reply is handed over. RTTs are compared within one run, side
 * by side; no test asserts an absolute time.
 */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import { runScript, startServerProcess } from "./helpers.ts";
import { ping, type PingEvent } from "../client.ts";
import { serve } from "../server.ts";
import { kernelStampsAvailable } from "../lib/ffi/stamped_socket.ts";

const noKernelStamps = kernelStampsAvailable()
  ? undefined
  : "kernel timestamps need Linux and --allow-ffi";
if (noKernelStamps) console.log(`clock tests skipped: ${noKernelStamps}`);

/** A port nobody listens on: bound, noted, closed. */
function closedPort(): number {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const { port } = socket.addr as Deno.NetAddr;
  socket.close();
  return port;
}

/** Keeps this process busy for `ms`, as a loaded client would be. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Nothing: the event loop is blocked while the reply arrives.
  }
}

Deno.test({
  name: "kernel timestamps time the network, not a client that was busy when the reply came",
  ignore: noKernelStamps !== undefined,
  async fn() {
    await using server = await startServerProcess(["--rate", "0", "-q"]);
    // After each send the client is busy for 20 ms, so every reply waits in
    // the kernel: the runtime's clock times the client's delay, the
    // kernel's receive time does not.
    const run = async (kernelStamps: boolean) => {
      const rtts: number[] = [];
      for await (
        const event of ping({ port: server.port, count: 8, interval: 0.05, kernelStamps })
      ) {
        if (event.type === "sent") busy(20);
        if (event.type === "reply") rtts.push(event.rtt);
        if (event.type === "summary") {
          assertEquals(event.summary.clock, kernelStamps ? "kernel" : "runtime");
        }
      }
      assertEquals(rtts.length, 8);
      return rtts;
    };
    const kernel = await run(true);
    const runtime = await run(false);
    assert(
      kernel.every((rtt) => rtt > 0 && rtt < 10),
      `kernel RTTs ${kernel.join(", ")} ms`,
    );
    assert(runtime.every((rtt) => rtt >= 20), `runtime RTTs ${runtime.join(", ")} ms`);
  },
});

Deno.test({
  name: "the header and --json name the clock",
  ignore: noKernelStamps !== undefined,
  async fn() {
    await using server = await serve({ port: 0 });
    const args = ["127.0.0.1", String(server.addr.port), "-c", "1"];
    const kernel = await runScript("client.ts", args, {
      permissions: ["--allow-net", "--allow-ffi"],
    });
    assertMatch(
      kernel.stdout,
      /^PING 127\.0\.0\.1 \(127\.0\.0\.1\) port \d+ \(udp\): 64 data bytes, kernel timestamps$/m,
    );
    const runtime = await runScript("client.ts", args);
    assertMatch(
      runtime.stdout,
      /^PING 127\.0\.0\.1 \(127\.0\.0\.1\) port \d+ \(udp\): 64 data bytes$/m,
    );
    const json = await runScript("client.ts", [...args, "--json"], {
      permissions: ["--allow-net", "--allow-ffi"],
    });
    assertEquals(JSON.parse(json.stdout).clock, "kernel");
    assertEquals(
      JSON.parse((await runScript("client.ts", [...args, "--json"])).stdout).clock,
      "runtime",
    );
  },
});

Deno.test({
  name:
    "a closed port: with --allow-ffi, ping's Port Unreachable lines, +N errors, exit 1; without, timeouts",
  ignore: noKernelStamps !== undefined,
  async fn() {
    const port = closedPort();
    const args = ["127.0.0.1", String(port), "-c", "3", "-i", "0.05", "-W", "0.3"];
    const ffi = await runScript("client.ts", args, { permissions: ["--allow-net", "--allow-ffi"] });
    assertEquals(ffi.code, 1, ffi.stderr);
    const lines = ffi.stdout.split("\n");
    for (const seq of [1, 2, 3]) {
      assert(
        lines.includes(`From 127.0.0.1:${port} icmp_seq=${seq} Destination Port Unreachable`),
        ffi.stdout,
      );
    }
    assertMatch(ffi.stdout, /^3 packets transmitted, 0 received, \+3 errors, 100% packet loss/m);
    const plain = await runScript("client.ts", args);
    assertEquals(plain.code, 1);
    assertEquals(
      plain.stdout.split("\n").filter((line) => line.startsWith("Request timeout")).length,
      3,
    );
  },
});

/** The sockets this process holds open, as the kernel lists them. */
async function openSockets(): Promise<number> {
  const { stdout } = await new Deno.Command("ls", {
    args: ["-l", `/proc/${Deno.pid}/fd`],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(stdout).split("\n").filter((line) => line.includes("socket:"))
    .length;
}

Deno.test({
  name: "100 runs of ping() with kernel timestamps leave no socket open, ended early or not",
  ignore: noKernelStamps !== undefined,
  async fn() {
    await using server = await serve({ port: 0, rate: 0 });
    const before = await openSockets();
    const closed = closedPort();
    for (let run = 0; run < 100; run++) {
      const port = run % 3 === 2 ? closed : server.addr.port;
      const abort = new AbortController();
      const events: PingEvent[] = [];
      for await (
        const event of ping({
          port,
          count: 2,
          interval: 0.001,
          timeout: 0.05,
          kernelStamps: true,
          signal: abort.signal,
        })
      ) {
        events.push(event);
        if (run % 3 === 1) abort.abort(); // Ctrl-C in the middle of a run
      }
      assertEquals(events.at(-1)?.type, "summary");
    }
    assertEquals(await openSockets(), before);
  },
});

Deno.test("without --allow-ffi the client uses the runtime's socket and says nothing about it", async () => {
  const result = await runScript("client.ts", ["127.0.0.1", "9", "-c", "1", "-W", "0.2"], {
    permissions: ["--allow-net", "--no-prompt"],
  });
  assertEquals(result.stderr, "");
  assertMatch(result.stdout, /^PING 127\.0\.0\.1 \(127\.0\.0\.1\) port 9 \(udp\): 64 data bytes$/m);
});
