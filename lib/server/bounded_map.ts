/**
 * Per-client state in bounded memory: a map that forgets its least recently
 * used entry, a request counter per client token, and a count of distinct
 * clients. A flood of new (or forged) sources cannot grow any of them.
 *
 * @module
 */

import { MAX_TRACKED_CLIENTS, MAX_TRACKED_TOKENS } from "../../settings.ts";

/**
 * A map that holds at most `capacity` entries and forgets the least recently
 * used one first. (A Map keeps insertion order, so re-inserting on each use
 * makes the first key the oldest.)
 *
 * @example
 * ```ts
 * import { LruMap } from "./bounded_map.ts";
 * import { equal } from "node:assert/strict";
 * const recent = new LruMap<string, number>(2);
 * recent.set("a", 1);
 * recent.set("b", 2);
 * recent.set("c", 3); // "a" is forgotten
 * equal(recent.get("a"), undefined);
 * ```
 */
export class LruMap<Key, Value> {
  readonly #entries = new Map<Key, Value>();
  readonly #capacity: number;
  /** The most recently used key: touching it again needs no reordering,
   * which makes a single busy client cheap. */
  #newest: Key | undefined;

  /** A map of at most `capacity` entries. */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** The value for `key`, now the most recently used. */
  get(key: Key): Value | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined && key !== this.#newest) this.set(key, value);
    return value;
  }

  /** Sets `key`, forgetting the least recently used entry when full. */
  set(key: Key, value: Value): void {
    if (key !== this.#newest) this.#entries.delete(key);
    this.#entries.set(key, value);
    this.#newest = key;
    if (this.#entries.size > this.#capacity) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }

  /** How many entries it holds. */
  get size(): number {
    return this.#entries.size;
  }
}

import { keyedNumber } from "../shared/keyed_hash.ts";
import { clientKey } from "../shared/net.ts";

/**
 * Slots 0 to `capacity - 1` in an order, oldest first, linked through typed
 * arrays: moving a slot to the end allocates nothing (re-inserting a Map key
 * does), and the oldest is at hand at once (a Map whose front has filled
 * with deleted entries walks past them first).
 *
 * @example
 * ```ts
 * import { SlotList } from "./bounded_map.ts";
 * import { equal } from "node:assert/strict";
 * const order = new SlotList(4);
 * order.push(2);
 * order.push(0);
 * order.push(2); // moved to the end
 * equal(order.first, 0);
 * equal(order.next(0), 2);
 * ```
 */
export class SlotList {
  readonly #prev: Int32Array;
  readonly #next: Int32Array;
  readonly #member: Uint8Array;
  #first = -1;
  #last = -1;
  #size = 0;

  /** An empty order of slots below `capacity`. */
  constructor(capacity: number) {
    this.#prev = new Int32Array(capacity);
    this.#next = new Int32Array(capacity);
    this.#member = new Uint8Array(capacity);
  }

  /** The oldest slot, or -1 when empty. */
  get first(): number {
    return this.#first;
  }

  /** How many slots it holds. */
  get size(): number {
    return this.#size;
  }

  /** Whether `slot` is in it. */
  has(slot: number): boolean {
    return this.#member[slot] === 1;
  }

  /** The slot after `slot`, or -1 after the newest. */
  next(slot: number): number {
    return this.#next[slot]!;
  }

  /** Makes `slot` the newest, moving it if it is in already. */
  push(slot: number): void {
    if (this.has(slot)) {
      if (slot === this.#last) return;
      this.remove(slot);
    }
    this.#prev[slot] = this.#last;
    this.#next[slot] = -1;
    if (this.#last >= 0) this.#next[this.#last] = slot;
    else this.#first = slot;
    this.#last = slot;
    this.#member[slot] = 1;
    this.#size++;
  }

  /** Takes `slot` out, if it is in. */
  remove(slot: number): void {
    if (!this.has(slot)) return;
    const prev = this.#prev[slot]!;
    const next = this.#next[slot]!;
    if (prev >= 0) this.#next[prev] = next;
    else this.#first = next;
    if (next >= 0) this.#prev[next] = prev;
    else this.#last = prev;
    this.#member[slot] = 0;
    this.#size--;
  }
}

/** Counts requests per client token, forgetting the least recently seen:
 * slots in a {@linkcode SlotList}, so a hit moves no Map entry. */
export class TokenCounter {
  readonly #slots = new Map<number, number>();
  readonly #tokens: Float64Array;
  readonly #counts: Float64Array;
  readonly #order: SlotList;
  readonly #capacity: number;
  #size = 0;

  constructor(capacity = MAX_TRACKED_TOKENS) {
    this.#capacity = capacity;
    this.#tokens = new Float64Array(capacity);
    this.#counts = new Float64Array(capacity);
    this.#order = new SlotList(capacity);
  }

  hit(token: number): number {
    // Keyed: tokens are the sender's choice (keyed_hash.ts).
    const key = keyedNumber(token);
    let slot = this.#slots.get(key);
    if (slot === undefined) {
      if (this.#size < this.#capacity) slot = this.#size++;
      else {
        slot = this.#order.first;
        this.#slots.delete(this.#tokens[slot]!);
      }
      this.#slots.set(key, slot);
      this.#tokens[slot] = key;
      this.#counts[slot] = 0;
    }
    this.#order.push(slot);
    return ++this.#counts[slot]!;
  }

  get size(): number {
    return this.#size;
  }
}

/** Counts distinct clients up to a cap: one Set of numeric keys. */
export class ClientCounter {
  readonly #seen = new Set<number | string>();
  readonly #capacity: number;

  constructor(capacity = MAX_TRACKED_CLIENTS) {
    this.#capacity = capacity;
  }

  see(hostname: string, port: number): number {
    if (this.#seen.size < this.#capacity) this.#seen.add(clientKey(hostname, port));
    return this.#seen.size;
  }

  get full(): boolean {
    return this.#seen.size >= this.#capacity;
  }
}
