/**
 * Keeps one forged datagram from setting two echo servers (or a server and
 * itself) answering each other forever. Pure: the caller passes the time in
 * ms; no socket, no timer.
 *
 * {@linkcode LoopGuard.check} refuses, before any reply:
 *
 * - the server's own address (a reply to it is a request to itself): when
 *   it is bound to a wildcard, any address of the machine's interfaces
 *   with its port;
 * - source port 0, which no real client sends from;
 * - a broadcast address: the limited broadcast `255.255.255.255`, the
 *   broadcast address of each interface's subnet (from its netmask),
 *   `127.255.255.255` and `0.0.0.0` (the broadcast of old BSD): the
 *   runtime's socket may send to a broadcast, so one forged datagram would
 *   make the server answer every host of a network;
 * - a multicast address (`224.0.0.0/4`, `ff00::/8`), which no datagram
 *   comes from;
 * - source ports below 1024 unless allowed: the system services there (echo
 *   7, chargen 19, DNS 53...) answer too, so a forged source there starts a
 *   loop with a server that is not a udping one;
 * - a loop: a datagram from `X` that is, or ends with, a reply the server
 *   sent to `X` less than {@linkcode LOOP_WINDOW_MS} ago, for the
 *   {@linkcode LOOP_BOUNCES}th time in a chain.
 *
 * Why the reply and not the request: every udping mode makes what comes
 * back from a peer udping server end with what we sent it. An echoing peer
 * returns it as it is; an uppercasing one too from the second round (our
 * reply, uppercased once, no longer changes); a prefixing one puts at most
 * `MAX_PREFIX_BYTES` in front of it. A stamp is written once, since the
 * stamped padding no longer asks for one. A reply that ends with an earlier
 * bounced reply carries its count on, so a prefix that grows each round is
 * one chain, and so is a mix of modes.
 *
 * Why two bounces and a short window: in echo mode a client's retry is the
 * same bytes as our reply, when that reply was lost. The first bounce is
 * always answered, and a bounce counts only within the window, which is
 * shorter than a chat client's default 1 s timeout: retries, and a line
 * repeated seconds later, are answered. One forged datagram costs at most
 * five replies between two udping servers (two in a server and itself).
 *
 * What it does not catch: a loop whose round trip (network plus the peer's
 * `--delay`) exceeds the window, and a loop whose replies are pushed out of
 * memory (more than 8 concurrent loops with one peer, or more than
 * {@linkcode MAX_LOOP_ENTRIES} other clients answered within one round
 * trip). Those are left to the rate limit.
 *
 * Each address rule holds for the IPv4-mapped spelling (`::ffff:a.b.c.d`)
 * too.
 *
 * Datagrams are compared by a 32-bit FNV-1a hash of their length and bytes,
 * all of them up to 256 bytes, otherwise the first and last 64: a few
 * multiplications per datagram, and only for a source that was answered in
 * the window.
 *
 * @module
 */

import { MAX_PREFIX_BYTES } from "../settings.ts";
import { canonicalIPv6, clientKey, ipv4Number } from "./shared/net.ts";

/**
 * How long a reply we sent can still come back as a loop, in ms. Longer
 * than a round trip across the world (under 300 ms), half a chat client's
 * default 1 s timeout, so that a retry after a lost reply is not mistaken
 * for a bounce.
 */
export const LOOP_WINDOW_MS = 500;

/** A reply coming back this many times in a chain, each within
 * {@linkcode LOOP_WINDOW_MS}, is a loop: the first bounce may be a client's
 * retry, the second is not answered. */
export const LOOP_BOUNCES = 2;

/** Peers (address and port) whose recent replies are remembered; past it,
 * a new peer takes the place of one whose replies are all older than the
 * window (which can no longer match anything), or else of the oldest. */
export const MAX_LOOP_ENTRIES = 4096;

/** Recent replies remembered per peer: that many loops with one peer at
 * once are each caught. */
const REPLIES_PER_PEER = 8;
/** How many peers under the clock hand a new peer looks at for one whose
 * replies have all expired. */
const EVICTION_SCAN = 8;
/** Below this, a port belongs to a system service. */
const FIRST_UNPRIVILEGED_PORT = 1024;
/** Datagrams up to this size are hashed whole. */
const WHOLE_HASH_BYTES = 256;
/** Of a longer datagram, this many bytes at each end are hashed. */
const SAMPLE_BYTES = 64;
const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** What {@linkcode LoopGuard.check} says about a datagram's source:
 * `"ok"` to answer it, otherwise why not. */
export type SourceVerdict =
  | "ok"
  | "own-address"
  | "port-zero"
  | "broadcast"
  | "multicast"
  | "privileged-port"
  | "loop";

/** An interface address as `Deno.networkInterfaces()` lists it. */
export type InterfaceAddress = Pick<Deno.NetworkInterfaceInfo, "address" | "netmask">;

/**
 * The machine's interface addresses and netmasks, for
 * {@linkcode LoopGuardOptions.interfaces}; `undefined` without
 * `--allow-sys=networkInterfaces` (never a permission prompt): then a
 * subnet's broadcast address and the machine's network addresses cannot be
 * told from a client's.
 *
 * @example
 * ```ts
 * import { readInterfaces } from "./loop_guard.ts";
 * import { ok } from "node:assert/strict";
 * const interfaces = readInterfaces();
 * ok(interfaces === undefined || interfaces.some((each) => each.address === "127.0.0.1"));
 * ```
 */
export function readInterfaces(): InterfaceAddress[] | undefined {
  const permission = { name: "sys", kind: "networkInterfaces" } as const;
  if (Deno.permissions.querySync(permission).state !== "granted") return undefined;
  return Deno.networkInterfaces();
}

/** What a {@linkcode LoopGuard} needs to know about its server. */
export interface LoopGuardOptions {
  /** The addresses the server is bound to. A wildcard (`0.0.0.0`, `::`)
   * matches the loopback addresses with its port; list the machine's
   * interface addresses too, which a pure module cannot see. */
  ownAddresses: { hostname: string; port: number }[];
  /** The machine's interface addresses with their netmasks
   * (`Deno.networkInterfaces()`): each subnet's broadcast address is
   * refused, and each address is the server itself when it is bound to a
   * wildcard. Left out, only loopback's are known.
   * @default {[]} */
  interfaces?: InterfaceAddress[];
  /** Answer source ports below 1024 too.
   * @default {false} */
  allowPrivileged?: boolean;
}

/** A reply as remembered: its hash, when it went out, how often it came
 * back in a chain. */
interface SentReply {
  length: number;
  hash: number;
  at: number;
  bounces: number;
}

/** A peer we answered, and our latest replies to it. */
interface Peer {
  key: number | string;
  readonly replies: SentReply[];
  /** Its place in the table. */
  readonly slot: number;
}

/** The addresses the server is bound to on one port. */
interface OwnPort {
  hostnames: Set<string>;
  wildcard: boolean;
}

/**
 * Decides whether a datagram's source may be answered without starting or
 * feeding an echo loop; see the module documentation for the rules.
 *
 * @example
 * ```ts
 * import { LoopGuard } from "./loop_guard.ts";
 * import { equal } from "node:assert/strict";
 * const guard = new LoopGuard({ ownAddresses: [{ hostname: "0.0.0.0", port: 12000 }] });
 * const data = new TextEncoder().encode("hello");
 * equal(guard.check("::ffff:127.0.0.1", 12000, data, 0), "own-address");
 * equal(guard.check("255.255.255.255", 40000, data, 0), "broadcast");
 * equal(guard.check("ff02::1", 40000, data, 0), "multicast");
 * equal(guard.check("10.0.0.2", 53, data, 0), "privileged-port");
 * // Another echo server at 10.0.0.2:12000 sends our reply back, twice:
 * equal(guard.check("10.0.0.2", 12000, data, 0), "ok");
 * guard.sent("10.0.0.2", 12000, data, 0);
 * equal(guard.check("10.0.0.2", 12000, data, 1), "ok"); // could be a retry
 * guard.sent("10.0.0.2", 12000, data, 1);
 * equal(guard.check("10.0.0.2", 12000, data, 2), "loop");
 * ```
 */
export class LoopGuard {
  readonly #own = new Map<number, OwnPort>();
  readonly #allowPrivileged: boolean;
  /** IPv4 broadcast addresses, as numbers. */
  readonly #broadcasts = new Set<number>([LIMITED_BROADCAST, 0, LOOPBACK_BROADCAST]);
  readonly #peers = new Map<number | string, Peer>();
  /** Every peer, each at its place. Nothing is reordered on use, as a
   * least-recently-used list would be: V8 took about 9 µs per Map or Set
   * delete-and-add at thousands of entries, too slow for every reply. */
  readonly #slots: Peer[] = [];
  /** The next place the clock hand looks at for a peer to forget. */
  #hand = 0;

  /** A guard for a server bound to `options.ownAddresses`. */
  constructor(options: LoopGuardOptions) {
    this.#allowPrivileged = options.allowPrivileged ?? false;
    const interfaces = options.interfaces ?? [];
    for (const { hostname, port } of options.ownAddresses) {
      const address = normalizeAddress(hostname);
      let own = this.#own.get(port);
      if (own === undefined) this.#own.set(port, own = { hostnames: new Set(), wildcard: false });
      own.hostnames.add(address);
      if (!UNSPECIFIED.has(address)) continue;
      own.wildcard = true;
      for (const each of interfaces) own.hostnames.add(normalizeAddress(each.address));
    }
    for (const each of interfaces) {
      const broadcast = subnetBroadcast(each);
      if (broadcast !== undefined) this.#broadcasts.add(broadcast);
    }
  }

  /** Checks a datagram from `hostname:port` at `now` (ms) before it is
   * answered. A bounce it recognises is counted, so call it once per
   * datagram. */
  check(hostname: string, port: number, data: Uint8Array, now: number): SourceVerdict {
    if (port === 0) return "port-zero";
    const own = this.#own.get(port);
    if (own !== undefined && isOwn(own, hostname)) return "own-address";
    const group = this.#group(hostname);
    if (group !== undefined) return group;
    if (port < FIRST_UNPRIVILEGED_PORT && !this.#allowPrivileged) return "privileged-port";
    const peer = this.#peers.get(clientKey(hostname, port));
    return peer !== undefined && bounced(peer, data, now) ? "loop" : "ok";
  }

  /** Notes a reply that was sent to `hostname:port` at `now` (ms), with the
   * bytes as they went out (stamp included), so that the same bytes coming
   * back from there within the window are recognised. */
  sent(hostname: string, port: number, data: Uint8Array, now: number): void {
    const { replies } = this.#peer(clientKey(hostname, port), now);
    const tail = memo(data);
    const hash = tail(0);
    // A reply that ends with one that bounced continues its chain.
    let bounces = 0;
    let same = -1;
    let oldest = 0;
    for (let index = 0; index < replies.length; index++) {
      const reply = replies[index]!;
      if (live(reply, now) && endsWith(data, reply, tail)) {
        bounces = Math.max(bounces, reply.bounces);
      }
      if (reply.length === data.length && reply.hash === hash) same = index;
      if (reply.at < replies[oldest]!.at) oldest = index;
    }
    const place = same >= 0 ? same : replies.length < REPLIES_PER_PEER ? replies.length : oldest;
    const reply = replies[place];
    if (reply === undefined) replies[place] = { length: data.length, hash, at: now, bounces };
    else {(reply.length = data.length),
        (reply.hash = hash),
        (reply.at = now),
        (reply.bounces = bounces);}
  }

  /** Whether `hostname` stands for many hosts: a broadcast or multicast
   * address, in any spelling. No allocation for an IPv4 address. */
  #group(hostname: string): "broadcast" | "multicast" | undefined {
    let v4 = ipv4Number(hostname);
    if (v4 < 0) {
      // Only these IPv6 spellings can be multicast or IPv4-mapped.
      if (!MAYBE_GROUP_OR_MAPPED.test(hostname)) return undefined;
      const address = normalizeAddress(hostname);
      v4 = ipv4Number(address);
      if (v4 < 0) return address.startsWith("ff") ? "multicast" : undefined;
    }
    if (this.#broadcasts.has(v4)) return "broadcast";
    return v4 >>> 28 === IPV4_MULTICAST_HIGH_BITS ? "multicast" : undefined;
  }

  /** Peers remembered, at most {@linkcode MAX_LOOP_ENTRIES}. */
  get size(): number {
    return this.#slots.length;
  }

  /** The entry of `hostname:port`, made if need be in a free place or in
   * the place of a forgotten peer. */
  #peer(key: number | string, now: number): Peer {
    const known = this.#peers.get(key);
    if (known !== undefined) return known;
    let peer: Peer;
    if (this.#slots.length < MAX_LOOP_ENTRIES) {
      peer = { key, replies: [], slot: this.#slots.length };
      this.#slots.push(peer);
    } else {
      peer = this.#slots[this.#forget(now)]!;
      peer.key = key;
      for (const reply of peer.replies) {
        (reply.at = -Infinity), (reply.length = -1), (reply.bounces = 0);
      }
    }
    this.#peers.set(key, peer);
    return peer;
  }

  #forget(now: number): number {
    let chosen = this.#slots[this.#hand]!;
    for (let look = 0; look < EVICTION_SCAN; look++) {
      const peer = this.#slots[(this.#hand + look) % this.#slots.length]!;
      if (!anyLive(peer, now)) {
        chosen = peer;
        break;
      }
    }
    this.#hand = (chosen.slot + 1) % this.#slots.length;
    this.#peers.delete(chosen.key);
    return chosen.slot;
  }
}

function anyLive(peer: Peer, now: number): boolean {
  for (const reply of peer.replies) if (live(reply, now)) return true;
  return false;
}

/** Counts a bounce on every live reply that `data` ends with; whether one
 * of them has now come back {@linkcode LOOP_BOUNCES} times. */
function bounced(peer: Peer, data: Uint8Array, now: number): boolean {
  const tail = memo(data);
  let loop = false;
  for (const reply of peer.replies) {
    if (!live(reply, now) || !endsWith(data, reply, tail)) continue;
    reply.bounces++;
    if (reply.bounces >= LOOP_BOUNCES) loop = true;
  }
  return loop;
}

/** Whether a reply sent is recent enough to come back as a loop. */
function live(reply: SentReply, now: number): boolean {
  return now - reply.at <= LOOP_WINDOW_MS;
}

/** Whether `data` is `reply`, or `reply` behind a prefix of at most
 * `MAX_PREFIX_BYTES` (a prefixing server's work). */
function endsWith(data: Uint8Array, reply: SentReply, tail: TailHasher): boolean {
  const extra = data.length - reply.length;
  return extra >= 0 && extra <= MAX_PREFIX_BYTES && tail(extra) === reply.hash;
}

/** The fingerprint of `data` without its first `skip` bytes. */
type TailHasher = (skip: number) => number;

let memoData: Uint8Array | undefined;
let memoSkip = -1;
let memoHash = 0;
const memoTail: TailHasher = (skip) => {
  if (skip !== memoSkip) (memoSkip = skip), (memoHash = fingerprint(memoData!, skip));
  return memoHash;
};
/** One shared tail hasher, reset for `data`: no closure per call. */
function memo(data: Uint8Array): TailHasher {
  memoData = data;
  memoSkip = -1;
  return memoTail;
}

/** FNV-1a of the length and bytes of `bytes` from `start`: every byte up
 * to {@linkcode WHOLE_HASH_BYTES}, otherwise the first and last
 * {@linkcode SAMPLE_BYTES}. */
function fingerprint(bytes: Uint8Array, start: number): number {
  const length = bytes.length - start;
  let hash = FNV_OFFSET_BASIS;
  for (let shift = 0; shift < 32; shift += 8) {
    hash = Math.imul(hash ^ ((length >>> shift) & 0xff), FNV_PRIME);
  }
  const whole = length <= WHOLE_HASH_BYTES;
  const headEnd = whole ? bytes.length : start + SAMPLE_BYTES;
  for (let at = start; at < headEnd; at++) hash = Math.imul(hash ^ bytes[at]!, FNV_PRIME);
  if (!whole) {
    for (let at = bytes.length - SAMPLE_BYTES; at < bytes.length; at++) {
      hash = Math.imul(hash ^ bytes[at]!, FNV_PRIME);
    }
  }
  return hash >>> 0;
}

/** `255.255.255.255`, every host of the local network. */
const LIMITED_BROADCAST = 0xffffffff;
/** `127.255.255.255`, the broadcast of loopback's `127.0.0.0/8`. */
const LOOPBACK_BROADCAST = 0x7fffffff;
/** `224.0.0.0/4`: the top four bits of an IPv4 multicast address. */
const IPV4_MULTICAST_HIGH_BITS = 0xe;
/** IPv6 spellings that may be multicast (`ff00::/8`) or IPv4-mapped
 * (`::ffff:…`, `0:0:0:0:0:ffff:…`). */
const MAYBE_GROUP_OR_MAPPED = /^(ff|::|0)/i;

/** The broadcast address of an IPv4 interface's subnet, as a number; none
 * for IPv6, and for a /31 or /32 (point to point, RFC 3021). */
function subnetBroadcast({ address, netmask }: InterfaceAddress): number | undefined {
  const host = ipv4Number(address);
  const mask = ipv4Number(netmask);
  if (host < 0 || mask < 0 || mask >= 0xfffffffe) return undefined;
  return ((host | ~mask) >>> 0);
}

/** Addresses that reach this machine whatever it is bound to: sending to
 * the unspecified address delivers to the local host. */
const UNSPECIFIED = new Set(["0.0.0.0", "::"]);
/** An IPv4-mapped IPv6 address as the URL parser writes it: `::ffff:7f00:1`. */
const MAPPED_IPV4 = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/** Whether `hostname` is the server itself on a port it is bound to. */
function isOwn(own: OwnPort, hostname: string): boolean {
  const address = normalizeAddress(hostname);
  if (own.hostnames.has(address) || UNSPECIFIED.has(address)) return true;
  return own.wildcard && (address.startsWith("127.") || address === "::1");
}

/** One spelling per address: IPv6 in canonical form, an IPv4-mapped IPv6
 * address as its IPv4 address (`::ffff:127.0.0.1` → `127.0.0.1`). */
function normalizeAddress(hostname: string): string {
  const ipv6 = canonicalIPv6(hostname);
  if (ipv6 === undefined) return hostname.toLowerCase();
  const mapped = MAPPED_IPV4.exec(ipv6);
  if (mapped === null) return ipv6;
  const high = parseInt(mapped[1]!, 16);
  const low = parseInt(mapped[2]!, 16);
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}
