/**
 * udping against peers nobody here wrote: socat and Python 3's socket
 * module, as a UDP echo server and as a sender. `.ci/run` installs both.
 */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import { ping, type PingSummary } from "../client.ts";
import { serve } from "../server.ts";
import {
  collect,
  ofType,
  portOf,
  ROOT,
  runClient,
  startPythonEcho,
  summaryOf,
  udpSocket,
} from "./helpers.ts";

function installed(command: string): boolean {
  try {
    return new Deno.Command(command, { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const PYTHON = installed("python3") ? "python3" : undefined;
const SOCAT = installed("socat");

/** A free UDP port, for peers that cannot report the one they bound. */
function freePort(): number {
  using probe = udpSocket();
  return portOf(probe);
}

/** Waits until something answers on `port` (socat takes a moment to
 * bind): an echo, or what `answered` looks for in a one-ping run. */
async function waitForEcho(
  port: number,
  answered = (summary: PingSummary) => summary.received === 1,
): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const events = await collect(ping({ port, count: 1, timeout: 0.1 }));
    if (answered(summaryOf(events))) return;
  }
  throw new Error(`nothing answered on port ${port}`);
}

/** socat answering every datagram with `pong`, on a free port, once it
 * answers: a service that answers, but not with an echo. `await using`
 * stops it. */
async function socatPong() {
  const port = freePort();
  const child = new Deno.Command("socat", {
    args: [`UDP4-RECVFROM:${port},bind=127.0.0.1,fork`, "SYSTEM:echo pong"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitForEcho(port, (summary) => summary.stray > 0);
  } catch (error) {
    await child[Symbol.asyncDispose]();
    throw error;
  }
  return { port, [Symbol.asyncDispose]: () => child[Symbol.asyncDispose]() };
}

Deno.test({
  name: "ping() gets every reply from socat running as a UDP echo server",
  ignore: !SOCAT,
  async fn() {
    const port = freePort();
    // A child process's disposal kills it (SIGTERM) and waits for it.
    await using _socat = new Deno.Command("socat", {
      args: [`UDP4-RECVFROM:${port},bind=127.0.0.1,fork`, "EXEC:cat"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForEcho(port);
    const events = await collect(ping({ port, count: 5, interval: 0.02, size: 200 }));
    assertEquals(ofType(events, "reply").length, 5);
    assertEquals(summaryOf(events).stray, 0);
    // socat returns the stamp request untouched: the split stays unknown.
    assertEquals(summaryOf(events).lossSplit, null);
  },
});

Deno.test({
  name:
    "ping() with verbose shows what a service that answers 'pong' sent, as stray with no record",
  ignore: !SOCAT,
  async fn() {
    await using socat = await socatPong();
    const events = await collect(
      ping({ port: socat.port, count: 3, interval: 0.05, timeout: 1, verbose: true }),
    );
    const strays = ofType(events, "stray");
    assert(strays.length >= 1, "no pong came back");
    for (const stray of strays) {
      assertEquals([stray.reason, stray.bytes, stray.payload], ["no-record", 5, "pong\\n"]);
    }
    const summary = summaryOf(events);
    assertEquals(summary.received, 0);
    assertEquals([summary.stray, summary.strayByReason["no-record"]], [
      strays.length,
      strays.length,
    ]);
  },
});

Deno.test({
  name:
    "client.ts -v against a service that answers 'pong' shows each datagram and ends with 'not an echo'",
  ignore: !SOCAT,
  async fn() {
    await using socat = await socatPong();
    const result = await runClient(socat.port, ["-c", "3", "-i", "0.05", "-W", "1", "-v"]);
    assertEquals(result.code, 1, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    const shown = lines.flatMap((line, index) =>
      line.endsWith("stray (no ping record: not an echo)") ? [lines[index + 1]] : []
    );
    // socat starts a shell per datagram: a last pong may come after the run.
    const counted = Number(/, stray (\d+)$/m.exec(result.stdout)?.[1]);
    assert(counted >= 1, result.stdout);
    assertEquals(shown, Array(counted).fill('    "pong\\n"'), result.stdout);
    assertEquals(
      lines.at(-1),
      `127.0.0.1:${socat.port}: answering, but not with an echo (${counted} ${
        counted === 1 ? "datagram" : "datagrams"
      } with no ping record; -v shows them)`,
    );
  },
});

for (const upper of [false, true]) {
  Deno.test({
    name: `ping() gets every reply from the textbook Python ${
      upper ? "uppercasing" : "echo"
    } server`,
    ignore: !PYTHON,
    async fn() {
      await using server = await startPythonEcho(upper ? ["--upper"] : []);
      const events = await collect(ping({ port: server.port, count: 5, interval: 0.02 }));
      assertEquals(ofType(events, "reply").map((reply) => reply.seq), [1, 2, 3, 4, 5]);
      assertEquals(summaryOf(events).lossSplit, null);
    },
  });
}

Deno.test({
  name: "serve() answers a datagram sent by socat",
  ignore: !SOCAT,
  async fn() {
    await using server = await serve({ port: 0, mode: "upper" });
    const socat = new Deno.Command("socat", {
      args: ["-t", "0.5", "-", `UDP4:127.0.0.1:${server.addr.port}`],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const writer = socat.stdin.getWriter();
    await writer.write(new TextEncoder().encode("hello from socat\n"));
    await writer.close();
    const output = await socat.output();
    assertEquals(new TextDecoder().decode(output.stdout), "HELLO FROM SOCAT\n");
  },
});

for (const host of ["127.0.0.1", "::1"]) {
  Deno.test({
    name: `serve() answers a datagram sent by Python 3 over ${host}`,
    ignore: !PYTHON,
    async fn() {
      await using server = await serve({ host, port: 0, prefix: "OK..." });
      const output = await new Deno.Command(PYTHON!, {
        args: [`${ROOT}tests/peers/udp_send.py`, host, String(server.addr.port), "ping 1"],
        stdout: "piped",
      }).output();
      assertMatch(new TextDecoder().decode(output.stdout), /^OK\.\.\.ping 1\n$/);
    },
  });
}
