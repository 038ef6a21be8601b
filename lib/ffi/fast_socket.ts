/**
 * The server's fast socket (`server.ts --fast`, Linux, `--allow-ffi`): a
 * blocking `recvmsg`/`sendto` loop through the C library, which answers
 * about twice as many requests a second as the runtime's datagram API and
 * reads each request's receive time from the kernel (`SO_TIMESTAMPNS`).
 *
 * A receive blocks the event loop for at most `FAST_SOCKET_WAKE_MS`; then it
 * lets the event loop run, so signals and `close()` are seen within that
 * time. Give a fast server a process of its own.
 *
 * @module
 */

import {
  addressOf,
  AF_INET,
  AF_INET6,
  CLOCK_REALTIME,
  EAGAIN,
  EINTR,
  enableKernelStamps,
  errnoError,
  errnoOf,
  type Libc,
  loadLibc,
  SO_RCVTIMEO,
  SOCK_DGRAM,
  sockaddr,
  SOCKADDR_BYTES,
  SOL_SOCKET,
  StampedMessage,
} from "./libc.ts";
import { formatAddress } from "../shared/net.ts";
import { type Arrival, listenError, type ServerSocket } from "../shared/socket.ts";
import { FAST_SOCKET_WAKE_MS, RECEIVE_BUFFER_BYTES } from "../../settings.ts";

/**
 * A server socket through the C library, bound to `address:port`. Throws
 * the same errors, with the same words, as the runtime's socket. Receiving
 * reuses its objects (the message buffers, the last sender's address) so
 * that a datagram costs no allocation.
 *
 * @example
 * ```ts ignore
 * import { FastSocket } from "./fast_socket.ts";
 * const socket = FastSocket.open("127.0.0.1", 4, 0);
 * socket.close();
 * ```
 */
export class FastSocket implements ServerSocket {
  readonly addr: Deno.NetAddr;
  readonly buffer: Uint8Array<ArrayBuffer> = new Uint8Array(RECEIVE_BUFFER_BYTES);
  readonly #libc: Libc;
  readonly #fd: number;
  readonly #message: StampedMessage;
  readonly #peerLength = new Uint32Array(1);
  /** The sender of the last datagram: a busy client costs no address
   * object (and no string) per datagram. */
  readonly #lastPeer = new Uint8Array(SOCKADDR_BYTES);
  #lastFrom: Deno.NetAddr | undefined;
  readonly #time = new BigInt64Array(2);
  #lastYield = performance.now();
  #closed = false;

  private constructor(libc: Libc, fd: number) {
    this.#libc = libc;
    this.#fd = fd;
    this.#message = new StampedMessage(this.buffer);
    const bound = new Uint8Array(SOCKADDR_BYTES);
    libc.symbols.getsockname(fd, bound, new Uint8Array(new Uint32Array([SOCKADDR_BYTES]).buffer));
    this.addr = addressOf(bound);
  }

  /** Opens and binds the socket. */
  static open(address: string, family: 4 | 6, port: number): FastSocket {
    const libc = loadLibc();
    const fd = libc.symbols.socket(family === 6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    const local = sockaddr(address, family, port);
    if (fd < 0 || libc.symbols.bind(fd, local, local.length) < 0) {
      const error = listenError(errnoError(libc, errnoOf(libc)), formatAddress(address, port));
      if (fd >= 0) libc.symbols.close(fd);
      throw error;
    }
    // Wake up every FAST_SOCKET_WAKE_MS even with nothing to receive.
    const timeout = new BigInt64Array([0n, BigInt(FAST_SOCKET_WAKE_MS * 1000)]);
    libc.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, new Uint8Array(timeout.buffer), 16);
    // The kernel's receive time, so that a stamp's "held" covers this
    // process's wake-up too (without it, the time of the receive's return).
    enableKernelStamps(libc, fd);
    return new FastSocket(libc, fd);
  }

  /** The time, ms since the Unix epoch (CLOCK_REALTIME). */
  clock(): number {
    this.#libc.symbols.clock_gettime(CLOCK_REALTIME, this.#time);
    return Number(this.#time[0]!) * 1000 + Number(this.#time[1]!) / 1e6;
  }

  /** The next datagram (synchronously, blocking up to FAST_SOCKET_WAKE_MS), or a
   * promise when the event loop's turn has come. */
  receive(): Arrival | undefined | Promise<Arrival | undefined> {
    if (performance.now() - this.#lastYield >= FAST_SOCKET_WAKE_MS) return this.#yieldThenReceive();
    if (this.#closed) return undefined;
    const n = Number(this.#libc.symbols.recvmsg(this.#fd, this.#message.prepare(), 0));
    if (n >= 0) {
      const at = this.#message.kernelTime() ?? this.clock();
      return { length: n, from: this.#sender(), at };
    }
    const errno = errnoOf(this.#libc);
    if (errno === EAGAIN || errno === EINTR) return this.#yieldThenReceive();
    throw errnoError(this.#libc, errno);
  }

  async #yieldThenReceive(): Promise<Arrival | undefined> {
    await new Promise((resolve) => setTimeout(resolve, 0));
    this.#lastYield = performance.now();
    return this.#closed ? undefined : this.receive();
  }

  /** Sends `data` to `to`; throws what the runtime's socket would on failure. */
  send(data: Uint8Array, to: Deno.NetAddr): void {
    const peer = to === this.#lastFrom
      ? this.#lastPeer
      : sockaddr(to.hostname, to.hostname.includes(":") ? 6 : 4, to.port);
    const length = to === this.#lastFrom ? this.#peerLength[0]! : peer.length;
    const sent = Number(
      this.#libc.symbols.sendto(this.#fd, data, BigInt(data.length), 0, peer, length),
    );
    if (sent < 0) throw errnoError(this.#libc, errnoOf(this.#libc));
  }

  /** Closes the socket (idempotent); the C library stays loaded. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#libc.symbols.close(this.#fd);
  }

  #sender(): Deno.NetAddr {
    const peer = this.#message.name;
    this.#peerLength[0] = this.#message.header.getUint32(8, true);
    for (let i = 0; i < SOCKADDR_BYTES; i++) {
      if (peer[i] !== this.#lastPeer[i]) {
        this.#lastPeer.set(peer);
        return this.#lastFrom = addressOf(peer);
      }
    }
    return this.#lastFrom ??= addressOf(peer);
  }
}
