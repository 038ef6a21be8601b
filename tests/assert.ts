/**
 * The assertions the tests use: node:assert/strict, re-exported under the
 * names the Deno standard library gives them (JSR is unreachable here).
 *
 * @module
 */

import assertStrict from "node:assert/strict";

export const assertEquals: <T>(actual: unknown, expected: T, message?: string) => void =
  assertStrict.deepStrictEqual;
export const assert: (value: unknown, message?: string) => asserts value = assertStrict.ok;
export const assertMatch: (text: string, pattern: RegExp, message?: string) => void =
  assertStrict.match;
export const assertRejects: (
  block: () => Promise<unknown>,
  error?: RegExp | (new (...args: never[]) => Error),
) => Promise<void> = assertStrict.rejects as never;
export const assertThrows: (
  block: () => unknown,
  error?: RegExp | (new (...args: never[]) => Error),
) => void = assertStrict.throws as never;
