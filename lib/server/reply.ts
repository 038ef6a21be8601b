/**
 * The server's reply modes: echo byte for byte, uppercase ASCII letters,
 * put a prefix first, or never answer. A reply is never longer than its
 * request plus the prefix.
 *
 * @module
 */

/** How the server answers. */
export type ReplyMode = "echo" | "upper" | "prefix" | "silent";

/** ASCII `a`. */
export const LOWER_A = 0x61;
/** ASCII `z`. */
export const LOWER_Z = 0x7a;
/** How far below its small letter an ASCII capital is. */
export const CASE_OFFSET = 0x20;

/**
 * Turns a request into its reply in place: `buffer` holds the prefix (in
 * `prefix` mode) and then the request's `length` bytes. Returns the reply,
 * a view of `buffer`, or `undefined` in silent mode.
 *
 * @example
 * ```ts
 * import { replyInPlace } from "./reply.ts";
 * import { equal } from "node:assert/strict";
 * const buffer = new TextEncoder().encode("ping");
 * equal(new TextDecoder().decode(replyInPlace(buffer, 0, 4, "upper")), "PING");
 * ```
 */
export function replyInPlace(
  buffer: Uint8Array,
  prefixLength: number,
  length: number,
  mode: ReplyMode,
): Uint8Array | undefined {
  switch (mode) {
    case "silent":
      return undefined;
    case "echo":
      return buffer.subarray(prefixLength, prefixLength + length);
    case "upper":
      // ASCII letters only: other bytes, UTF-8 sequences included, pass
      // through untouched and the reply keeps the request's length.
      for (let at = prefixLength; at < prefixLength + length; at++) {
        const byte = buffer[at]!;
        if (byte >= LOWER_A && byte <= LOWER_Z) buffer[at] = byte - CASE_OFFSET;
      }
      return buffer.subarray(prefixLength, prefixLength + length);
    case "prefix":
      return buffer.subarray(0, prefixLength + length);
  }
}

/**
 * The reply to `request` in `mode` as a new array; `undefined` in silent
 * mode.
 *
 * @example
 * ```ts
 * import { makeReply } from "./reply.ts";
 * import { equal } from "node:assert/strict";
 * const request = new TextEncoder().encode("ping");
 * const reply = makeReply(request, "prefix", new TextEncoder().encode("OK..."));
 * equal(new TextDecoder().decode(reply), "OK...ping");
 * ```
 */
export function makeReply(
  request: Uint8Array,
  mode: ReplyMode,
  prefix: Uint8Array = new Uint8Array(),
): Uint8Array | undefined {
  const prefixLength = mode === "prefix" ? prefix.length : 0;
  const buffer = new Uint8Array(prefixLength + request.length);
  buffer.set(prefix.subarray(0, prefixLength));
  buffer.set(request, prefixLength);
  return replyInPlace(buffer, prefixLength, request.length, mode);
}
