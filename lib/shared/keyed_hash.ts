/**
 * Map keys that a sender cannot make collide. V8 hashes a number key with
 * a fixed function, and a string key with a seed baked into Deno's
 * snapshot, the same in every process: source addresses, ports and tokens
 * chosen to fall into one bucket made every lookup walk them all (4.9× the
 * server's CPU, a real client's RTT from 0.4 to 2.6 ms). Passed through a
 * permutation keyed with a secret drawn at start-up, the keys a sender
 * picks land where it cannot predict.
 *
 * {@linkcode KeyMap} holds such keys in memory allocated once, for the
 * server's bounded per-source and per-token tables.
 *
 * @module
 */

/** Rounds of the Feistel network: four make a pseudo-random permutation of
 * a good round function (Luby and Rackoff). */
const ROUNDS = 4;
const HALF = 2 ** 24;
const HALF_MASK = 0xffffff;
/** Where strings' keys start: above every permuted number. */
const STRING_KEYS = 2 ** 48;
/** The secret: one key per round, drawn once per process. */
const SECRET = crypto.getRandomValues(new Uint32Array(ROUNDS));

/** MurmurHash3's finalizer: every input bit moves every output bit. */
function mix(value: number): number {
  value ^= value >>> 16;
  value = Math.imul(value, 0x85ebca6b);
  value ^= value >>> 13;
  value = Math.imul(value, 0xc2b2ae35);
  return (value ^ (value >>> 16)) >>> 0;
}

let high = 0;
let low = 0;
/** Permutes the 48 bits in `high` and `low` (24 each) in place. */
function permute(): void {
  for (let round = 0; round < ROUNDS; round++) {
    const next = (high ^ mix(low ^ SECRET[round]!)) & HALF_MASK;
    high = low;
    low = next;
  }
}

/**
 * A whole number below 2^48 mapped to another below 2^48 by this process's
 * secret permutation: two numbers never share a key, and which keys
 * collide in a Map is the secret's doing, not the sender's.
 *
 * @example
 * ```ts
 * import { keyedNumber } from "./keyed_hash.ts";
 * import { equal, notEqual } from "node:assert/strict";
 * equal(keyedNumber(12000), keyedNumber(12000));
 * notEqual(keyedNumber(12000), keyedNumber(12001));
 * ```
 */
export function keyedNumber(value: number): number {
  high = Math.floor(value / HALF) & HALF_MASK;
  low = value & HALF_MASK;
  permute();
  return high * HALF + low;
}

/**
 * A string and a number below 2^16 as one number of at least 2^48 (so that
 * it never equals a {@linkcode keyedNumber}): the secret permutation chained
 * over 16-bit pieces of the length, the text and `extra`. Different inputs
 * share a key with a chance of about 2^-48 per pair, which the sender cannot
 * raise without the secret.
 *
 * @example
 * ```ts
 * import { keyedString } from "./keyed_hash.ts";
 * import { equal, notEqual, ok } from "node:assert/strict";
 * equal(keyedString("::1", 40000), keyedString("::1", 40000));
 * notEqual(keyedString("::1", 40000), keyedString("::1", 40001));
 * ok(keyedString("::1") >= 2 ** 48);
 * ```
 */
export function keyedString(text: string, extra = 0): number {
  high = text.length & HALF_MASK;
  low = extra & 0xffff;
  permute();
  for (let at = 0; at < text.length; at += 3) {
    // 48 bits a block: three 16-bit code units.
    const a = text.charCodeAt(at);
    const b = at + 1 < text.length ? text.charCodeAt(at + 1) : 0;
    const c = at + 2 < text.length ? text.charCodeAt(at + 2) : 0;
    high ^= (a << 8) | (b >>> 8);
    low ^= ((b & 0xff) << 16) | c;
    permute();
  }
  return STRING_KEYS + (high & 0xffffff) * HALF + low;
}

/** An empty place in a {@linkcode KeyMap}: no key is negative. */
const NO_KEY = -1;

/**
 * A map from keys made by {@linkcode keyedNumber} or {@linkcode keyedString}
 * to values, holding at most `capacity` of them in memory allocated once:
 * an open-addressing table in a typed array. A `Map` allocates a number
 * object for each such key (they pass 2^31) and a new backing table every
 * time deleted entries fill it, and the server's tables take a new source
 * for an old one thousands of times a second: that garbage outlived the
 * young generation and grew the heap by about 1 MB a second in a mixed
 * flood (docs/performance.md). The keys are the secret permutation's,
 * so their low bits place them: a sender cannot crowd one run of places.
 *
 * @example
 * ```ts
 * import { KeyMap, keyedNumber } from "./keyed_hash.ts";
 * import { equal } from "node:assert/strict";
 * const map = new KeyMap<string>(2);
 * map.set(keyedNumber(1), "one");
 * equal(map.get(keyedNumber(1)), "one");
 * map.delete(keyedNumber(1));
 * equal(map.get(keyedNumber(1)), undefined);
 * ```
 */
export class KeyMap<V> {
  readonly #keys: Float64Array;
  readonly #values: (V | undefined)[];
  readonly #mask: number;
  readonly #capacity: number;
  #size = 0;

  /** Room for `capacity` keys, in a table at least twice as large, so
   * that a run of taken places stays short. */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a whole number of at least 1, got ${capacity}`);
    }
    let places = 2;
    while (places < 2 * capacity) places *= 2;
    this.#keys = new Float64Array(places).fill(NO_KEY);
    // Holey, not filled with undefined: V8 keeps an array of undefined in
    // a form whose first store of a value copies it whole (0.3 ms at
    // 32,768 places, 2 ms at 262,144), which a fresh server paid on its
    // first client's first request.
    this.#values = new Array(places);
    this.#mask = places - 1;
    this.#capacity = capacity;
  }

  /** How many keys it holds. */
  get size(): number {
    return this.#size;
  }

  /** The value of `key`, or `undefined`. */
  get(key: number): V | undefined {
    const at = this.#find(key);
    return at < 0 ? undefined : this.#values[at];
  }

  /** Whether it holds `key`. */
  has(key: number): boolean {
    return this.#find(key) >= 0;
  }

  /** Sets the value of `key`; a new key past the capacity is a `RangeError`. */
  set(key: number, value: V): this {
    let at = this.#home(key);
    while (this.#keys[at] !== NO_KEY && this.#keys[at] !== key) at = (at + 1) & this.#mask;
    if (this.#keys[at] === NO_KEY) {
      if (this.#size >= this.#capacity) {
        throw new RangeError(`a KeyMap holds at most ${this.#capacity} keys`);
      }
      this.#keys[at] = key;
      this.#size++;
    }
    this.#values[at] = value;
    return this;
  }

  /** Removes `key`; whether it was there. */
  delete(key: number): boolean {
    let hole = this.#find(key);
    if (hole < 0) return false;
    // Backward shift: each key further along the run that may sit in the
    // hole moves into it, so that no lookup stops early at the gap.
    const keys = this.#keys;
    for (let at = (hole + 1) & this.#mask; keys[at] !== NO_KEY; at = (at + 1) & this.#mask) {
      const home = this.#home(keys[at]!);
      const between = hole <= at ? hole < home && home <= at : hole < home || home <= at;
      if (between) continue;
      keys[hole] = keys[at]!;
      this.#values[hole] = this.#values[at];
      hole = at;
    }
    keys[hole] = NO_KEY;
    this.#values[hole] = undefined;
    this.#size--;
    return true;
  }

  /** Forgets every key. */
  clear(): void {
    this.#keys.fill(NO_KEY);
    this.#values.fill(undefined);
    this.#size = 0;
  }

  /** The place of `key`, or -1. The table is never full, so the run ends. */
  #find(key: number): number {
    for (let at = this.#home(key); this.#keys[at] !== NO_KEY; at = (at + 1) & this.#mask) {
      if (this.#keys[at] === key) return at;
    }
    return -1;
  }

  /** Where `key`'s run starts: its low bits, random under the secret. */
  #home(key: number): number {
    return (key >>> 0) & this.#mask;
  }
}
