/**
 * Performs the server's reply verdicts: builds the reply in the receive
 * buffer, stamps it as it goes out, sends it (twice for `--duplicate`),
 * holds it back for `--delay` and `--reorder` within fixed limits, and
 * counts what happened. One failed send is logged and counted, never more.
 *
 * @module
 */

import { writeStamp } from "../protocol.ts";
import { MAX_HELD_BYTES, MAX_HELD_REPLIES, MAX_REORDER_HOLD_MS } from "../settings.ts";
import type { Fate } from "./impairments.ts";
import { describeError } from "./net.ts";
import { replyInPlace, type ReplyMode } from "./reply.ts";
import type { ServerStats } from "./server_stats.ts";
import type { StampPlan } from "./verdict.ts";

/** How replies leave: the runtime's socket or the C library's. A send that
 * fails throws (or rejects). */
export type Send = (data: Uint8Array, to: Deno.NetAddr) => Promise<unknown> | void;

/** A reply on its way out. */
interface Outgoing {
  data: Uint8Array;
  to: Deno.NetAddr;
  fate: Fate;
  /** The stamp, with its padding offset in `data`. */
  stamp: StampPlan | undefined;
}

/** What the outbox needs besides the socket. */
export interface OutboxOptions {
  mode: ReplyMode;
  /** The prefix's length in the receive buffer (`prefix` mode). */
  prefixLength: number;
  stats: ServerStats;
  /** The clock of `StampPlan.receivedAt`, ms since the Unix epoch. */
  clock: () => number;
  /** Told of every reply sent (the loop guard's memory). */
  sent: (data: Uint8Array, to: Deno.NetAddr, at: number) => void;
  /** Told of a failed send or an overflow, as one log text. */
  warn: (to: Deno.NetAddr, text: string) => void;
}

/**
 * Sends replies now or later.
 *
 * @example
 * ```ts
 * import { Outbox } from "./outbox.ts";
 * import { newServerStats } from "./server_stats.ts";
 * import { UNIMPAIRED } from "./impairments.ts";
 * import { equal } from "node:assert/strict";
 * const stats = newServerStats();
 * const sent: string[] = [];
 * const outbox = new Outbox((data) => void sent.push(new TextDecoder().decode(data)), {
 *   mode: "upper", prefixLength: 0, stats, clock: Date.now, sent: () => {}, warn: () => {},
 * });
 * const to = { transport: "udp" as const, hostname: "127.0.0.1", port: 40000 };
 * await outbox.reply(new TextEncoder().encode("hi"), 2, to, UNIMPAIRED, undefined);
 * equal(sent[0], "HI");
 * ```
 */
export class Outbox {
  readonly #send: Send;
  readonly #options: OutboxOptions;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /** The one reply `--reorder` holds until the next reply has gone out. */
  #parked: { reply: Outgoing; timer: ReturnType<typeof setTimeout> } | undefined;
  #heldBytes = 0;
  #closed = false;

  /** Sends through `send`. */
  constructor(send: Send, options: OutboxOptions) {
    this.#send = send;
    this.#options = options;
  }

  /**
   * Turns the request in `buffer` (after the prefix, `length` bytes) into
   * its reply and sends it to `to` now, or holds it as `fate` says.
   */
  reply(
    buffer: Uint8Array,
    length: number,
    to: Deno.NetAddr,
    fate: Fate,
    stamp: StampPlan | undefined,
  ): Promise<void> | undefined {
    const { mode, prefixLength } = this.#options;
    let data = replyInPlace(buffer, prefixLength, length, mode);
    if (data === undefined) return undefined;
    if (fate.delay <= 0 && !fate.reorder && !fate.duplicate && this.#parked === undefined) {
      return this.#now(data, to, stamp, data.length - length);
    }
    const placed = stamp && { ...stamp, paddingOffset: stamp.paddingOffset + data.length - length };
    if (fate.delay > 0 && !this.#hold(data.length, to)) return undefined;
    // A reply that waits needs its own bytes: the buffer takes the next
    // request. (Copied only once there is room: a refused copy is garbage.)
    if (fate.delay > 0 || fate.reorder) data = data.slice();
    const reply: Outgoing = { data, to, fate, stamp: placed };
    if (fate.delay <= 0) return this.#dispatch(reply);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#release(reply);
      void this.#dispatch(reply);
    }, fate.delay);
    this.#timers.add(timer);
    return undefined;
  }

  /** Abandons every held reply at once. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    if (this.#parked) clearTimeout(this.#parked.timer);
    this.#parked = undefined;
  }

  /** Counts a reply of `bytes` as held, unless the limits are reached
   * (then it is dropped and counted as overflow). */
  #hold(bytes: number, to: Deno.NetAddr): boolean {
    const { stats } = this.#options;
    if (stats.held >= MAX_HELD_REPLIES || this.#heldBytes + bytes > MAX_HELD_BYTES) {
      stats.overflow++;
      this.#options.warn(to, "reply dropped: too many replies held back (overflow)");
      return false;
    }
    stats.held++;
    this.#heldBytes += bytes;
    return true;
  }

  #release(reply: Outgoing): void {
    this.#options.stats.held--;
    this.#heldBytes -= reply.data.length;
  }

  /** Sends a reply whose time has come, or parks it for `--reorder`; a
   * parked reply goes out right after the next one. */
  async #dispatch(reply: Outgoing): Promise<void> {
    if (reply.fate.reorder && this.#parked === undefined) {
      if (!this.#hold(reply.data.length, reply.to)) return;
      const timer = setTimeout(() => {
        this.#parked = undefined;
        this.#release(reply);
        void this.#transmit(reply);
      }, MAX_REORDER_HOLD_MS);
      this.#parked = { reply, timer };
      return;
    }
    await this.#transmit(reply);
    const parked = this.#parked;
    if (parked === undefined) return;
    this.#parked = undefined;
    clearTimeout(parked.timer);
    this.#release(parked.reply);
    this.#options.stats.reordered++;
    await this.#transmit(parked.reply);
  }

  #current: { data: Uint8Array; to: Deno.NetAddr; at: number } = {
    data: new Uint8Array(),
    to: undefined as unknown as Deno.NetAddr,
    at: 0,
  };
  readonly #nowSent = () => {
    const { data, to, at } = this.#current;
    this.#options.stats.replied++;
    this.#options.sent(data, to, at);
  };
  readonly #nowFailed = (error: unknown) => this.#failed(this.#current.to, error);

  /** Counts a failed send and says so: a send to a vanished client or after
   * close must not end the loop (and is not worth a line while closing). */
  #failed(to: Deno.NetAddr, error: unknown): void {
    this.#options.stats.failed++;
    if (!this.#closed) this.#options.warn(to, `send failed: ${describeError(error)}`);
  }

  /** A reply sent at once, the common case: no object, no async frame. */
  #now(data: Uint8Array, to: Deno.NetAddr, stamp: StampPlan | undefined, shift: number) {
    const now = this.#options.clock();
    if (stamp) writeStampAt(data, stamp, stamp.paddingOffset + shift, now);
    const current = this.#current;
    current.data = data;
    current.to = to;
    current.at = now;
    let pending;
    try {
      pending = this.#send(data, to);
    } catch (error) {
      this.#nowFailed(error);
      return undefined;
    }
    if (pending === undefined) return void this.#nowSent();
    return pending.then(this.#nowSent, this.#nowFailed);
  }

  async #transmit({ data, to, fate, stamp }: Outgoing): Promise<void> {
    const { stats, clock } = this.#options;
    const now = clock();
    if (stamp) writeStampAt(data, stamp, stamp.paddingOffset, now);
    try {
      await this.#send(data, to);
      stats.replied++;
      this.#options.sent(data, to, now);
      if (fate.duplicate) {
        await this.#send(data, to);
        stats.duplicated++;
      }
    } catch (error) {
      this.#failed(to, error);
    }
  }
}

/** Writes a reply's stamp over its padding at `offset`, as it goes out at
 * `now`: the count, the receive time, the time held, the refusals. */
function writeStampAt(data: Uint8Array, stamp: StampPlan, offset: number, now: number): void {
  const { count, receivedAt, refused } = stamp;
  const held = (now - receivedAt) * 1000;
  writeStamp(data, offset, data.length - offset, { count, received: receivedAt, held, refused });
}
