/**
 * An order of numbered slots, oldest first, in fixed memory: the
 * least-recently-used bookkeeping of the server's bounded tables (the
 * heartbeat monitor's sources, the request counts per token).
 *
 * @module
 */

/**
 * Slots 0 to `capacity - 1` in an order, oldest first, linked through typed
 * arrays: moving a slot to the end allocates nothing (re-inserting a Map key
 * does), and the oldest is at hand at once (a Map whose front has filled
 * with deleted entries walks past them first).
 *
 * @example
 * ```ts
 * import { SlotList } from "./slot_list.ts";
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
