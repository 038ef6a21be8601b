/**
 * The server's decisions, without a socket: `Policy.decide()` fed crafted
 * datagrams and sources, its verdicts and counters read back, and the log
 * text `describe()` makes of them; the seeded impairments and the
 * request counts per token it keeps.
 */

import { assertEquals } from "./assert.ts";
import {
  createRandom,
  decideFate,
  describe,
  newServerStats,
  Policy,
  type PolicyOptions,
  TokenCounter,
  type Verdict,
} from "../lib/server/verdict.ts";
import { LOOP_BOUNCES } from "../settings.ts";
import { encodeRequest } from "../protocol.ts";

const own: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 12000 };
const client: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 40000 };
const text = (value: string) => new TextEncoder().encode(value);
const request = (seq: number, stamp = true) =>
  encodeRequest({ seq, sent: 1e12, token: "0000BEEF", size: 64, stamp });

function policy(options: Partial<PolicyOptions> = {}) {
  const stats = newServerStats();
  return { policy: new Policy({ mode: "echo", own, ...options }, stats), stats };
}

Deno.test("decide() replies to a request and plans its stamp: count, receive time, nothing refused", () => {
  const { policy: p, stats } = policy();
  const verdict = p.decide(request(1), client, 5000);
  assertEquals(verdict.kind, "reply");
  const { stamp } = verdict as Extract<Verdict, { kind: "reply" }>;
  assertEquals([stamp?.count, stamp?.receivedAt, stamp?.refused], [1, 5000, 0]);
  assertEquals(p.decide(request(2), client, 5001).kind, "reply");
  assertEquals((p.decide(request(3), client, 5002) as { stamp: { count: number } }).stamp.count, 3);
  assertEquals([stats.received, stats.clients], [3, 1]);
  // No stamp asked for, or no record at all: a reply without a stamp.
  assertEquals((p.decide(request(4, false), client, 5003) as { stamp: unknown }).stamp, undefined);
  assertEquals((p.decide(text("hello"), client, 5004) as { stamp: unknown }).stamp, undefined);
});

Deno.test("decide() drops by --loss with seeded draws, ignores in silent mode, limits by --rate", () => {
  const lossy = policy({ loss: 1, seed: 1 });
  assertEquals(lossy.policy.decide(request(1), client, 0).kind, "dropped");
  assertEquals(lossy.stats.dropped, 1);
  const silent = policy({ mode: "silent" });
  assertEquals(silent.policy.decide(request(1), client, 0), { kind: "ignored", reason: "silent" });
  const limited = policy({ rate: 2 });
  const kinds = [0, 1, 2].map(() => limited.policy.decide(request(1), client, 0).kind);
  assertEquals(kinds, ["reply", "reply", "limited"]);
  // The refusal is told to the client in its next stamp.
  const later = limited.policy.decide(request(2), client, 1000) as Extract<
    Verdict,
    { kind: "reply" }
  >;
  assertEquals(later.stamp?.refused, 1);
});

Deno.test("decide() refuses its own address, port 0 and service ports, and an echo loop", () => {
  const { policy: p, stats } = policy({ rate: 0 });
  const from = (port: number, hostname = "127.0.0.1"): Deno.NetAddr => ({
    transport: "udp",
    hostname,
    port,
  });
  assertEquals(p.decide(text("x"), own, 0), { kind: "ignored", reason: "own-address" });
  assertEquals(p.decide(text("x"), from(0), 0), { kind: "ignored", reason: "port-zero" });
  assertEquals(p.decide(text("x"), from(7), 0), { kind: "ignored", reason: "privileged-port" });
  // Datagrams coming back each 0.05 ms after the reply left: past
  // LOOP_BOUNCES quick ones, a loop.
  const bounce = text("bounce");
  const kinds = Array.from({ length: LOOP_BOUNCES + 2 }, (_, i) => {
    const verdict = p.decide(bounce, from(5555), i * 0.1);
    if (verdict.kind === "reply") p.sent(bounce, from(5555), i * 0.1 + 0.05);
    return verdict.kind === "ignored" ? verdict.reason : verdict.kind;
  });
  assertEquals(kinds.slice(-2), ["reply", "loop"]);
  assertEquals(kinds.indexOf("loop"), LOOP_BOUNCES + 1);
  assertEquals([stats.refused, stats.loops, stats.ignored], [3, 1, 4]);
  const privileged = policy({ allowPrivileged: true });
  assertEquals(privileged.policy.decide(text("x"), from(53), 0).kind, "reply");
});

Deno.test("decide() answers a -f client however quick, as its seqs go up, and takes the same requests repeated for a loop", () => {
  // A flood client sends its next request the moment a reply comes back:
  // as quick as a loop, but each request is a new seq of one run.
  const { policy: p, stats } = policy({ rate: 0 });
  const kinds = Array.from({ length: 4 * LOOP_BOUNCES }, (_, i) => {
    const verdict = p.decide(request(i + 1, false), client, i * 0.1);
    if (verdict.kind === "reply") p.sent(request(i + 1, false), client, i * 0.1 + 0.05);
    return verdict.kind;
  });
  assertEquals(kinds.filter((kind) => kind === "reply").length, 4 * LOOP_BOUNCES);
  // The same request coming back as quick is a loop.
  const again = Array.from({ length: LOOP_BOUNCES + 2 }, (_, i) => {
    const at = 1000 + i * 0.1;
    const verdict = p.decide(request(1, false), client, at);
    if (verdict.kind === "reply") p.sent(request(1, false), client, at + 0.05);
    return verdict.kind;
  });
  assertEquals(again.at(-1), "ignored");
  assertEquals(stats.loops, 1);
});

Deno.test("decide() in heartbeat mode recognises records and never replies", () => {
  const { policy: p, stats } = policy({ mode: "silent", heartbeat: 3 });
  const verdict = p.decide(request(7, false), client, 1e12 + 0.5);
  assertEquals(verdict, {
    kind: "ignored",
    reason: "heartbeat",
    heartbeat: { source: "127.0.0.1:40000", seq: 7, sent: 1e12, received: 1e12 + 0.5 },
  });
  assertEquals(p.decide(text("not a heartbeat"), client, 0), { kind: "ignored", reason: "silent" });
  assertEquals([stats.heartbeats, stats.ignored], [1, 2]);
});

Deno.test("decide() draws the same fates for the same seed", () => {
  const run = () => {
    const { policy: p } = policy({
      loss: 0.5,
      duplicate: 0.5,
      delay: 10,
      jitter: 5,
      seed: 42,
      rate: 0,
    });
    return Array.from(
      { length: 20 },
      (_, i) => JSON.stringify(p.decide(request(i + 1), client, i)),
    );
  };
  assertEquals(run(), run());
});

Deno.test("describe() says what was done, as the server's log line does", () => {
  const reply = (delay: number, duplicate = false, reorder = false): Verdict => ({
    kind: "reply",
    fate: { drop: false, delay, duplicate, reorder },
    stamp: undefined,
  });
  assertEquals(describe(reply(0), 64, '"PING"'), '64 bytes "PING" replied');
  assertEquals(describe(reply(2.5, true), 64, '"P"'), '64 bytes "P" delayed 2.5 ms, duplicated');
  assertEquals(
    describe(reply(20, false, true), 1, '"P"'),
    '1 bytes "P" delayed 20 ms, then held for reorder (at most 500 ms)',
  );
  // Held, not yet replied: the outbox logs how the reply leaves.
  assertEquals(
    describe(reply(0, true, true), 1, '"P"'),
    '1 bytes "P" held for reorder (at most 500 ms), duplicated',
  );
  assertEquals(
    describe({ kind: "limited", rate: 1000 }, 9, '"x"'),
    '9 bytes "x" not answered (over 1000/s)',
  );
  assertEquals(
    describe({ kind: "ignored", reason: "loop" }, 9, '"x"'),
    '9 bytes "x" not answered (echo loop: the reply came back)',
  );
});

Deno.test("decideFate() draws four numbers per request, so a seed predicts the run", () => {
  const a = createRandom(5);
  const b = createRandom(5);
  const impairments = { loss: 0.3, delay: 10, jitter: 5, duplicate: 0.2, reorder: 0.1 };
  for (let i = 0; i < 100; i++) {
    const fate = decideFate(a, impairments);
    const drop = b() < 0.3;
    const delay = 10 + 5 * (2 * b() - 1);
    const duplicate = b() < 0.2;
    const reorder = b() < 0.1;
    assertEquals(fate, { drop, delay, duplicate, reorder });
  }
});

Deno.test("TokenCounter counts per token and forgets the least recently seen past capacity", () => {
  const tokens = new TokenCounter(3);
  const [A, B, C, D] = [0xa, 0xb, 0xc, 0xd];
  assertEquals([tokens.hit(A), tokens.hit(B), tokens.hit(A), tokens.hit(C)], [1, 1, 2, 1]);
  tokens.hit(D); // B is the least recently seen: forgotten
  assertEquals(tokens.size, 3);
  assertEquals(tokens.hit(A), 3);
  assertEquals(tokens.hit(A), 4); // the newest again: no reordering, same count
  assertEquals(tokens.hit(B), 1);
  for (let i = 0; i < 10_000; i++) tokens.hit(0x1000 + i);
  assertEquals(tokens.size, 3);
});
