/**
 * Keeps a forged datagram from making the server answer what it must not:
 * {@linkcode LoopGuard.check} refuses the server's own address, source port
 * 0, broadcast and multicast sources, and system-service ports unless
 * allowed, and tells an echo loop by timing (a peer's datagram that comes
 * right after our reply left, again and again), not by content. Pure: the
 * caller passes the time in ms; no socket, no timer. docs/security.md says
 * why it works this way and what it cannot see.
 *
 * @module
 */

import {
  EVICTION_SCAN,
  FAST_BOUNCE_MS,
  LOOP_BOUNCES,
  MAX_LOOP_ENTRIES,
  MAX_LOOP_SCORE,
} from "../../settings.ts";
import { findRecord, type PingRecord } from "../../protocol.ts";
import { canonicalIPv6, clientKey, ipv4Number } from "../shared/net.ts";
import { KeyMap } from "../shared/keyed_hash.ts";

/** Below this, a port belongs to a system service. */
const FIRST_UNPRIVILEGED_PORT = 1024;

/** What {@linkcode LoopGuard.check} says about a datagram's source:
 * `"ok"` to answer it, otherwise why not. */
export type SourceCheck =
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

/** A peer we answered: when our last reply to it left, its score, and
 * the highest seq of the udping run it last sent. */
interface Peer {
  key: number;
  /** When our last reply to it left, ms; -Infinity: never. */
  sentAt: number;
  /** Quick datagrams less slow ones, never below 0. */
  score: number;
  /** The token of its last quick udping request, -1 for none. */
  token: number;
  /** The highest seq seen with that token. */
  seq: number;
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
 * import { LOOP_BOUNCES } from "../../settings.ts";
 * import { equal } from "node:assert/strict";
 * const guard = new LoopGuard({ ownAddresses: [{ hostname: "0.0.0.0", port: 12000 }] });
 * const data = new TextEncoder().encode("hello");
 * equal(guard.check("::ffff:127.0.0.1", 12000, data, 0), "own-address");
 * equal(guard.check("255.255.255.255", 40000, data, 0), "broadcast");
 * equal(guard.check("ff02::1", 40000, data, 0), "multicast");
 * equal(guard.check("10.0.0.2", 53, data, 0), "privileged-port");
 * // Another echo server at 10.0.0.2:12000 answers each reply at once:
 * let now = 0;
 * for (let bounce = 0; bounce <= LOOP_BOUNCES; bounce++) {
 *   equal(guard.check("10.0.0.2", 12000, data, now), "ok");
 *   guard.sent("10.0.0.2", 12000, now += 0.01);
 *   now += 0.05;
 * }
 * equal(guard.check("10.0.0.2", 12000, data, now), "loop");
 * // A client sending every millisecond never scores:
 * for (let send = 0; send < 100; send++) {
 *   equal(guard.check("10.0.0.3", 40000, data, send), "ok");
 *   guard.sent("10.0.0.3", 40000, send + 0.05);
 * }
 * ```
 */
export class LoopGuard {
  readonly #own = new Map<number, OwnPort>();
  readonly #allowPrivileged: boolean;
  /** IPv4 broadcast addresses, as numbers. */
  readonly #broadcasts = new Set<number>([LIMITED_BROADCAST, 0, LOOPBACK_BROADCAST]);
  readonly #peers = new KeyMap<Peer>(MAX_LOOP_ENTRIES);
  /** Every peer, each at its place. Nothing is reordered on use, as a
   * least-recently-used list would be: a Map delete-and-add on every reply
   * is too slow (docs/performance.md). */
  readonly #slots: Peer[] = [];
  /** The peer last looked up: the reply to a datagram asks for the peer
   * its check just found. After a 10 ms idle, every table the server
   * touches for a request is a cache miss; one lookup less, 5 µs less. */
  #last: Peer | undefined;
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

  /** Checks a datagram from `hostname:port` that arrived at `now` (ms)
   * before it is answered. It is scored, so call it once per datagram.
   * `record` is its udping record when the caller has parsed it already
   * (the policy has: one parse per datagram, not two). */
  check(
    hostname: string,
    port: number,
    data: Uint8Array,
    now: number,
    record: PingRecord | null = findRecord(data, { anywhere: false }),
  ): SourceCheck {
    if (port === 0) return "port-zero";
    const own = this.#own.get(port);
    if (own !== undefined && isOwn(own, hostname)) return "own-address";
    const group = this.#group(hostname);
    if (group !== undefined) return group;
    if (port < FIRST_UNPRIVILEGED_PORT && !this.#allowPrivileged) return "privileged-port";
    const peer = this.#find(clientKey(hostname, port));
    if (peer === undefined) return "ok";
    // A datagram that arrived before our reply left (a kernel receive
    // time, --fast) is as quick as one right after it.
    if (now - peer.sentAt >= FAST_BOUNCE_MS) {
      if (peer.score > 0) peer.score--;
      return "ok";
    }
    if (newSeq(peer, record)) return "ok";
    if (peer.score < MAX_LOOP_SCORE) peer.score++;
    return peer.score > LOOP_BOUNCES ? "loop" : "ok";
  }

  /** Notes that a reply to `hostname:port` left at `now` (ms): when it
   * really went out, after any `--delay` or `--reorder` hold. */
  sent(hostname: string, port: number, now: number): void {
    const peer = this.#peer(clientKey(hostname, port), now);
    if (now > peer.sentAt) peer.sentAt = now;
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

  /** The peer of `key`, if known. */
  #find(key: number): Peer | undefined {
    if (this.#last?.key === key) return this.#last;
    const peer = this.#peers.get(key);
    if (peer !== undefined) this.#last = peer;
    return peer;
  }

  /** The entry of `key`, made if need be in a free place or in the place of
   * a forgotten peer. */
  #peer(key: number, now: number): Peer {
    const known = this.#find(key);
    if (known !== undefined) return known;
    let peer: Peer;
    if (this.#slots.length < MAX_LOOP_ENTRIES) {
      peer = { key, sentAt: -Infinity, score: 0, token: -1, seq: 0, slot: this.#slots.length };
      this.#slots.push(peer);
    } else {
      peer = this.#slots[this.#forget(now)]!;
      (peer.key = key), (peer.sentAt = -Infinity), (peer.score = 0), (peer.token = -1);
    }
    this.#peers.set(key, peer);
    return this.#last = peer;
  }

  /** Frees a place: the first peer under the clock hand that our last reply
   * left more than {@linkcode FAST_BOUNCE_MS} ago (its next datagram would
   * be slow, as a stranger's), else the one under the hand. */
  #forget(now: number): number {
    let chosen = this.#slots[this.#hand]!;
    for (let look = 0; look < EVICTION_SCAN; look++) {
      const peer = this.#slots[(this.#hand + look) % this.#slots.length]!;
      if (now - peer.sentAt >= FAST_BOUNCE_MS) {
        chosen = peer;
        break;
      }
    }
    this.#hand = (chosen.slot + 1) % this.#slots.length;
    this.#peers.delete(chosen.key);
    return chosen.slot;
  }
}

/** Whether `head` is the record of a udping request with a higher seq than
 * the peer's run has sent so far (and notes it): a `-f` client's next request. */
function newSeq(peer: Peer, head: PingRecord | null): boolean {
  if (head === null) return false;
  if (head.tokenValue !== peer.token) {
    // Another run, or a loop of requests with several tokens: not new.
    (peer.token = head.tokenValue), (peer.seq = head.seq);
    return false;
  }
  if (head.seq <= peer.seq) return false;
  peer.seq = head.seq;
  return true;
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
