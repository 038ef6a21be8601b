/**
 * Tests of lib/client/warm_up.ts and lib/server/warm_up.ts: a fresh
 * client's and a fresh server's first round trips are timed like the later
 * ones, and the warm-ups that make them so put no datagram on the wire.
 *
 * The timing tests compare medians over several fresh processes against a
 * generous ratio (the first round trip took about ten times the others
 * before the warm-up), never an absolute time.
 *
 * @module
 */

import { ping } from "../client.ts";
import { serve } from "../server.ts";
import { encodeRequest } from "../protocol.ts";
import { openSocket, Receiver } from "../lib/shared/socket.ts";
import { assert, assertEquals } from "./assert.ts";
import {
  collect,
  noNamespace,
  ROOT,
  runClient,
  startServerProcess,
  summaryOf,
  WAIT_MS,
} from "./helpers.ts";

/** Fresh processes per timing test, and pings in each. */
const RUNS = 7;
const COUNT = 10;
/** The first and second round trips' median may be this many times the
 * median of the others: above the noise of a busy machine (up to 2× seen),
 * below the runtime's warm-up (the client's 7×, the server's 3–5× before
 * it was done first). */
const RATIO = 2.5;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

/** The verdict on RUNS runs of COUNT round trips (ms, index 0 for seq 1):
 * the ratios of seq 1's and seq 2's median to the median of the rest. */
function warmUpRatios(runs: number[][]): [number, number] {
  const rest = median(runs.flatMap((run) => run.slice(2)));
  return [median(runs.map((run) => run[0]!)) / rest, median(runs.map((run) => run[1]!)) / rest];
}

Deno.test("a fresh client.ts times its first round trips like the later ones", async () => {
  await using server = await serve({ port: 0 });
  const runs: number[][] = [];
  for (let run = 0; run < RUNS; run++) {
    const { code, stdout } = await runClient(server.addr.port, ["-c", `${COUNT}`, "-i", "0.05"]);
    assertEquals(code, 0, stdout);
    runs.push([...stdout.matchAll(/time=([\d.]+) ms/g)].map((match) => Number(match[1])));
    assertEquals(runs.at(-1)!.length, COUNT, stdout);
  }
  const [first, second] = warmUpRatios(runs);
  const shown = runs.map((run) => run.map((rtt) => rtt.toFixed(2)).join(" ")).join("\n");
  assert(first <= RATIO && second <= RATIO, `seq 1 ×${first}, seq 2 ×${second}:\n${shown}`);
});

/** COUNT round trips (ms) from this process to `port`, 50 ms apart, each
 * timed from just before its send to the arrival of its reply. */
async function roundTrips(port: number): Promise<number[]> {
  using socket = openSocket("127.0.0.1", 0);
  using receiver = new Receiver(socket);
  const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port };
  const rtts: number[] = [];
  for (let seq = 1; seq <= COUNT; seq++) {
    const request = encodeRequest({ seq, sent: Date.now(), token: "0000BEEF", size: 64 });
    const sentAt = performance.now();
    await socket.send(request, to);
    const reply = await receiver.next(performance.now() + WAIT_MS);
    assert(reply !== undefined, `no reply to seq ${seq} within ${WAIT_MS} ms`);
    rtts.push(reply.at - sentAt);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return rtts;
}

Deno.test("a fresh server.ts answers its first datagrams like the later ones", async () => {
  // This process's own side of the exchange, made warm first on a server of
  // its own, so that only the fresh server's first replies are in question.
  await using local = await serve({ port: 0 });
  await roundTrips(local.addr.port);
  const runs: number[][] = [];
  for (let run = 0; run < RUNS; run++) {
    await using server = await startServerProcess();
    runs.push(await roundTrips(server.port));
  }
  const [first, second] = warmUpRatios(runs);
  const shown = runs.map((run) => run.map((rtt) => rtt.toFixed(2)).join(" ")).join("\n");
  assert(first <= RATIO && second <= RATIO, `seq 1 ×${first}, seq 2 ×${second}:\n${shown}`);
});

// Run as the script inside the namespace, this file does not probe again.
const namespaceMissing = import.meta.main ? undefined : noNamespace();
if (namespaceMissing) console.log(`warm-up datagram count skipped: ${namespaceMissing}`);

/** The UDP datagrams sent so far in this network namespace, IPv4 and IPv6
 * (`OutDatagrams` of /proc/net/snmp and `Udp6OutDatagrams` of snmp6). */
const COUNT_SENT = "awk '/^Udp: [0-9]/ {n += $5} /^Udp6OutDatagrams/ {n += $2} END {print n}' " +
  "/proc/net/snmp /proc/net/snmp6";

Deno.test({
  name: "the warm-ups put nothing on the wire: -c 10 against server.ts is 20 datagrams in all",
  ignore: namespaceMissing !== undefined,
  async fn() {
    const script = [
      "ip link set lo up",
      COUNT_SENT,
      `"${Deno.execPath()}" run --allow-net tests/warm_up_test.ts ping-once`,
      COUNT_SENT,
    ].join(" && ");
    const { code, stdout, stderr } = await new Deno.Command("unshare", {
      args: ["-n", "sh", "-c", script],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stdout);
    assertEquals(code, 0, new TextDecoder().decode(stderr));
    const [before, received, after] = text.trim().split("\n").map(Number);
    assertEquals({ received, sent: after! - before! }, { received: COUNT, sent: 2 * COUNT }, text);
  },
});

// Inside the namespace: a server and a client of ten pings, both warming up;
// prints how many datagrams the server received.
if (import.meta.main && Deno.args[0] === "ping-once") {
  await using server = await serve({ port: 0 });
  const events = await collect(ping({ port: server.addr.port, count: COUNT, interval: 0.01 }));
  if (summaryOf(events).received !== COUNT) throw new Error("a reply was lost on loopback");
  console.log(server.stats.received);
}
