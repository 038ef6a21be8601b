/**
 * The server's fast path (`server.ts --fast`, Linux): a blocking
 * `recvfrom`/`sendto` loop through the C library (`Deno.dlopen`), which
 * answers about twice as many requests a second as the runtime's datagram
 * API allows. It needs `--allow-ffi` besides `--allow-net`.
 *
 * It keeps what matters on an exposed server (the reply modes, stamps, the
 * rate limit, the counters) and leaves out what needs timers or logging
 * (the impairments and the log), which `serve()` refuses with `fast`.
 *
 * The loop blocks the runtime's event loop while it waits, at most
 * {@linkcode WAKE_MS} at a time: then it lets the event loop run, so signals
 * and `close()` are seen within that time.
 *
 * @module
 */

/** Longest the loop blocks in one wait before it lets the event loop run. */
export const WAKE_MS = 100;

import {
  addressOf,
  AF_INET,
  AF_INET6,
  bindError,
  EAGAIN,
  EINTR,
  errnoOf,
  openLibc,
  SO_RCVTIMEO,
  SOCK_DGRAM,
  sockaddr,
  SOL_SOCKET,
} from "./libc.ts";
import { formatAddress } from "./net.ts";

/** What the fast loop does with a request, supplied by `serve()`. */
export interface FastHandler {
  /** Decides on a request that sits in `buffer` after the prefix; returns
   * the reply to send now (a view of `buffer`), or nothing. */
  handle(buffer: Uint8Array, length: number, from: Deno.NetAddr): Uint8Array | undefined;
  /** Counts a reply sent, or one whose send failed (with the reason). */
  sent(ok: boolean, to: Deno.NetAddr, reason?: string): void;
}

/** A running fast loop. */
export interface FastLoop {
  addr: Deno.NetAddr;
  close(): Promise<void>;
  finished: Promise<void>;
}

/**
 * Binds `address:port` through the C library and serves with `handler`
 * until `close()`. Throws an Error with a one-line message when the socket
 * cannot be bound.
 */
export function startFastLoop(
  address: string,
  family: 4 | 6,
  port: number,
  prefix: Uint8Array,
  handler: FastHandler,
): FastLoop {
  const prefixLength = prefix.length;
  const libc = openLibc();
  const errno = () => errnoOf(libc);
  const fd = libc.symbols.socket(family === 6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
  const local = sockaddr(address, family, port);
  if (fd < 0 || libc.symbols.bind(fd, local, local.length) < 0) {
    const error = bindError(errno(), formatAddress(address, port));
    if (fd >= 0) libc.symbols.close(fd);
    libc.close();
    throw error;
  }
  // Wake up every WAKE_MS even with nothing to receive.
  const timeout = new BigInt64Array([0n, BigInt(WAKE_MS * 1000)]);
  libc.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, new Uint8Array(timeout.buffer), 16);
  const bound = new Uint8Array(28);
  libc.symbols.getsockname(fd, bound, new Uint8Array(new Uint32Array([28]).buffer));

  let closing = false;
  const buffer = new Uint8Array(prefixLength + 65536);
  buffer.set(prefix);
  const into = buffer.subarray(prefixLength);
  const intoLength = BigInt(into.length);
  const peer = new Uint8Array(28);
  const peerLength = new Uint32Array(1);
  const peerLengthBytes = new Uint8Array(peerLength.buffer);
  // The sender of the last datagram, kept to skip building an address
  // object (and its string) for every datagram of a busy client.
  const lastPeer = new Uint8Array(28);
  let lastFrom: Deno.NetAddr | undefined;
  const sender = (): Deno.NetAddr => {
    for (let i = 0; i < peerLength[0]!; i++) {
      if (peer[i] !== lastPeer[i]) {
        lastPeer.set(peer);
        return lastFrom = addressOf(peer);
      }
    }
    return lastFrom ??= addressOf(peer);
  };
  const finished = (async () => {
    let lastYield = performance.now();
    while (!closing) {
      peerLength[0] = 28;
      const n = Number(
        libc.symbols.recvfrom(fd, into, intoLength, 0, peer, peerLengthBytes),
      );
      if (n >= 0) {
        const from = sender();
        const reply = handler.handle(buffer, n, from);
        if (reply !== undefined) {
          const sent = Number(
            libc.symbols.sendto(fd, reply, BigInt(reply.length), 0, peer, peerLength[0]!),
          );
          handler.sent(sent >= 0, from, sent >= 0 ? undefined : `error ${errno()}`);
        }
      } else if (errno() !== EAGAIN && errno() !== EINTR) {
        handler.sent(false, addressOf(peer), `receive error ${errno()}`);
      }
      // Let signals and close() in, at least every WAKE_MS.
      if (n < 0 || performance.now() - lastYield >= WAKE_MS) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        lastYield = performance.now();
      }
    }
    libc.symbols.close(fd);
    libc.close();
  })();
  return {
    addr: addressOf(bound),
    async close() {
      closing = true;
      await finished;
    },
    finished,
  };
}
