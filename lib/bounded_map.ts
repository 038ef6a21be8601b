/**
 * Per-client state in bounded memory: a map that forgets its least recently
 * used entry, a request counter per client token, and a count of distinct
 * clients. A flood of new (or forged) sources cannot grow any of them.
 *
 * @module
 */

import { MAX_TRACKED_CLIENTS, MAX_TRACKED_TOKENS } from "../settings.ts";

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

import { clientKey } from "./net.ts";

/** Counts requests per client token, forgetting the least recently seen:
 * a list linked through typed arrays, so a hit moves no Map entry. */
export class TokenCounter {
  readonly #slots = new Map<number, number>();
  readonly #tokens: Float64Array;
  readonly #counts: Float64Array;
  readonly #prev: Int32Array;
  readonly #next: Int32Array;
  readonly #capacity: number;
  #size = 0;
  #oldest = -1;
  #newest = -1;

  constructor(capacity = MAX_TRACKED_TOKENS) {
    this.#capacity = capacity;
    this.#tokens = new Float64Array(capacity);
    this.#counts = new Float64Array(capacity);
    this.#prev = new Int32Array(capacity);
    this.#next = new Int32Array(capacity);
  }

  hit(token: number): number {
    let slot = this.#slots.get(token);
    if (slot === undefined) {
      if (this.#size < this.#capacity) slot = this.#size++;
      else {
        slot = this.#oldest;
        this.#slots.delete(this.#tokens[slot]!);
        this.#unlink(slot);
      }
      this.#slots.set(token, slot);
      this.#tokens[slot] = token;
      this.#counts[slot] = 0;
      this.#append(slot);
    } else if (slot !== this.#newest) {
      this.#unlink(slot);
      this.#append(slot);
    }
    return ++this.#counts[slot]!;
  }

  #unlink(slot: number): void {
    const prev = this.#prev[slot]!;
    const next = this.#next[slot]!;
    if (prev >= 0) this.#next[prev] = next;
    else this.#oldest = next;
    if (next >= 0) this.#prev[next] = prev;
    else this.#newest = prev;
  }

  #append(slot: number): void {
    this.#prev[slot] = this.#newest;
    this.#next[slot] = -1;
    if (this.#newest >= 0) this.#next[this.#newest] = slot;
    else this.#oldest = slot;
    this.#newest = slot;
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
