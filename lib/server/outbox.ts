/**
 * Performs the server's reply verdicts: stamps each reply as it goes out,
 * sends it (twice for `--duplicate`),
 * holds it back for `--delay` and `--reorder` within fixed limits, and
 * counts what happened. One failed send is logged and counted, never more.
 *
 * A reply held for `--reorder` waits until a reply to a later request of
 * the same client has gone out, then follows it: it is overtaken. If none
 * comes within `MAX_REORDER_HOLD_MS`, the replies held for that client go
 * out newest first, so that all but the newest are still overtaken and no
 * reply waits long enough to be taken for a loss. Each held reply's fate is
 * logged as it leaves.
 *
 * Held replies have a cap in all, and each client and each address a share
 * of it: a flood from the ports of one address cannot take the room another
 * address's replies need.
 *
 * @module
 */

import { writeStamp } from "../../protocol.ts";
import {
  MAX_HELD_BYTES,
  MAX_HELD_BYTES_PER_ADDRESS,
  MAX_HELD_REPLIES,
  MAX_HELD_REPLIES_PER_ADDRESS,
  MAX_HELD_REPLIES_PER_CLIENT,
  MAX_REORDER_HOLD_MS,
} from "../../settings.ts";
import { escapeBytes } from "../shared/log.ts";
import { addressKey, clientKey, describeError } from "../shared/net.ts";
import { QUEUED, type SendReport } from "../shared/socket.ts";

import type { Fate, ServerStats, StampPlan } from "./verdict.ts";

/** How replies leave: the runtime's socket or the C library's. A send that
 * fails throws (or rejects); one that returns `QUEUED` (the C library's,
 * which sends in batches) tells `report` what became of the reply. */
export type Send = (
  data: Uint8Array,
  to: Deno.NetAddr,
  report?: SendReport,
) => Promise<unknown> | void | typeof QUEUED;

/** A reply on its way out. */
interface Outgoing {
  data: Uint8Array;
  to: Deno.NetAddr;
  fate: Fate;
  /** The stamp, with its padding offset in `data`. */
  stamp: StampPlan | undefined;
  /** Arrival order: a reply to a later request has a higher rank. */
  rank: number;
  /** When `--reorder` parked it (`clock()` time). */
  parkedAt: number;
}

/** The replies `--reorder` holds for one client, oldest first, and the
 * timer that bounds their wait. */
interface Parked {
  replies: Outgoing[];
  timer: ReturnType<typeof setTimeout>;
}

/** Replies held back (in all, or for one address): how many, and bytes. */
interface Share {
  replies: number;
  bytes: number;
}

/** What the outbox needs besides the socket. */
export interface OutboxOptions {
  /** Bytes before the request in each reply (`prefix` mode): the stamp's
   * place in the request moves by as many. */
  prefixLength: number;
  stats: ServerStats;
  /** The clock of `StampPlan.receivedAt`, ms since the Unix epoch. */
  clock: () => number;
  /** Told of every reply as it leaves (the loop guard's memory): as the
   * send starts, and again with the time a queued batch left. */
  sent: (data: Uint8Array, to: Deno.NetAddr, at: number) => void;
  /** Told, as one log text, what became of a reply held for `--reorder`,
   * of a failed send and of an overflow. */
  note: (to: Deno.NetAddr, text: string) => void;
}

/**
 * Sends replies now or later.
 *
 * @example
 * ```ts
 * import { Outbox } from "./outbox.ts";
 * import { newServerStats, UNIMPAIRED } from "./verdict.ts";
 * import { equal } from "node:assert/strict";
 * const stats = newServerStats();
 * const sent: string[] = [];
 * const outbox = new Outbox((data) => void sent.push(new TextDecoder().decode(data)), {
 *   prefixLength: 0, stats, clock: Date.now, sent: () => {}, note: () => {},
 * });
 * const to = { transport: "udp" as const, hostname: "127.0.0.1", port: 40000 };
 * await outbox.send(new TextEncoder().encode("hi"), to, UNIMPAIRED, undefined);
 * equal(sent[0], "hi");
 * ```
 */
export class Outbox {
  readonly #send: Send;
  readonly #options: OutboxOptions;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /** The replies `--reorder` holds, by client. */
  readonly #parked = new Map<number | string, Parked>();
  /** Replies held per client and per address. A source is in them only
   * while a reply to it is held: at most `MAX_HELD_REPLIES` entries each,
   * whatever the sources a flood forges. */
  readonly #heldByClient = new Map<number | string, number>();
  readonly #heldByAddress = new Map<number | string, Share>();
  #rank = 0;
  #heldBytes = 0;
  #closed = false;

  /** Sends through `send`. */
  constructor(send: Send, options: OutboxOptions) {
    this.#send = send;
    this.#options = options;
  }

  /**
   * Sends `data`, a reply (see reply.ts), to `to` now, or holds it as
   * `fate` says; writes `stamp` into it as it goes out.
   */
  send(
    data: Uint8Array,
    to: Deno.NetAddr,
    fate: Fate,
    stamp: StampPlan | undefined,
  ): Promise<void> | undefined {
    const shift = this.#options.prefixLength;
    if (fate.delay <= 0 && !fate.reorder && !fate.duplicate && this.#parked.size === 0) {
      return this.#now(data, to, stamp, shift);
    }
    const placed = stamp && { ...stamp, paddingOffset: stamp.paddingOffset + shift };
    if (fate.delay > 0 && !this.#hold(data.length, to)) return undefined;
    // A reply that waits needs its own bytes: the receive buffer takes the
    // next request. (Copied only once there is room: a refused copy is
    // garbage.)
    const own = fate.delay > 0 || fate.reorder ? data.slice() : data;
    const outgoing: Outgoing = {
      data: own,
      to,
      fate,
      stamp: placed,
      rank: ++this.#rank,
      parkedAt: 0,
    };
    if (fate.delay <= 0) return this.#dispatch(outgoing);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#unhold(outgoing);
      void this.#dispatch(outgoing);
    }, fate.delay);
    this.#timers.add(timer);
    return undefined;
  }

  /** Abandons every held reply at once, counting them as abandoned. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const { timer } of this.#parked.values()) clearTimeout(timer);
    this.#parked.clear();
    this.#heldByClient.clear();
    this.#heldByAddress.clear();
    const { stats } = this.#options;
    stats.abandoned += stats.held;
    stats.held = 0;
    this.#heldBytes = 0;
  }

  /** Counts a reply of `bytes` as held, unless the limits are reached, in
   * all or for its client or address (then it is dropped and counted as
   * overflow). */
  #hold(bytes: number, to: Deno.NetAddr): boolean {
    const { stats } = this.#options;
    const client = clientKey(to.hostname, to.port);
    const address = addressKey(to.hostname);
    const ofClient = this.#heldByClient.get(client) ?? 0;
    const ofAddress = this.#heldByAddress.get(address) ?? { replies: 0, bytes: 0 };
    const held = { replies: stats.held, bytes: this.#heldBytes };
    const full = limitReached(bytes, held, ofClient, ofAddress);
    if (full !== undefined) {
      stats.overflow++;
      this.#options.note(to, `reply dropped: ${full} (overflow)`);
      return false;
    }
    stats.held++;
    this.#heldBytes += bytes;
    this.#heldByClient.set(client, ofClient + 1);
    ofAddress.replies++;
    ofAddress.bytes += bytes;
    this.#heldByAddress.set(address, ofAddress);
    return true;
  }

  /** Counts a held reply as gone (unless close() abandoned it already). */
  #unhold({ data, to }: Outgoing): void {
    if (this.#closed) return;
    this.#options.stats.held--;
    this.#heldBytes -= data.length;
    const client = clientKey(to.hostname, to.port);
    const ofClient = this.#heldByClient.get(client)!;
    if (ofClient > 1) this.#heldByClient.set(client, ofClient - 1);
    else this.#heldByClient.delete(client);
    const address = addressKey(to.hostname);
    const ofAddress = this.#heldByAddress.get(address)!;
    ofAddress.bytes -= data.length;
    if (--ofAddress.replies === 0) this.#heldByAddress.delete(address);
  }

  /** Sends a reply whose time has come, then the replies held for its
   * client that it overtook; or parks it, for `--reorder`. */
  async #dispatch(reply: Outgoing): Promise<void> {
    if (reply.fate.reorder) return this.#park(reply);
    if (await this.#transmit(reply)) {
      await this.#release(clientKey(reply.to.hostname, reply.to.port), reply);
    }
  }

  /** Holds `reply` until a later reply to its client overtakes it, or the
   * hold of the oldest one held for that client runs out. */
  #park(reply: Outgoing): void {
    if (!this.#hold(reply.data.length, reply.to)) return;
    const key = clientKey(reply.to.hostname, reply.to.port);
    let parked = this.#parked.get(key);
    if (parked === undefined) {
      const timer = setTimeout(() => void this.#release(key), MAX_REORDER_HOLD_MS);
      parked = { replies: [], timer };
      this.#parked.set(key, parked);
    }
    reply.parkedAt = this.#options.clock();
    parked.replies.push(reply);
  }

  /** Sends, newest first, the replies held for client `key` that
   * `overtaking` (a reply just sent) overtook; without it, when the hold
   * has run out, all of them: the first in order, the others overtaken. */
  async #release(key: number | string, overtaking?: Outgoing): Promise<void> {
    const parked = this.#parked.get(key);
    if (parked === undefined) return;
    const rank = overtaking?.rank ?? Infinity;
    const due = parked.replies.filter((reply) => reply.rank < rank).reverse();
    parked.replies = parked.replies.filter((reply) => reply.rank > rank);
    if (parked.replies.length === 0) {
      clearTimeout(parked.timer);
      this.#parked.delete(key);
    }
    let overtaken = overtaking !== undefined;
    for (const reply of due) {
      this.#unhold(reply);
      const held = this.#options.clock() - reply.parkedAt;
      if (!(await this.#transmit(reply))) continue;
      if (overtaken) this.#options.stats.reordered++;
      this.#options.note(reply.to, releaseText(reply.data, held, overtaken));
      overtaken = true;
    }
  }

  #current: { data: Uint8Array; to: Deno.NetAddr; at: number } = {
    data: new Uint8Array(),
    to: undefined as unknown as Deno.NetAddr,
    at: 0,
  };
  /** What became of a reply sent at once: now, or, for a queued one,
   * when its batch left. */
  readonly #report: SendReport = {
    sent: (data, to, at) => {
      this.#options.stats.replied++;
      this.#options.sent(data, to, at);
    },
    failed: (to, error) => {
      this.#options.stats.failed++;
      this.#sendFailed(to, error);
    },
  };
  readonly #nowSent = () => {
    const { data, to, at } = this.#current;
    this.#report.sent(data, to, at);
  };
  readonly #nowFailed = (error: unknown) => this.#report.failed(this.#current.to, error);

  /** Says that a send failed: a send to a vanished client or after close
   * must not end the loop (and is not worth a line while closing). */
  #sendFailed(to: Deno.NetAddr, error: unknown): void {
    if (!this.#closed) this.#options.note(to, `send failed: ${describeError(error)}`);
  }

  /** A reply sent at once, the common case: no object, no async frame. */
  #now(data: Uint8Array, to: Deno.NetAddr, stamp: StampPlan | undefined, shift: number) {
    const now = this.#options.clock();
    if (stamp) writeStampAt(data, stamp, stamp.paddingOffset + shift, now);
    const current = this.#current;
    current.data = data;
    current.to = to;
    current.at = now;
    // The loop guard hears of the reply before the send returns: an echo
    // of it can come in, and be checked, before the send's promise settles.
    this.#options.sent(data, to, now);
    let pending;
    try {
      pending = this.#send(data, to, this.#report);
    } catch (error) {
      this.#nowFailed(error);
      return undefined;
    }
    if (pending === QUEUED) return undefined;
    if (pending === undefined) return void this.#nowSent();
    return pending.then(this.#nowSent, this.#nowFailed);
  }

  /** Sends a reply (twice for `--duplicate`); whether it went out. A
   * request is counted once: as failed when its reply could not be sent,
   * else as replied, even if its duplicate could not. */
  async #transmit({ data, to, fate, stamp }: Outgoing): Promise<boolean> {
    const { stats, clock } = this.#options;
    const now = clock();
    if (stamp) writeStampAt(data, stamp, stamp.paddingOffset, now);
    // Told before the send returns, as in #now: an echo can come in first.
    this.#options.sent(data, to, now);
    try {
      await this.#send(data, to);
    } catch (error) {
      stats.failed++;
      this.#sendFailed(to, error);
      return false;
    }
    stats.replied++;
    if (!fate.duplicate) return true;
    try {
      await this.#send(data, to);
      stats.duplicated++;
    } catch (error) {
      this.#sendFailed(to, error);
    }
    return true;
  }
}

/** Which limit holding one more reply of `bytes` would pass, given what is
 * held in all, for its client and for its address; `undefined` if none. */
function limitReached(
  bytes: number,
  held: Share,
  ofClient: number,
  ofAddress: Share,
): string | undefined {
  if (held.replies >= MAX_HELD_REPLIES || held.bytes + bytes > MAX_HELD_BYTES) {
    return "too many replies held back";
  }
  if (ofClient >= MAX_HELD_REPLIES_PER_CLIENT) {
    return "too many replies held back for this client";
  }
  if (
    ofAddress.replies >= MAX_HELD_REPLIES_PER_ADDRESS ||
    ofAddress.bytes + bytes > MAX_HELD_BYTES_PER_ADDRESS
  ) return "too many replies held back for this address";
  return undefined;
}

/** The log text of a reply held for `--reorder` as it leaves, after
 * `held` ms: overtaken by a later reply, or in order. */
function releaseText(data: Uint8Array, held: number, overtaken: boolean): string {
  const what = `reply "${escapeBytes(data)}" held ${held.toFixed(0)} ms`;
  return overtaken
    ? `${what}, sent after a later reply (reordered)`
    : `${what}, sent in order: no later reply came in time`;
}

/** Writes a reply's stamp over its padding at `offset`, as it goes out at
 * `now`: the count, the receive time, the time held, the refusals. */
function writeStampAt(data: Uint8Array, stamp: StampPlan, offset: number, now: number): void {
  const { count, receivedAt, refused } = stamp;
  const held = (now - receivedAt) * 1000;
  writeStamp(data, offset, data.length - offset, { count, received: receivedAt, held, refused });
}
