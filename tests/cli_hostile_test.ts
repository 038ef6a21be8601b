/**
 * Hostile command lines (lib/shared/cli.ts and the scripts' options):
 * times and counts too large or that round to 0, wildcard and scoped
 * hosts, and texts too long for a datagram.
 *
 * The link-local host is tried in a private network namespace
 * (tests/namespace.ts): this file runs itself as
 * `unshare -n deno run tests/cli_hostile_test.ts scoped-host`.
 *
 * @module
 */

import { assertEquals, assertMatch } from "./assert.ts";
import { serve } from "../server.ts";
import { ping } from "../client.ts";
import { portOf, runClient, runScript, udpSocket } from "./helpers.ts";
import { forgingUnavailable, inNamespace, runScenario, spawnServer } from "./namespace.ts";

const decoder = new TextDecoder();
const NO_FORGING = import.meta.main ? undefined : forgingUnavailable();

// ============================================================ 1. huge times

for (
  const [script, args] of [
    ["server.ts", ["--port", "0", "--delay", "2147483648"]],
    // Not 0, though it parses as 0, which would turn the limit off.
    ["server.ts", ["--port", "0", "--rate", "1e-400"]],
    ["client.ts", ["-i", "3000000"]],
    ["client.ts", ["-W", "3000000"]],
    ["client.ts", ["-w", "3000000"]],
    ["client.ts", ["-i", "1e308", "-c", "1"]],
    ["client.ts", ["-c", "1e309"]],
    ["client.ts", ["-c", "Infinity"]],
  ] as const
) {
  Deno.test(`${script} ${args.join(" ")} is refused with one line and exit status 2`, async () => {
    using blackHole = udpSocket();
    const target = script === "client.ts" ? ["127.0.0.1", String(portOf(blackHole))] : [];
    const { code, stdout, stderr } = await runScript(script, [...target, ...args]);
    assertEquals(code, 2, stdout + stderr);
    assertEquals(stdout, "");
    assertMatch(stderr, new RegExp(`^${script}: [^\\n]+\\n$`));
  });
}

// ============================================================ 2. wildcard binds

function canBind(hostname: string): boolean {
  try {
    Deno.listenDatagram({ transport: "udp", hostname, port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

const MAPPED_ANY = "::ffff:0.0.0.0";
const MAPPED_ANY_BINDS = canBind(MAPPED_ANY);
if (!MAPPED_ANY_BINDS && !import.meta.main) {
  console.error(`cli_hostile_test.ts: ignoring --host ${MAPPED_ANY}: this system cannot bind it`);
}

for (const host of ["0.0.0.0", "::", MAPPED_ANY]) {
  Deno.test({
    name: `server.ts --host ${host} says on stderr that it listens on every interface`,
    ignore: host === MAPPED_ANY && !MAPPED_ANY_BINDS,
    async fn() {
      // In a namespace of its own when possible: never reachable from a network.
      await using server = await spawnServer(["--host", host, "-q"], {
        isolated: NO_FORGING === undefined,
      });
      const { code, stderr } = await server.stop();
      assertEquals(code, 0);
      assertMatch(stderr, /notice: listening on every interface/);
    },
  });
}

Deno.test("server.ts --host '' is refused with one line and exit status 2", async () => {
  const { code, stdout, stderr } = await runScript("server.ts", ["--port", "0", "--host", ""]);
  assertEquals(code, 2, stdout + stderr);
  assertMatch(stderr, /^server\.ts: [^\n]+\n$/);
});

// ============================================================ 3. long lines

Deno.test("client.ts --chat reports a 70,000-byte line as not sent and goes on", async () => {
  await using server = await serve({ port: 0 });
  const long = "x".repeat(70_000);
  const { code, stdout, stderr } = await runClient(server.addr.port, ["--chat"], {
    stdin: `first\n${long}\nsecond\n`,
  });
  const lines = stdout.split("\n").filter(Boolean);
  assertEquals(lines.length, 3, stdout + stderr);
  assertMatch(lines[0]!, /^reply from 127\.0\.0\.1:\d+: first$/);
  assertMatch(lines[1]!, /^not sent: 70000 bytes/);
  assertMatch(lines[2]!, /^reply from 127\.0\.0\.1:\d+: second$/);
  // README: exit 0 only when every line was answered.
  assertEquals(code, 1, "a line that was not sent was not answered");
});

Deno.test("client.ts --send with a 70,000-byte text is refused with one line and exit status 2", async () => {
  using blackHole = udpSocket();
  const text = "x".repeat(70_000);
  const target = ["127.0.0.1", String(portOf(blackHole))];
  const { code, stdout, stderr } = await runScript("client.ts", [...target, "--send", text]);
  assertEquals([code, stdout], [2, ""], stderr);
  assertMatch(stderr, /^client\.ts: text must be at most 65507 bytes [^\n]+, got 70000\n$/);
});

Deno.test("client.ts --send refuses a text that {seq} would make too long for a datagram", async () => {
  using blackHole = udpSocket();
  const text = `${"x".repeat(65_500)}{seq}`; // 65,510 bytes by seq 1,000,000,000
  const target = ["127.0.0.1", String(portOf(blackHole))];
  const args = [...target, "--send", text, "-c", "4294967296", "-w", "1"];
  const { code, stderr } = await runScript("client.ts", args);
  assertEquals(code, 2, stderr);
  assertMatch(stderr, /^client\.ts: text must be at most 65507 bytes [^\n]+, got 65510\n$/);
});

// ============================================================ 4. scope ids

/** In the namespace: a server bound to a link-local address with its scope
 * id, pinged there; what the ping got and the server's banner. */
async function scopedHostScenario(): Promise<{ received: number; banner: string }> {
  const output = await new Deno.Command("ip", {
    args: ["-6", "address", "add", "fe80::1/64", "dev", "lo", "nodad"],
    stderr: "piped",
  }).output();
  if (!output.success) throw new Error(`ip: ${decoder.decode(output.stderr)}`);
  await using server = await spawnServer(["--host", "fe80::1%lo"]);
  let received = 0;
  for await (
    const event of ping({ host: "fe80::1%lo", port: server.port, count: 2, interval: 0.05 })
  ) {
    if (event.type === "summary") received = event.summary.received;
  }
  return { received, banner: server.lines[0] ?? "" };
}

Deno.test({
  name: "server.ts --host fe80::1%lo listens on the link-local address of that interface",
  ignore: NO_FORGING !== undefined,
  async fn() {
    const { received, banner } = await inNamespace<{ received: number; banner: string }>(
      import.meta.url,
      "scoped-host",
    );
    assertMatch(banner, /^udping server listening on \[fe80::1\]:\d+ /);
    assertEquals(received, 2);
  },
});

if (import.meta.main) await runScenario({ "scoped-host": scopedHostScenario });
