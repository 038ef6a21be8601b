import { assert, assertEquals } from "./assert.ts";
import {
  LOOP_BOUNCES,
  LOOP_WINDOW_MS,
  LoopGuard,
  MAX_LOOP_ENTRIES,
  type SourceVerdict,
} from "../lib/loop_guard.ts";
import { encodeRequest, findRequest, writeStamp } from "../protocol.ts";

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);

/** How a simulated udping server turns a request into its reply. */
type Answer = (request: Uint8Array) => Uint8Array;

const prefixed = (prefix: string): Answer => (request) => {
  const reply = new Uint8Array(prefix.length + request.length);
  reply.set(bytes(prefix));
  reply.set(request, prefix.length);
  return reply;
};

const ANSWERS: Record<string, Answer> = {
  echo: (request) => request.slice(),
  upper: (request) => request.map((byte) => byte >= 0x61 && byte <= 0x7a ? byte - 0x20 : byte),
  "prefix OK...": prefixed("OK..."),
  "prefix Data received: ": prefixed("Data received: "),
  "echo, stamped": (request) => {
    const reply = request.slice();
    const head = findRequest(reply);
    if (head?.stampWanted) {
      const room = reply.length - head.paddingOffset;
      writeStamp(reply, head.paddingOffset, room, { count: 1, received: 1e12, held: 3 });
    }
    return reply;
  },
};

/** Forged datagrams: text a server uppercases, a udping request asking for
 * a stamp, and one long enough to be hashed by its ends. */
const FORGED: Record<string, Uint8Array> = {
  text: bytes("hello, is anyone there?"),
  request: encodeRequest({ seq: 1, sent: 1e12, token: "0000BEEF", size: 64, stamp: true }),
  long: bytes(`long ${"x".repeat(1500)} end`),
};

interface Server {
  hostname: string;
  port: number;
  guard: LoopGuard;
  answer: Answer;
}

function server(hostname: string, answer: Answer, knowsItself = true): Server {
  const ownAddresses = knowsItself ? [{ hostname, port: 12000 }] : [];
  return { hostname, port: 12000, guard: new LoopGuard({ ownAddresses }), answer };
}

/**
 * Delivers `forged` datagrams to `to` as if from `from`, then lets the two
 * servers answer each other, one hop every 0.1 ms, until they stop (or 1,000
 * replies). Returns the number of replies sent.
 */
function bounce(from: Server, to: Server, forged: Uint8Array[]): number {
  const queue = forged.map((data) => ({ from, to, data }));
  let now = 0;
  let replies = 0;
  while (queue.length > 0 && replies < 1000) {
    const hop = queue.shift()!;
    now += 0.1;
    if (hop.to.guard.check(hop.from.hostname, hop.from.port, hop.data, now) !== "ok") continue;
    const reply = hop.to.answer(hop.data);
    hop.to.guard.sent(hop.from.hostname, hop.from.port, reply, now);
    replies++;
    queue.push({ from: hop.to, to: hop.from, data: reply });
  }
  return replies;
}

Deno.test("LoopGuard refuses the server's own address, in any spelling", () => {
  const exact = new LoopGuard({ ownAddresses: [{ hostname: "127.0.0.1", port: 12000 }] });
  const data = bytes("hi");
  const verdict = (guard: LoopGuard, hostname: string, port = 12000) =>
    guard.check(hostname, port, data, 0);
  for (const hostname of ["127.0.0.1", "::ffff:127.0.0.1", "::ffff:7f00:1", "0.0.0.0"]) {
    assertEquals(verdict(exact, hostname), "own-address", hostname);
  }
  assertEquals(verdict(exact, "127.0.0.2"), "ok", "another address");
  assertEquals(verdict(exact, "127.0.0.1", 12001), "ok", "another port");
  const wildcard = new LoopGuard({ ownAddresses: [{ hostname: "::", port: 12000 }] });
  for (const hostname of ["127.0.0.1", "127.1.2.3", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"]) {
    assertEquals(verdict(wildcard, hostname), "own-address", hostname);
  }
  assertEquals(verdict(wildcard, "10.0.0.2"), "ok", "a machine the guard cannot know is local");
  const v6 = new LoopGuard({ ownAddresses: [{ hostname: "2001:db8::1", port: 12000 }] });
  assertEquals(verdict(v6, "2001:DB8:0:0::1"), "own-address");
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
  const expected: Record<string, SourceVerdict> = {
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
  const verdicts: Record<string, SourceVerdict> = {};
  for (const hostname of Object.keys(expected)) {
    verdicts[hostname] = guard.check(hostname, 40000, data, 0);
  }
  assertEquals(verdicts, expected);
});

Deno.test("LoopGuard without the interface list still refuses the limited broadcast and multicast", () => {
  const guard = new LoopGuard({ ownAddresses: [{ hostname: "127.0.0.1", port: 12000 }] });
  const data = bytes("hi");
  const verdicts = ["255.255.255.255", "127.255.255.255", "224.0.0.1", "ff02::1", "192.0.2.255"]
    .map((hostname) => guard.check(hostname, 40000, data, 0));
  assertEquals(verdicts, ["broadcast", "broadcast", "multicast", "multicast", "ok"]);
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
  const verdicts = (guard: LoopGuard) =>
    [0, 7, 53, 1023, 1024].map((port) => guard.check("10.0.0.2", port, data, 0));
  const refused: SourceVerdict = "privileged-port";
  assertEquals(verdicts(strict), ["port-zero", refused, refused, refused, "ok"]);
  assertEquals(verdicts(open), ["port-zero", "ok", "ok", "ok", "ok"]);
});

Deno.test("LoopGuard stops one forged datagram between two servers within 5 replies, whatever their modes", () => {
  for (const [modeA, answerA] of Object.entries(ANSWERS)) {
    for (const [modeB, answerB] of Object.entries(ANSWERS)) {
      for (const [kind, datagram] of Object.entries(FORGED)) {
        const a = server("10.0.0.1", answerA);
        const b = server("10.0.0.2", answerB);
        const replies = bounce(b, a, [datagram]);
        assert(replies <= 5, `${modeA} and ${modeB}, ${kind}: ${replies} replies`);
      }
    }
  }
});

Deno.test("LoopGuard stops 8 forged datagrams bouncing between two servers at once", () => {
  for (const [mode, answer] of Object.entries(ANSWERS)) {
    const forged = Array.from({ length: 8 }, (_, i) => bytes(`forged datagram ${i}`));
    const replies = bounce(server("10.0.0.2", answer), server("10.0.0.1", answer), forged);
    assert(replies <= 5 * forged.length, `${mode}: ${replies} replies`);
  }
});

Deno.test("LoopGuard stops a server bouncing a forged datagram to itself", () => {
  for (const [mode, answer] of Object.entries(ANSWERS)) {
    for (const [kind, datagram] of Object.entries(FORGED)) {
      // Bound to a wildcard, it cannot know all its addresses: the loop
      // rule alone must end it.
      const unaware = server("192.0.2.7", answer, false);
      const replies = bounce(unaware, unaware, [datagram]);
      assert(replies <= LOOP_BOUNCES, `${mode}, ${kind}: ${replies} replies`);
      const aware = server("192.0.2.7", answer);
      assertEquals(bounce(aware, aware, [datagram]), 0, `${mode}, ${kind}`);
    }
  }
});

/** Whether each of `times` (ms) a client at 10.0.0.2:40000 sends `line`
 * to an echo server is answered; every reply is lost on the way back. */
function answeredAt(times: number[], line = bytes("hello")): boolean[] {
  const guard = new LoopGuard({ ownAddresses: [{ hostname: "10.0.0.1", port: 12000 }] });
  return times.map((now) => {
    const answered = guard.check("10.0.0.2", 40000, line, now) === "ok";
    if (answered) guard.sent("10.0.0.2", 40000, line, now + 0.05);
    return answered;
  });
}

Deno.test("LoopGuard answers a client that repeats a line every 2 s", () => {
  assertEquals(answeredAt([0, 2000, 4000, 6000, 8000]), [true, true, true, true, true]);
});

Deno.test("LoopGuard answers every chat retry after a 1 s timeout, even when each reply is lost", () => {
  assertEquals(answeredAt([0, 1000, 2000, 3000, 4000]), [true, true, true, true, true]);
});

Deno.test("LoopGuard answers the first quick repeat, refuses the next within the window, then recovers", () => {
  const times = [0, 10, 20, 30, 20 + LOOP_WINDOW_MS + 1];
  assertEquals(answeredAt(times), [true, true, false, false, true]);
});

Deno.test("LoopGuard tells apart datagrams that differ only in their last bytes", () => {
  for (const size of [200, 1000]) {
    const guard = new LoopGuard({ ownAddresses: [] });
    for (let chunk = 0; chunk < 5; chunk++) {
      // The same bytes but for a counter at the very end, each echoed.
      const data = bytes(`${"x".repeat(size - 4)}${String(chunk).padStart(4, "0")}`);
      assertEquals(guard.check("10.0.0.2", 40000, data, chunk), "ok", `${size} bytes, ${chunk}`);
      guard.sent("10.0.0.2", 40000, data, chunk);
    }
  }
});

Deno.test("LoopGuard keeps each peer's replies apart", () => {
  const guard = new LoopGuard({ ownAddresses: [] });
  const data = bytes("same bytes");
  for (let now = 0; now < 10; now++) {
    const port = 40000 + now; // a new client each time, the same bytes
    assertEquals(guard.check("10.0.0.2", port, data, now), "ok");
    guard.sent("10.0.0.2", port, data, now);
  }
});

Deno.test("LoopGuard remembers at most MAX_LOOP_ENTRIES peers among 100,000 sources", () => {
  const guard = new LoopGuard({ ownAddresses: [] });
  const data = bytes("hi");
  for (let i = 0; i < 100_000; i++) {
    const hostname = `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`;
    guard.check(hostname, 5000, data, i / 100);
    guard.sent(hostname, 5000, data, i / 100);
  }
  assert(guard.size <= MAX_LOOP_ENTRIES, `${guard.size} peers`);
  // The newest peers are still watched.
  const last = "10.1.134.159"; // i = 99,999
  const now = 999.99;
  assertEquals(guard.check(last, 5000, data, now), "ok");
  guard.sent(last, 5000, data, now);
  assertEquals(guard.check(last, 5000, data, now), "loop");
});

Deno.test("LoopGuard makes room by forgetting peers whose replies expired, not one in the window", () => {
  const guard = new LoopGuard({ ownAddresses: [] });
  const data = bytes("hi");
  const answer = (hostname: string, now: number) => {
    const verdict = guard.check(hostname, 12000, data, now);
    if (verdict === "ok") guard.sent(hostname, 12000, data, now);
    return verdict;
  };
  for (let i = 0; i < MAX_LOOP_ENTRIES; i++) answer(`10.0.${i >> 8}.${i & 255}`, 0);
  const later = LOOP_WINDOW_MS + 100;
  assertEquals(answer("10.0.0.0", later), "ok"); // the first peer is answered again
  for (let i = 0; i < 10; i++) answer(`10.1.0.${i}`, later); // newcomers need room
  assertEquals(answer("10.0.0.0", later + 1), "ok", "its reply bounced once");
  assertEquals(answer("10.0.0.0", later + 2), "loop", "and twice: it was not forgotten");
});
