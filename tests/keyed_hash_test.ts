import { assertEquals, assertThrows } from "./assert.ts";
import { KeyMap } from "../lib/shared/keyed_hash.ts";
import fc from "npm:fast-check@4.10.2";

/** Keys whose low 32 bits are all `low`: they share one home place. */
const sharingAHome = (count: number, low = 5) =>
  Array.from({ length: count }, (_, i) => (i + 1) * 2 ** 32 + low);

Deno.test("KeyMap finds every key of a run after keys before them in the run are deleted", () => {
  const map = new KeyMap<number>(16);
  const keys = sharingAHome(8);
  keys.forEach((key, i) => map.set(key, i));
  map.delete(keys[1]!);
  map.delete(keys[4]!);
  keys.forEach((key, i) => {
    assertEquals(map.get(key), i === 1 || i === 4 ? undefined : i, `key ${i}`);
  });
  assertEquals(map.size, 6);
});

Deno.test("KeyMap refuses a new key past its capacity with a RangeError, and still replaces a value", () => {
  const map = new KeyMap<string>(2);
  map.set(1, "a").set(2, "b");
  assertThrows(() => map.set(3, "c"), /^RangeError: a KeyMap holds at most 2 keys/);
  map.set(2, "B");
  assertEquals([map.get(1), map.get(2), map.get(3), map.size], ["a", "B", undefined, 2]);
  assertThrows(() => new KeyMap(0), /^RangeError: capacity must be a whole number/);
});

Deno.test("KeyMap answers as a Map does over any run of sets and deletes", () => {
  // Few keys, sharing four homes, so that runs form, wrap round the end of
  // the table (16 places for 8 keys) and lose keys in their middle.
  const homes = [0, 7, 14, 15];
  const key = fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 3 }))
    .map(([high, home]) => high * 2 ** 32 + homes[home]!);
  const step = fc.tuple(fc.boolean(), key);
  fc.assert(fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
    const capacity = 8;
    const map = new KeyMap<number>(capacity);
    const model = new Map<number, number>();
    steps.forEach(([add, k], i) => {
      if (add && (model.has(k) || model.size < capacity)) {
        map.set(k, i);
        model.set(k, i);
      } else {
        assertEquals(map.delete(k), model.delete(k));
      }
      assertEquals(map.size, model.size);
      for (const [k2, value] of model) assertEquals(map.get(k2), value);
    });
    for (const [, k] of steps) assertEquals(map.has(k), model.has(k));
  }));
});
