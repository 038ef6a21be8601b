/**
 * Hostile servers against the client (client.ts): replies with terminal
 * escapes, lying stamps, replies sent before their requests, and a run
 * too fast to stop by Ctrl-C.
 *
 * @module
 */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import { serve } from "../server.ts";
import { ping, type PingEvent, type PingSummary } from "../client.ts";
import {
  customServer,
  portOf,
  ROOT,
  runClient,
  runScript,
  udpSocket,
  waitUntil,
} from "./helpers.ts";
import { here, pause } from "./namespace.ts";
import { encodeRequest, formatToken } from "../protocol.ts";
import { summaryLines } from "../lib/client/report.ts";
import { kernelStampsAvailable } from "../lib/ffi/stamped_socket.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Runs a script with raw bytes out, for tests that look at every byte. */
async function runRaw(
  args: string[],
  stdin: string,
): Promise<{ code: number; stdout: Uint8Array; stderr: Uint8Array }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", ...args],
    cwd: ROOT,
    signal: AbortSignal.timeout(30_000),
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(encoder.encode(stdin));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  return { code, stdout, stderr };
}

// ============================================================ 1. escaped replies

/** What a hostile server puts in its replies: a terminal title (OSC 0),
 * a clipboard write (OSC 52), clear screen, a bell, C1 CSI as a raw byte
 * and in UTF-8, a carriage return, NUL and DEL. */
const HOSTILE = Uint8Array.from([
  ...encoder.encode("\x1b]0;pwned\x07\x1b]52;c;cHduZWQ=\x07\x1b[2J\x07"),
  0x9b,
  ...encoder.encode("31m\u009b1;1H\r\x00\x7f end"),
]);

/** The bytes that must never reach a terminal: every C0 control but the
 * newline, DEL, and the C1 CSI byte. */
function forbiddenBytes(bytes: Uint8Array): string[] {
  const found = new Set<string>();
  for (const byte of bytes) {
    if ((byte < 0x20 && byte !== 0x0a) || byte === 0x7f || byte === 0x9b) {
      found.add(`0x${byte.toString(16).padStart(2, "0")}`);
    }
  }
  return [...found];
}

Deno.test("client.ts --chat prints a hostile server's escape sequences escaped", async () => {
  await using hostile = customServer(async (socket, _data, from) => {
    await socket.send(HOSTILE, from);
  });
  const { code, stdout, stderr } = await runRaw(
    ["client.ts", "127.0.0.1", String(hostile.port), "--chat"],
    "hello\n",
  );
  const text = decoder.decode(stdout);
  assertEquals(code, 0, text + decoder.decode(stderr));
  assertMatch(text, /reply from 127\.0\.0\.1:\d+: .*pwned/);
  assertEquals(forbiddenBytes(stdout), [], text);
  assertEquals(forbiddenBytes(stderr), []);
});

Deno.test("client.ts -v prints a hostile server's reply escaped, in the padding and as a prefix", async () => {
  let replies = 0;
  await using hostile = customServer(async (socket, data, from) => {
    // The record (PING seq sent token) must stay for the reply to count.
    const text = decoder.decode(data);
    const record = text.split(" ").slice(0, 4).join(" ");
    const reply = replies++ % 2 === 0
      ? [...HOSTILE, ...encoder.encode(text)] // a prefix
      : [...encoder.encode(`${record} `), ...HOSTILE]; // in the padding
    await socket.send(Uint8Array.from(reply), from);
  });
  const { code, stdout, stderr } = await runRaw(
    ["client.ts", "127.0.0.1", String(hostile.port), "-c", "4", "-i", "0.05", "-v"],
    "",
  );
  const text = decoder.decode(stdout);
  assertEquals(code, 0, text + decoder.decode(stderr));
  assertMatch(text, /4 received/);
  assertMatch(text, /pwned/);
  assertEquals(forbiddenBytes(stdout), [], text);
  assertEquals(forbiddenBytes(stderr), []);
});

// ============================================================ 2. forged stamps

/** A hostile "server" that echoes each request with the stamp that
 * `stampFor(seq)` writes over the start of its padding. */
function stampingServer(stampFor: (seq: number) => string) {
  return customServer(async (socket, data, from) => {
    const reply = data.slice();
    const text = decoder.decode(data);
    const fields = text.split(" ");
    const paddingAt = fields.slice(0, 4).join(" ").length + 1;
    reply.set(encoder.encode(stampFor(Number(fields[1]))), paddingAt);
    await socket.send(reply, from);
  });
}

const LYING_STAMPS: Record<string, (seq: number) => string> = {
  "a count of 0": () => "=0;",
  "a count that goes backwards": (seq) => `=${seq < 3 ? seq : 1};`,
  "a count past the requests sent": (seq) => `=${seq + 5};`,
  "the same count of 1 on every reply": () => "=1;",
  "a hold longer than the round trip": (seq) => `=${seq},${Date.now().toFixed(3)},9999999999;`,
};

for (const [lie, stampFor] of Object.entries(LYING_STAMPS)) {
  Deno.test(`ping() reports the loss split and server time as unknown for ${lie}`, async () => {
    await using hostile = stampingServer(stampFor);
    const events: PingEvent[] = [];
    for await (
      const event of ping({ port: hostile.port, count: 5, interval: 0.02, size: 100 })
    ) {
      events.push(event);
    }
    const summary = (events.at(-1) as { summary: PingSummary }).summary;
    assertEquals(summary.received, 5);
    assertEquals(
      { lossSplit: summary.lossSplit, serverTime: summary.serverTime },
      { lossSplit: null, serverTime: null },
    );
    assert(summary.stampProblem, "no notice says why the stamps were not believed");
    const text = summaryLines(summary).join("\n");
    assertMatch(text, /unknown \(/);
    assertEquals(/lost upstream \d/.test(text), false, text);
  });
}

Deno.test("client.ts --json says why lying stamps were not believed", async () => {
  await using hostile = stampingServer(() => "=1;");
  const { code, stdout } = await runClient(hostile.port, ["-c", "3", "-i", "0.02", "--json"]);
  assertEquals(code, 0);
  const document = JSON.parse(stdout);
  const summary = document.summary ?? document;
  assertEquals([summary.lossSplit, summary.serverTime], [null, null], stdout);
  assertEquals(typeof summary.stampProblem, "string", stdout);
});

Deno.test("20,000 fresh tokens pushed at the server do not make a real client's loss split wrong", async () => {
  await using server = await serve({ port: 0, rate: 0 });
  using pusher = udpSocket();
  const events: PingEvent[] = [];
  const run = ping({ port: server.addr.port, count: 3, interval: 0.05, timeout: 10, size: 100 });
  for await (const event of run) {
    events.push(event);
    if (event.type !== "reply" || event.seq !== 1) continue;
    // Between the first and the second request: enough other runs' tokens
    // to push this run's out of the server's memory.
    for (let sent = 0; sent < 20_000;) {
      for (let i = 0; i < 100; i++, sent++) {
        const request = encodeRequest({
          seq: 1,
          sent: Date.now(),
          token: formatToken(0x10000 + sent),
          size: 64,
          stamp: true,
        });
        await pusher.send(request, here(server.addr.port));
      }
      await waitUntil(() => server.stats.received >= sent + 1, `${sent} pushed requests`);
    }
  }
  const summary = (events.at(-1) as { summary: PingSummary }).summary;
  assertEquals(summary.received, 3);
  const split = summary.lossSplit;
  assert(
    split === null || (split.upstream === 0 && split.downstream === 0),
    `nothing was lost, yet: ${summaryLines(summary).join("\n")}`,
  );
  if (split === null) assert(summary.stampProblem, "the split is unknown with no reason given");
});

// ============================================================ 3. Ctrl-C

Deno.test("client.ts -i 0.001 -c 2000000 stops within a second of Ctrl-C, with its summary", async () => {
  using blackHole = udpSocket();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "client.ts",
      "127.0.0.1",
      String(portOf(blackHole)),
      "-i",
      "0.001",
      "-c",
      "2000000",
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let stdout = "";
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) stdout += chunk;
  })();
  await waitUntil(() => stdout.includes("PING "), "the client's first line");
  await pause(300);
  const signalled = performance.now();
  child.kill("SIGINT");
  const status = await child.status;
  const took = performance.now() - signalled;
  await reading;
  assert(took < 1500, `it took ${took.toFixed(0)} ms to stop`);
  assertEquals(status.signal, null, `killed by ${status.signal}: ${await stderr}`);
  assertMatch(stdout, /\d+ packets transmitted/);
});

// ============================================================ 4. replies before requests

/** A hostile server that answers each request and, in the same breath,
 * the next seq's request, which has not been sent yet (seq and token are
 * guessable). */
function guessingServer() {
  return customServer(async (socket, data, from) => {
    const text = decoder.decode(data);
    const next = text.replace(/^PING (\d+)/, (_, seq) => `PING ${Number(seq) + 1}`);
    await Promise.all([socket.send(data, from), socket.send(encoder.encode(next), from)]);
  });
}

/** The path of every negative number in `value`. */
function negativeFigures(value: unknown, path = ""): string[] {
  if (typeof value === "number") return value < 0 ? [`${path} = ${value}`] : [];
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([key, inner]) => negativeFigures(inner, `${path}.${key}`));
}

const KERNEL_STAMPS = kernelStampsAvailable();

for (const [clock, kernelStamps] of [["runtime", false], ["kernel", true]] as const) {
  for (const flood of [true, false]) {
    const how = flood ? "-f" : "-i 0.05";
    Deno.test({
      name:
        `ping() ${how} with the ${clock} clock counts a reply sent before its request as stray, never as a round trip`,
      ignore: kernelStamps && !KERNEL_STAMPS,
      async fn() {
        await using hostile = guessingServer();
        const options = flood ? { flood: true } : { interval: 0.05 };
        const events: PingEvent[] = [];
        for await (
          const event of ping({ port: hostile.port, count: 20, kernelStamps, ...options })
        ) {
          events.push(event);
        }
        const summary = (events.at(-1) as { summary: PingSummary }).summary;
        assertEquals(summary.clock, clock);
        const detail = summaryLines(summary).join("\n");
        assertEquals(negativeFigures(summary), [], detail);
        assertEquals(summary.received, 20, detail);
        const { "before-request": before, "unknown-seq": unknown } = summary.strayByReason;
        if (flood) {
          // -f sends each request as soon as the previous reply is in, so
          // the guess for it is read after it went out. A guess that also
          // arrived after it cannot be told from the reply; one that
          // arrived before is, by its kernel receive time.
          if (kernelStamps) assert(before > 0, detail);
          return;
        }
        // With -i 0.05 each guess comes 50 ms ahead: not one is a reply.
        assertEquals([summary.duplicates, summary.stray, before + unknown], [0, 20, 20], detail);
      },
    });
  }
}

Deno.test({
  name:
    "client.ts -f --json with kernel timestamps prints no negative figure against a guessing server",
  ignore: !KERNEL_STAMPS,
  async fn() {
    await using hostile = guessingServer();
    const { code, stdout, stderr } = await runScript(
      "client.ts",
      ["127.0.0.1", String(hostile.port), "-f", "-c", "20", "--json"],
      { permissions: ["--allow-net", "--allow-ffi"] },
    );
    assertEquals(code, 0, stderr);
    const document = JSON.parse(stdout);
    assertEquals(negativeFigures(document), [], stdout);
    assertEquals((document.summary ?? document).received, 20, stdout);
  },
});
