import { assert, assertEquals } from "./assert.ts";
import { LoopGuard, type SourceCheck } from "../lib/server/loop_guard.ts";
import { FAST_BOUNCE_MS, LOOP_BOUNCES, MAX_LOOP_ENTRIES } from "../settings.ts";
import { encodeRequest, findRecord, writeStamp } from "../protocol.ts";

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);

/** How a simulated peer turns a datagram into its answers (none, one, or
 * several: a duplicating server). */
type Answer = (request: Uint8Array) => Uint8Array[];

const prefixed = (prefix: string): Answer => (request) => {
  const reply = new Uint8Array(prefix.length + request.length);
  reply.set(bytes(prefix));
  reply.set(request, prefix.length);
  return [reply];
};

let counter = 0;
const ANSWERS: Record<string, Answer> = {
  echo: (request) => [request.slice()],
  upper: (request) => [
    request.map((byte) => byte >= 0x61 && byte <= 0x7a ? byte - 0x20 : byte),
  ],
  "prefix OK...": prefixed("OK..."),
  "prefix PING 1 0 0000BEEF ?": prefixed("PING 1 0 0000BEEF ?"),
  "echo, stamped": (request) => {
    const reply = request.slice();
    const head = findRecord(reply, { anywhere: false });
    if (head?.stampWanted) {
      const room = reply.length - head.paddingOffset;
      writeStamp(reply, head.paddingOffset, room, { count: ++counter, received: 1e12, held: 3 });
    }
    return [reply];
  },
  "appends a byte": (request) => {
    const reply = new Uint8Array(request.length + 1);
    reply.set(request);
    reply[request.length] = 0x21;
    return [reply];
  },
  "rewrites a 4-byte counter": (request) => {
    const reply = request.length >= 4 ? request.slice() : new Uint8Array(4);
    new DataView(reply.buffer).setUint32(0, ++counter);
    return [reply];
  },
  duplicates: (request) => [request.slice(), request.slice()],
};

/** Forged datagrams: text a server uppercases, a udping request asking for
 * a stamp, and an empty one. */
const FORGED: Record<string, Uint8Array> = {
  text: bytes("hello, is anyone there?"),
  request: encodeRequest({ seq: 1, sent: 1e12, token: "0000BEEF", size: 64, stamp: true }),
  empty: new Uint8Array(),
};

interface Host {
  hostname: string;
  port: number;
  /** A udping server has a guard; another echo service has none. */
  guard?: LoopGuard;
  answer: Answer;
  /** How long it takes to answer, ms (a --delay). */
  hold: number;
  sent: number;
}

function host(hostname: string, answer: Answer, { hold = 0.02, udping = true } = {}): Host {
  const guard = udping ? new LoopGuard({ ownAddresses: [] }) : undefined;
  return { hostname, port: 12000, guard, answer, hold, sent: 0 };
}

/** A datagram on its way: it arrives at `to` at `at`. */
interface Hop {
  at: number;
  from: Host;
  to: Host;
  data: Uint8Array;
}

/**
 * Delivers `forged` datagrams to `to` as if from `from`, then lets the two
 * hosts answer each other (each after its `hold`, 0.01 ms on the wire) until
 * they stop, 100,000 datagrams have been sent or 60 s have passed. Returns
 * the datagrams sent.
 */
function bounce(from: Host, to: Host, forged: Uint8Array[]): number {
  const queue: Hop[] = forged.map((data, i) => ({ at: i * 0.001, from, to, data }));
  let sent = 0;
  while (queue.length > 0 && sent < 100_000) {
    let next = 0;
    for (let i = 1; i < queue.length; i++) if (queue[i]!.at < queue[next]!.at) next = i;
    const hop = queue.splice(next, 1)[0]!;
    if (hop.at > 60_000) break;
    const { guard } = hop.to;
    if (guard && guard.check(hop.from.hostname, hop.from.port, hop.data, hop.at) !== "ok") continue;
    const leaves = hop.at + hop.to.hold;
    for (const reply of hop.to.answer(hop.data)) {
      guard?.sent(hop.from.hostname, hop.from.port, leaves);
      sent++;
      queue.push({ at: leaves + 0.01, from: hop.to, to: hop.from, data: reply });
    }
  }
  return sent;
}

/** What one loop with every bounce quick may cost two udping servers. */
const ONE_LOOP = 2 * (LOOP_BOUNCES + 1);

Deno.test("LoopGuard refuses the server's own address, in any spelling", () => {
  const exact = new LoopGuard({ ownAddresses: [{ hostname: "127.0.0.1", port: 12000 }] });
  const data = bytes("hi");
  const result = (guard: LoopGuard, hostname: string, port = 12000) =>
    guard.check(hostname, port, data, 0);
  for (const hostname of ["127.0.0.1", "::ffff:127.0.0.1", "::ffff:7f00:1", "0.0.0.0"]) {
    assertEquals(result(exact, hostname), "own-address", hostname);
  }
  assertEquals(result(exact, "127.0.0.2"), "ok", "another address");
  assertEquals(result(exact, "127.0.0.1", 12001), "ok", "another port");
  const wildcard = new LoopGuard({ ownAddresses: [{ hostname: "::", port: 12000 }] });
  for (const hostname of ["127.0.0.1", "127.1.2.3", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"]) {
    assertEquals(result(wildcard, hostname), "own-address", hostname);
  }
  assertEquals(result(wildcard, "10.0.0.2"), "ok", "a machine the guard cannot know is local");
  const v6 = new LoopGuard({ ownAddresses: [{ hostname: "2001:db8::1", port: 12000 }] });
  assertEquals(result(v6, "2001:DB8:0:0::1"), "own-address");
});

/** A machine with loopback, 192.0.2.7/24, 198.51.100.9/16, a point-to-point
 * /31 and an IPv6 address, as `Deno.networkInterfaces()` lists them. */
const INTERFACES = [
  { address: "127.0.0.1", netmask: "255.0.0.0" },
  { address: "192.0.2.7", netmask: "255.255.255.0" },
  { address: "198.51.100.9", netmask: "255.255.0.0" },
  { address: "203.0.113.4", netmask: "255.255.255.254" },
  { address: "2001:db8::7", netmask: "ffff:ffff:ffff:ffff::" },
];

Deno.test("LoopGuard refuses broadcast and multicast sources, in any spelling, on any port", () => {
  const guard = new LoopGuard({
    ownAddresses: [{ hostname: "0.0.0.0", port: 12000 }],
    interfaces: INTERFACES,
  });
  const data = bytes("hi");
  const expected: Record<string, SourceCheck> = {
    "255.255.255.255": "broadcast",
    "192.0.2.255": "broadcast",
    "198.51.255.255": "broadcast",
    "127.255.255.255": "broadcast",
    "0.0.0.0": "broadcast",
    "::ffff:192.0.2.255": "broadcast",
    "::ffff:c000:2ff": "broadcast",
    "0:0:0:0:0:ffff:ffff:ffff": "broadcast",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "::ffff:224.0.0.251": "multicast",
    "ff02::1": "multicast",
    "FF05::1:3": "multicast",
    // Ordinary hosts: the last of a /31, .255 inside a /16, the network's
    // first address, an IPv6 host.
    "203.0.113.5": "ok",
    "198.51.0.255": "ok",
    "192.0.2.0": "ok",
    "2001:db8::8": "ok",
    "240.0.0.1": "ok",
  };
  const checks: Record<string, SourceCheck> = {};
  for (const hostname of Object.keys(expected)) {
    checks[hostname] = guard.check(hostname, 40000, data, 0);
  }
  assertEquals(checks, expected);
});

Deno.test("LoopGuard without the interface list still refuses the limited broadcast and multicast", () => {
  const guard = new LoopGuard({ ownAddresses: [{ hostname: "127.0.0.1", port: 12000 }] });
  const data = bytes("hi");
  const checks = ["255.255.255.255", "127.255.255.255", "224.0.0.1", "ff02::1", "192.0.2.255"]
    .map((hostname) => guard.check(hostname, 40000, data, 0));
  assertEquals(checks, ["broadcast", "broadcast", "multicast", "multicast", "ok"]);
});

Deno.test("LoopGuard bound to a wildcard refuses every interface address with its own port", () => {
  const data = bytes("hi");
  for (const wildcard of ["0.0.0.0", "::"]) {
    const guard = new LoopGuard({
      ownAddresses: [{ hostname: wildcard, port: 12000 }],
      interfaces: INTERFACES,
    });
    for (const hostname of ["192.0.2.7", "::ffff:192.0.2.7", "198.51.100.9", "2001:DB8::7"]) {
      assertEquals(guard.check(hostname, 12000, data, 0), "own-address", `${wildcard} ${hostname}`);
      assertEquals(guard.check(hostname, 12001, data, 0), "ok", `${wildcard} ${hostname}:12001`);
    }
    assertEquals(guard.check("192.0.2.8", 12000, data, 0), "ok", "a neighbour on the same port");
  }
  // Bound to one address, another of the machine's is not the server.
  const one = new LoopGuard({
    ownAddresses: [{ hostname: "192.0.2.7", port: 12000 }],
    interfaces: INTERFACES,
  });
  assertEquals(one.check("198.51.100.9", 12000, data, 0), "ok");
});

Deno.test("LoopGuard refuses source port 0 and ports below 1024 unless allowed", () => {
  const data = bytes("hi");
  const strict = new LoopGuard({ ownAddresses: [] });
  const open = new LoopGuard({ ownAddresses: [], allowPrivileged: true });
  const checks = (guard: LoopGuard) =>
    [0, 7, 53, 1023, 1024].map((port) => guard.check("10.0.0.2", port, data, 0));
  const refused: SourceCheck = "privileged-port";
  assertEquals(checks(strict), ["port-zero", refused, refused, refused, "ok"]);
  assertEquals(checks(open), ["port-zero", "ok", "ok", "ok", "ok"]);
});

Deno.test("LoopGuard stops one forged datagram between two servers within 2 × (LOOP_BOUNCES + 1) datagrams, whatever each does to it", () => {
  for (const [modeA, answerA] of Object.entries(ANSWERS)) {
    for (const [modeB, answerB] of Object.entries(ANSWERS)) {
      for (const [kind, datagram] of Object.entries(FORGED)) {
        const a = host("10.0.0.1", answerA);
        const b = host("10.0.0.2", answerB);
        const sent = bounce(b, a, [datagram]);
        // Two duplicating servers double each round until one stops it.
        const most = modeA === "duplicates" || modeB === "duplicates" ? 4 * ONE_LOOP : ONE_LOOP;
        assert(sent <= most, `${modeA} and ${modeB}, ${kind}: ${sent} datagrams`);
      }
    }
  }
});

Deno.test("LoopGuard stops a loop with a service that has no guard, whatever it does to the datagram", () => {
  for (const [mode, answer] of Object.entries(ANSWERS)) {
    const echo = host("10.0.0.7", answer, { udping: false });
    const sent = bounce(echo, host("10.0.0.1", ANSWERS.echo!), [FORGED.text!]);
    const most = mode === "duplicates" ? 4 * ONE_LOOP : ONE_LOOP;
    assert(sent <= most, `${mode}: ${sent} datagrams`);
  }
});

Deno.test("LoopGuard stops 12 forged datagrams bouncing between two servers at once", () => {
  for (const [mode, answer] of Object.entries(ANSWERS)) {
    const forged = Array.from({ length: 12 }, (_, i) => bytes(`forged datagram ${i}`));
    const sent = bounce(host("10.0.0.2", answer), host("10.0.0.1", answer), forged);
    const most = (mode === "duplicates" ? 4 : 1) * (ONE_LOOP + 2 * forged.length);
    assert(sent <= most, `${mode}: ${sent} datagrams`);
  }
});

Deno.test("LoopGuard stops a loop whose other side holds each reply 500 ms or more, duplicated too", () => {
  const cases: [string, Host][] = [
    ["--delay 500", host("10.0.0.2", ANSWERS.echo!, { hold: 500 })],
    ["--delay 600 --duplicate 1", host("10.0.0.2", ANSWERS.duplicates!, { hold: 600 })],
  ];
  for (const [name, slow] of cases) {
    const sent = bounce(slow, host("10.0.0.1", ANSWERS.echo!), [FORGED.text!]);
    // The slow side sees the quick side answer at once: its count stops it.
    assert(sent <= 4 * ONE_LOOP, `${name}: ${sent} datagrams`);
    // And so does a server that holds, against an echo service with no guard.
    const echo = host("10.0.0.7", ANSWERS.echo!, { udping: false });
    const alone = bounce(echo, { ...slow, guard: new LoopGuard({ ownAddresses: [] }) }, [
      FORGED.text!,
    ]);
    assert(alone <= 4 * ONE_LOOP, `${name} against an echo service: ${alone} datagrams`);
  }
});

Deno.test("LoopGuard stops a server bouncing a forged datagram to itself", () => {
  for (const [mode, answer] of Object.entries(ANSWERS)) {
    if (mode === "duplicates") continue;
    for (const [kind, datagram] of Object.entries(FORGED)) {
      // Bound to a wildcard, it cannot know all its addresses: the loop
      // rule alone must end it.
      const unaware = host("192.0.2.7", answer);
      const sent = bounce(unaware, unaware, [datagram]);
      assert(sent <= LOOP_BOUNCES + 1, `${mode}, ${kind}: ${sent} datagrams`);
      const aware = host("192.0.2.7", answer);
      aware.guard = new LoopGuard({ ownAddresses: [{ hostname: "192.0.2.7", port: 12000 }] });
      assertEquals(bounce(aware, aware, [datagram]), 0, `${mode}, ${kind}`);
    }
  }
});

/** How many of the datagrams a client at 10.0.0.2:40000 sends at `times`
 * (ms) an echo server refuses, answering each 0.05 ms after it arrives;
 * `data(i)` is the i-th datagram. */
function refusedOf(times: number[], data: (i: number) => Uint8Array = () => bytes("ping")) {
  const guard = new LoopGuard({ ownAddresses: [{ hostname: "10.0.0.1", port: 12000 }] });
  let refused = 0;
  let free = 0;
  times.forEach((arrival, i) => {
    // A server busy until `free` reads the datagram then.
    const now = Math.max(arrival, free);
    if (guard.check("10.0.0.2", 40000, data(i), now) === "ok") {
      guard.sent("10.0.0.2", 40000, now + 0.05);
    } else refused++;
    free = now + 0.06;
  });
  return refused;
}

const every = (count: number, intervalMs: number) =>
  Array.from({ length: count }, (_, i) => i * intervalMs);

Deno.test("LoopGuard never refuses a client that repeats its payload every 1 ms or more", () => {
  for (const interval of [1, 10, 100, 1000]) {
    assertEquals(refusedOf(every(10_000, interval)), 0, `every ${interval} ms`);
  }
});

Deno.test("LoopGuard never refuses a 1 ms client whose datagrams queued while the server was stalled", () => {
  // The server stalls for 20 ms every 100 ms and then reads the queue back
  // to back, each read right after its previous reply left.
  const guard = new LoopGuard({ ownAddresses: [] });
  let refused = 0;
  let now = 0;
  for (let sent = 0; sent < 10_000; sent++) {
    const arrival = sent;
    const stalled = arrival % 100 < 20 ? arrival - (arrival % 100) + 20 : arrival;
    now = Math.max(now + 0.02, stalled);
    if (guard.check("10.0.0.2", 40000, bytes("ping"), now) === "ok") {
      guard.sent("10.0.0.2", 40000, now + 0.01);
    } else refused++;
  }
  assertEquals(refused, 0);
});

Deno.test("LoopGuard never refuses a udping -f client, which sends each request as the reply comes", () => {
  const token = "0A0B0C0D";
  const request = (i: number) => encodeRequest({ seq: i + 1, sent: 1e12, token, size: 64 });
  // Each request 0.02 ms after the reply to the previous one left.
  assertEquals(refusedOf(every(10_000, 0.07), request), 0);
});

Deno.test("LoopGuard refuses a peer answering at once, past LOOP_BOUNCES, and a slow datagram takes one off the count", () => {
  const guard = new LoopGuard({ ownAddresses: [] });
  const data = bytes("hi");
  const checks: SourceCheck[] = [];
  let now = 0;
  const arrive = (after: number) => {
    now += after;
    const result = guard.check("10.0.0.2", 12000, data, now);
    checks.push(result);
    if (result === "ok") guard.sent("10.0.0.2", 12000, now += 0.01);
  };
  for (let i = 0; i <= LOOP_BOUNCES; i++) arrive(0.1); // the first has no reply before it
  assertEquals(checks.includes("loop"), false);
  arrive(0.1);
  assertEquals(checks.at(-1), "loop");
  arrive(0.1); // quick again after a refusal: still a loop
  assertEquals(checks.at(-1), "loop");
  for (let i = 0; i < 3; i++) arrive(FAST_BOUNCE_MS); // slow: answered, one off each
  assertEquals(checks.slice(-3), ["ok", "ok", "ok"]);
  arrive(0.1); // one quick one is answered again, the next is not
  assertEquals(checks.at(-1), "ok");
  arrive(0.1);
  assertEquals(checks.at(-1), "loop");
});

Deno.test("LoopGuard does not refuse a client for empty datagrams forged from its address every 0.45 s", () => {
  // The client sends every 10 ms; the forger's datagram lands anywhere
  // between, sometimes right after a reply to the client.
  const times = [
    ...every(10_000, 10).map((at) => ({ at, forged: false })),
    ...every(222, 450).map((at, i) => ({ at: at + (i % 20) * 0.011, forged: true })),
  ].sort((a, b) => a.at - b.at);
  const guard = new LoopGuard({ ownAddresses: [] });
  let refusedClient = 0;
  for (const { at, forged } of times) {
    const data = forged ? new Uint8Array() : bytes("same 64 bytes");
    if (guard.check("10.0.0.2", 40000, data, at) === "ok") guard.sent("10.0.0.2", 40000, at + 0.05);
    else if (!forged) refusedClient++;
  }
  assertEquals(refusedClient, 0);
});

Deno.test("LoopGuard keeps each peer apart", () => {
  const guard = new LoopGuard({ ownAddresses: [] });
  const data = bytes("same bytes");
  for (let now = 0; now < 10 * LOOP_BOUNCES; now += 0.1) {
    // Clients on 100 ports answered in turn, each every 10 ms.
    const port = 40000 + Math.round(now * 10) % 100;
    assertEquals(guard.check("10.0.0.2", port, data, now), "ok");
    guard.sent("10.0.0.2", port, now + 0.05);
  }
});

Deno.test("LoopGuard remembers at most MAX_LOOP_ENTRIES peers among 100,000 sources", () => {
  const guard = new LoopGuard({ ownAddresses: [] });
  const data = bytes("hi");
  for (let i = 0; i < 100_000; i++) {
    const hostname = `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`;
    guard.check(hostname, 5000, data, i / 100);
    guard.sent(hostname, 5000, i / 100);
  }
  assert(guard.size <= MAX_LOOP_ENTRIES, `${guard.size} peers`);
  // The newest peer is still watched.
  const last = "10.1.134.159"; // i = 99,999
  let now = 999.99;
  for (let bounce = 0; bounce < LOOP_BOUNCES; bounce++) {
    assertEquals(guard.check(last, 5000, data, now += 0.02), "ok");
    guard.sent(last, 5000, now += 0.01);
  }
  assertEquals(guard.check(last, 5000, data, now + 0.02), "loop");
});

Deno.test("LoopGuard makes room by forgetting peers answered long ago, not one in a loop", () => {
  const guard = new LoopGuard({ ownAddresses: [] });
  const data = bytes("hi");
  let now = 0;
  const answer = (hostname: string) => {
    const result = guard.check(hostname, 12000, data, now += 0.02);
    if (result === "ok") guard.sent(hostname, 12000, now += 0.01);
    return result;
  };
  for (let i = 1; i < MAX_LOOP_ENTRIES; i++) answer(`10.0.${i >> 8}.${i & 255}`);
  now += 1000;
  // 10.9.9.9 loops (its first datagram scores nothing), while newcomers
  // need room.
  for (let bounce = 0; bounce <= LOOP_BOUNCES; bounce++) {
    assertEquals(answer("10.9.9.9"), "ok");
    answer(`10.1.0.${bounce}`);
    now -= 0.02; // the newcomer took no time
  }
  assertEquals(answer("10.9.9.9"), "loop", "it was not forgotten");
});
