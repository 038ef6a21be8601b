/**
 * Map keys that a sender cannot make collide. V8 hashes a number key with
 * a fixed function, and a string key with a seed baked into Deno's
 * snapshot, the same in every process: source addresses, ports and tokens
 * chosen to fall into one bucket made every lookup walk them all (4.9× the
 * server's CPU, a real client's RTT from 0.4 to 2.6 ms). Passed through a
 * permutation keyed with a secret drawn at start-up, the keys a sender
 * picks land where it cannot predict.
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
