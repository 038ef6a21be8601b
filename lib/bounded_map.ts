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

/**
 * Counts requests per client token (its numeric value) in bounded memory.
 *
 * @example
 * ```ts
 * import { TokenCounter } from "./bounded_map.ts";
 * import { equal } from "node:assert/strict";
 * const tokens = new TokenCounter();
 * tokens.hit(0xbeef);
 * equal(tokens.hit(0xbeef), 2);
 * ```
 */
export class TokenCounter {
  readonly #counts: LruMap<number, number>;

  /** Remembers at most `capacity` tokens. */
  constructor(capacity = MAX_TRACKED_TOKENS) {
    this.#counts = new LruMap(capacity);
  }

  /** Counts one more request for `token` and returns its total. */
  hit(token: number): number {
    const count = (this.#counts.get(token) ?? 0) + 1;
    this.#counts.set(token, count);
    return count;
  }

  /** How many tokens it remembers. */
  get size(): number {
    return this.#counts.size;
  }
}

/**
 * Counts distinct clients (address and port) up to a cap, without building
 * a string per datagram.
 *
 * @example
 * ```ts
 * import { ClientCounter } from "./bounded_map.ts";
 * import { equal } from "node:assert/strict";
 * const clients = new ClientCounter();
 * clients.see("127.0.0.1", 5000);
 * equal(clients.see("127.0.0.1", 5000), 1);
 * ```
 */
export class ClientCounter {
  readonly #ports = new Map<string, Set<number>>();
  readonly #capacity: number;
  #count = 0;

  /** Counts up to `capacity` clients. */
  constructor(capacity = MAX_TRACKED_CLIENTS) {
    this.#capacity = capacity;
  }

  /** Notes a datagram from `hostname:port`; returns how many clients were seen. */
  see(hostname: string, port: number): number {
    if (this.#count >= this.#capacity) return this.#count;
    let ports = this.#ports.get(hostname);
    if (ports === undefined) this.#ports.set(hostname, ports = new Set());
    if (!ports.has(port)) {
      ports.add(port);
      this.#count++;
    }
    return this.#count;
  }

  /** Whether the cap was reached (the count is then a lower bound). */
  get full(): boolean {
    return this.#count >= this.#capacity;
  }
}
