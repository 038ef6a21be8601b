/**
 * The server's fast socket (`server.ts --fast`, Linux, `--allow-ffi`): a
 * blocking receive loop through the C library that reads each request's
 * receive time from the kernel (`SO_TIMESTAMPNS`) and takes datagrams in
 * bursts: one `recvmmsg` receives up to `FAST_SOCKET_BATCH` of them, which
 * the loop then takes one by one without a call, and the replies to a
 * burst leave together in one `sendmmsg`. A runtime datagram operation
 * costs a promise and a call into the runtime per datagram each way; the C
 * textbook loop, a `recvfrom` and a `sendto`; this, two calls per burst.
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
  memoryAddress,
  MSG_WAITFORONE,
  SendBatch,
  SO_RCVTIMEO,
  SOCK_DGRAM,
  sockaddr,
  SOCKADDR_BYTES,
  SOL_SOCKET,
  StampedBatch,
} from "./libc.ts";
import { formatAddress } from "../shared/net.ts";
import {
  type Arrival,
  listenError,
  QUEUED,
  type SendReport,
  type ServerSocket,
} from "../shared/socket.ts";
import {
  FAST_SOCKET_BATCH,
  FAST_SOCKET_WAKE_MS,
  MAX_PREFIX_BYTES,
  RECEIVE_BUFFER_BYTES,
} from "../../settings.ts";

/** Room for the replies of a burst that are not a received datagram's own
 * bytes (`--prefix` makes new ones): at least one of the largest. */
const STAGING_BYTES = 2 * (RECEIVE_BUFFER_BYTES + MAX_PREFIX_BYTES);

/**
 * A server socket through the C library, bound to `address:port`. Throws
 * the same errors, with the same words, as the runtime's socket. Receiving
 * reuses its objects (the slots of a burst, the arrival, the last sender's
 * address) so that a datagram costs no allocation.
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
  readonly #libc: Libc;
  readonly #fd: number;
  /** The burst received: datagram k in slot k, with its sender and stamp. */
  readonly #burst = new StampedBatch(FAST_SOCKET_BATCH, RECEIVE_BUFFER_BYTES);
  #received = 0;
  /** The datagram last handed out. */
  #current = 0;
  readonly #arrival: Arrival = { length: 0, from: undefined as unknown as Deno.NetAddr, at: 0 };
  /** The sender of the last datagram: a busy client costs no address
   * object (and no string) per datagram. */
  readonly #lastPeer = new Uint8Array(SOCKADDR_BYTES);
  #lastPeerLength = 0;
  #lastFrom: Deno.NetAddr | undefined;
  /** The replies queued for the next `sendmmsg`, and whom to tell. */
  readonly #replies = new SendBatch(FAST_SOCKET_BATCH);
  readonly #queued: { data: Uint8Array; to: Deno.NetAddr; report: SendReport }[];
  #queuedCount = 0;
  readonly #staging = new Uint8Array(new ArrayBuffer(STAGING_BYTES));
  readonly #stagingAt = memoryAddress(this.#staging);
  #staged = 0;
  readonly #slotsBuffer: ArrayBuffer;
  readonly #slotsAt: number;
  /** A `struct timespec`, read as 32-bit halves: a BigInt per reading (the
   * outbox reads the clock for every reply) is an allocation to spare. */
  readonly #time = new Int32Array(4);
  #lastYield = performance.now();
  #closed = false;

  private constructor(libc: Libc, fd: number) {
    this.#libc = libc;
    this.#fd = fd;
    this.#slotsBuffer = this.#burst.slots[0]!.buffer;
    this.#slotsAt = memoryAddress(this.#slotsBuffer);
    this.#queued = Array.from({ length: FAST_SOCKET_BATCH }, () => ({
      data: this.#staging,
      to: undefined as unknown as Deno.NetAddr,
      report: undefined as unknown as SendReport,
    }));
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

  /** The slot of the datagram last received. */
  get buffer(): Uint8Array<ArrayBuffer> {
    return this.#burst.slots[this.#current]!;
  }

  /** The time, ms since the Unix epoch (CLOCK_REALTIME). */
  clock(): number {
    this.#libc.symbols.clock_gettime(CLOCK_REALTIME, this.#time);
    const time = this.#time;
    return ((time[0]! >>> 0) + time[1]! * 2 ** 32) * 1000 + time[2]! / 1e6;
  }

  /** The next datagram of the burst; when the burst is done, its replies
   * go out and the next burst is received (blocking up to
   * FAST_SOCKET_WAKE_MS), or a promise when the event loop's turn has come.
   * The arrival is reused: read it before the next call. */
  receive(): Arrival | undefined | Promise<Arrival | undefined> {
    if (this.#current + 1 < this.#received) return this.#handOut(this.#current + 1);
    this.#flush();
    if (performance.now() - this.#lastYield >= FAST_SOCKET_WAKE_MS) return this.#yieldThenReceive();
    if (this.#closed) return undefined;
    const burst = this.#burst.prepare(this.#received);
    this.#received = 0;
    const n = this.#libc.symbols.recvmmsg(this.#fd, burst, FAST_SOCKET_BATCH, MSG_WAITFORONE, null);
    if (n > 0) {
      this.#received = n;
      return this.#handOut(0);
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

  #handOut(k: number): Arrival {
    this.#current = k;
    const arrival = this.#arrival;
    arrival.length = this.#burst.length(k);
    arrival.from = this.#sender(k);
    arrival.at = this.#burst.kernelTime(k) ?? this.clock();
    return arrival;
  }

  /**
   * Sends `data` to `to`. Given a `report`, queues it instead and returns
   * `QUEUED`: the burst's replies leave together with the reply to its
   * last datagram (or when the loop asks for the next datagram, or when
   * the queue is full), and `report` hears of each. Without one, sends at
   * once and throws what the runtime's socket would on failure.
   */
  send(data: Uint8Array, to: Deno.NetAddr): void;
  send(data: Uint8Array, to: Deno.NetAddr, report: SendReport | undefined): void | typeof QUEUED;
  send(data: Uint8Array, to: Deno.NetAddr, report?: SendReport): void | typeof QUEUED {
    if (report === undefined) return this.#sendNow(data, to);
    if (this.#queuedCount === FAST_SOCKET_BATCH) this.#flush();
    let bytesAt;
    if (data.buffer === this.#slotsBuffer) {
      // A received datagram's own bytes (echo, upper): sent from its slot.
      bytesAt = this.#slotsAt + data.byteOffset;
    } else {
      if (this.#staged + data.length > STAGING_BYTES) this.#flush();
      this.#staging.set(data, this.#staged);
      bytesAt = this.#stagingAt + this.#staged;
      this.#staged += data.length;
    }
    const k = this.#queuedCount++;
    if (to === this.#arrival.from && this.#received > 0) {
      // The sender of the datagram last received: its address as the
      // kernel wrote it, still in its slot until the next burst.
      const nameAt = this.#burst.namesAddress + this.#current * SOCKADDR_BYTES;
      this.#replies.set(k, bytesAt, data.length, nameAt, this.#burst.nameLength(this.#current));
    } else {
      const peer = sockaddr(to.hostname, to.hostname.includes(":") ? 6 : 4, to.port);
      this.#replies.names.set(peer, k * SOCKADDR_BYTES);
      this.#replies.set(k, bytesAt, data.length, this.#replies.nameAddress(k), peer.length);
    }
    const queued = this.#queued[k]!;
    queued.data = data;
    queued.to = to;
    queued.report = report;
    // The reply to the burst's last datagram: the burst is answered, and
    // the replies need not wait for the loop's next turn.
    if (this.#current + 1 >= this.#received) this.#flush();
    return QUEUED;
  }

  /** Sends the queued replies in one `sendmmsg`; a reply that fails is
   * reported, and the ones after it are sent by another. */
  #flush(): void {
    const count = this.#queuedCount;
    this.#queuedCount = 0;
    this.#staged = 0;
    let k = 0;
    // Each pass sends at least one reply or skips the one that failed.
    while (k < count) {
      const sent = this.#libc.symbols.sendmmsg(this.#fd, this.#replies.from(k), count - k, 0);
      const error = sent > 0 ? undefined : errnoError(this.#libc, errnoOf(this.#libc));
      const at = this.clock();
      for (const end = k + Math.max(sent, 0); k < end; k++) {
        const { data, to, report } = this.#queued[k]!;
        report.sent(data, to, at);
      }
      if (error !== undefined) {
        const { to, report } = this.#queued[k++]!;
        report.failed(to, error);
      }
    }
  }

  #sendNow(data: Uint8Array, to: Deno.NetAddr): void {
    const peer = sockaddr(to.hostname, to.hostname.includes(":") ? 6 : 4, to.port);
    const sent = Number(
      this.#libc.symbols.sendto(this.#fd, data, BigInt(data.length), 0, peer, peer.length),
    );
    if (sent < 0) throw errnoError(this.#libc, errnoOf(this.#libc));
  }

  /** Sends the replies still queued, then closes the socket (idempotent);
   * the C library stays loaded. */
  close(): void {
    if (this.#closed) return;
    this.#flush();
    this.#closed = true;
    this.#libc.symbols.close(this.#fd);
  }

  /** The sender of datagram `k`, the same object as the last datagram's
   * when it is the same sender. */
  #sender(k: number): Deno.NetAddr {
    const names = this.#burst.names;
    const at = k * SOCKADDR_BYTES;
    const length = this.#burst.nameLength(k);
    let same = this.#lastFrom !== undefined && length === this.#lastPeerLength;
    for (let i = 0; same && i < length; i++) same = names[at + i] === this.#lastPeer[i];
    if (same) return this.#lastFrom!;
    const peer = names.subarray(at, at + length);
    this.#lastPeer.set(peer);
    this.#lastPeerLength = length;
    return this.#lastFrom = addressOf(peer);
  }
}
