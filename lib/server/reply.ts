/**
 * The server's reply modes, one type: echo byte for byte, uppercase ASCII
 * letters, put a prefix first, or never answer (`silent`, and `heartbeat`,
 * which watches the heartbeats it does not answer). A reply is never
 * longer than its request plus the prefix.
 *
 * @module
 */

import { CASE_OFFSET, LOWER_A, LOWER_Z } from "../../protocol.ts";

/** How the server answers. */
export type ReplyMode = "echo" | "upper" | "prefix" | "silent" | "heartbeat";

/**
 * The reply to `request` in `mode`, or `undefined` in the modes that never
 * answer. Echo and upper reply with the request itself (upper changes it in
 * place: no copy per datagram); prefix makes a new array, `prefix` then the
 * request.
 *
 * @example
 * ```ts
 * import { reply } from "./reply.ts";
 * import { equal } from "node:assert/strict";
 * const encoder = new TextEncoder();
 * const decoder = new TextDecoder();
 * equal(decoder.decode(reply("upper", encoder.encode("ping 1"), new Uint8Array())), "PING 1");
 * equal(decoder.decode(reply("prefix", encoder.encode("ping 1"), encoder.encode("OK "))), "OK ping 1");
 * equal(reply("silent", encoder.encode("ping 1"), new Uint8Array()), undefined);
 * ```
 */
export function reply(
  mode: ReplyMode,
  request: Uint8Array,
  prefix: Uint8Array,
): Uint8Array | undefined {
  switch (mode) {
    case "silent":
    case "heartbeat":
      return undefined;
    case "echo":
      return request;
    case "upper":
      // ASCII letters only: other bytes, UTF-8 sequences included, pass
      // through untouched and the reply keeps the request's length.
      for (let at = 0; at < request.length; at++) {
        const byte = request[at]!;
        if (byte >= LOWER_A && byte <= LOWER_Z) request[at] = byte - CASE_OFFSET;
      }
      return request;
    case "prefix": {
      const data = new Uint8Array(prefix.length + request.length);
      data.set(prefix);
      data.set(request, prefix.length);
      return data;
    }
  }
}
