/**
 * The client's FFI socket (Linux, `--allow-ffi`): a connected UDP socket
 * through the C library whose receives carry the kernel's receive time
 * (`SO_TIMESTAMPNS`), so that a round trip measures the network and not how
 * late the runtime woke up (docs/performance.md compares the two clocks).
 *
 * A receive never blocks the event loop: it tries `recvmsg` with
 * `MSG_DONTWAIT` and, while nothing is there, waits in `poll`, which runs on
 * a runtime thread, at most `STAMPED_SOCKET_POLL_MS` at a time, or for an
 * alarm at the deadline, whichever comes first. A hand-off to that thread
 * and back costs the process about 75 µs of CPU, so a `poll` outlives the
 * receive that started it and serves the next: pinging every 10 ms, the
 * `poll` started in the wait for the next send hears the reply to it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kernelStampsAvailable, StampedSocket } from "./stamped_socket.ts";
 *
 * if (kernelStampsAvailable()) {
 *   const echo = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
 *   await using socket = StampedSocket.open("127.0.0.1", 4, (echo.addr as Deno.NetAddr).port);
 *   const sent = socket.send(new Uint8Array([1, 2, 3]));
 *   const [data, from] = await echo.receive();
 *   await echo.send(data, from);
 *   const reply = await socket.receive(performance.now() + 1000);
 *   assert(reply?.kind === "datagram" && reply.at > sent);
 *   echo.close();
 * }
 * ```
 *
 * @module
 */

import {
  addressOf,
  AF_INET,
  AF_INET6,
  CLOCK_REALTIME,
  EAGAIN,
  ECONNREFUSED,
  EINTR,
  enableKernelStamps,
  errnoError,
  errnoOf,
  type Libc,
  loadLibc,
  MSG_DONTWAIT,
  MSG_TRUNC,
  POLLIN,
  SOCK_DGRAM,
  sockaddr,
  StampedMessage,
} from "./libc.ts";
import { formatAddress, ipFamily } from "../shared/net.ts";
import { type Alarm, alarmAt, dueBy } from "../shared/timer.ts";
import { RECEIVE_BUFFER_BYTES, STAMPED_SOCKET_POLL_MS } from "../../settings.ts";

/** What a ping socket's receive gives. `at` is in the socket's own clock, ms. */
export type StampedReceive =
  | { kind: "datagram"; data: Uint8Array; from: Deno.NetAddr; at: number }
  | { kind: "refused" }
  | { kind: "error"; message: string };

/** Options of {@linkcode StampedSocket.open}. */
export interface StampedSocketOptions {
  /** Bytes of the receive buffer; a longer datagram is reported as the
   * error "datagram truncated".
   * @default {65536} */
  receiveBytes?: number;
}

// struct pollfd: fd (i32), events (i16), revents (i16).
const POLLFD_BYTES = 8;

/** Whether this process may use {@linkcode StampedSocket}: Linux, and the
 * ffi permission already granted. It asks, and never prompts. */
export function kernelStampsAvailable(): boolean {
  return Deno.build.os === "linux" && typeof Deno.dlopen === "function" &&
    Deno.permissions.querySync({ name: "ffi" }).state === "granted";
}

/**
 * A UDP socket connected to one target that timestamps in the kernel: the
 * send time is `CLOCK_REALTIME` read just before `send()`, the receive time
 * is the kernel's `SO_TIMESTAMPNS`, both in ms since the Unix epoch. At that
 * magnitude a float resolves about 0.25 µs.
 *
 * One receive at a time: the data it returns is a view of the socket's one
 * buffer, valid until the next call.
 */
export class StampedSocket {
  /** Where the times come from, for the header line ("kernel timestamps"). */
  readonly clock = "kernel" as const;
  readonly #libc: Libc;
  readonly #fd: number;
  readonly #where: string;
  readonly #data: Uint8Array<ArrayBuffer>;
  readonly #message: StampedMessage;
  // Its own ArrayBuffer, which V8 never moves: the kernel writes through it.
  readonly #pollfd = new DataView(new ArrayBuffer(POLLFD_BYTES));
  readonly #timespec = new Uint32Array(4);
  // The sender is always the target: its address is built once.
  #from: Deno.NetAddr | undefined;
  // The poll running on a runtime thread, if any: it outlives the receive
  // that started it, and the next receive waits on it.
  #polling: Promise<true> | undefined;
  readonly #polled = () => {
    this.#polling = undefined;
    return true as const;
  };
  #receiving = false;
  #closing: Promise<void> | undefined;
  /** Wakes the receive waiting, for close(). Each wait races a promise of
   * its own: one raced by every wait and settled only by close() would keep
   * each race's result alive for the socket's life. */
  #wakeOnClose: ((value: undefined) => void) | undefined;

  private constructor(libc: Libc, fd: number, where: string, receiveBytes: number) {
    this.#libc = libc;
    this.#fd = fd;
    this.#where = where;
    this.#data = new Uint8Array(new ArrayBuffer(receiveBytes));
    this.#message = new StampedMessage(this.#data);
    this.#pollfd.setInt32(0, fd, true);
    this.#pollfd.setInt16(4, POLLIN, true);
  }

  /**
   * Opens a UDP socket with kernel receive timestamps, connected to
   * `address` (an IP literal of `family`) and `port`. Throws a `TypeError`
   * where the FFI is unavailable (not Linux, no `--allow-ffi`: it never
   * prompts), a `RangeError` for a bad argument, and an `Error` with one
   * line when the C library's calls fail.
   */
  static open(
    address: string,
    family: 4 | 6,
    port: number,
    options: StampedSocketOptions = {},
  ): StampedSocket {
    const { receiveBytes = RECEIVE_BUFFER_BYTES } = options;
    if (ipFamily(address) !== family) {
      throw new RangeError(`address must be an IPv${family} literal, got '${address}'`);
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError(`port must be an integer from 1 to 65535, got ${port}`);
    }
    if (
      !Number.isInteger(receiveBytes) || receiveBytes < 1 || receiveBytes > RECEIVE_BUFFER_BYTES
    ) {
      throw new RangeError(
        `receiveBytes must be from 1 to ${RECEIVE_BUFFER_BYTES}, got ${receiveBytes}`,
      );
    }
    if (!kernelStampsAvailable()) {
      throw new TypeError("kernel timestamps need Linux and --allow-ffi");
    }
    const libc = loadLibc();
    const where = formatAddress(address, port);
    return new StampedSocket(
      libc,
      connectedSocket(libc, address, family, port, where),
      where,
      receiveBytes,
    );
  }

  /**
   * Sends one datagram to the target; returns the send time (ms since the
   * epoch, `CLOCK_REALTIME` read just before `send()`). Throws
   * `Deno.errors.ConnectionRefused` when an ICMP port unreachable for an
   * earlier datagram was still pending (this one was not sent), and the
   * runtime's error for any other failure, in one line.
   */
  send(data: Uint8Array): number {
    if (this.#closing) throw new Deno.errors.BadResource("the socket is closed");
    const at = this.#now();
    if (Number(this.#libc.symbols.send(this.#fd, data, BigInt(data.length), 0)) >= 0) return at;
    const error = errnoError(this.#libc, errnoOf(this.#libc));
    error.message = `cannot send to ${this.#where}: ${error.message}`;
    throw error;
  }

  /**
   * The next datagram, or what went wrong with the last one sent;
   * `undefined` once `deadline` (a `performance.now()` time) comes (an
   * alarm that learns the runtime's timer lateness ends the wait on time,
   * not on `poll`'s whole milliseconds), when `signal` aborts, or when the
   * socket is closed meanwhile. A datagram
   * already waiting wins even when the deadline has passed. `at` is the
   * kernel's receive time, or the time `recvmsg` returned when the kernel
   * gave none (or it was cut: `MSG_CTRUNC`). The kernel also stamps at
   * `recvmsg` a datagram that arrived before it had turned timestamps on:
   * it does so lazily when no other socket on the host had them. Rejects
   * with `Deno.errors.BadResource` once closed, `Deno.errors.Busy` while
   * another receive is waiting.
   */
  async receive(deadline: number, signal?: AbortSignal): Promise<StampedReceive | undefined> {
    if (this.#closing) throw new Deno.errors.BadResource("the socket is closed");
    if (this.#receiving) throw new Deno.errors.Busy("one receive at a time on a StampedSocket");
    this.#receiving = true;
    let alarm: Alarm | undefined;
    let timeUp = dueBy(deadline);
    try {
      for (;;) {
        if (signal?.aborted || this.#closing) return undefined;
        const received = this.#receiveNow();
        if (received !== undefined || timeUp) return received;
        alarm ??= alarmAt(deadline, signal);
        const closed = Promise.withResolvers<undefined>();
        this.#wakeOnClose = closed.resolve;
        const readable = await Promise.race([this.#readable(), alarm.rung, closed.promise]);
        this.#wakeOnClose = undefined;
        timeUp = readable === undefined;
      }
    } finally {
      alarm?.cancel();
      this.#receiving = false;
    }
  }

  /** Closes the socket once the poll still running (if any) returns, so
   * that no thread polls a closed, perhaps reused, fd. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#wakeOnClose?.(undefined);
      await this.#polling;
      this.#libc.symbols.close(this.#fd);
    })();
    return this.#closing;
  }

  /** Same as {@linkcode StampedSocket.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** One `recvmsg` that does not wait: `undefined` when nothing is there. */
  #receiveNow(): StampedReceive | undefined {
    const message = this.#message;
    const length = Number(this.#libc.symbols.recvmsg(this.#fd, message.prepare(), MSG_DONTWAIT));
    if (length < 0) {
      const errno = errnoOf(this.#libc);
      if (errno === EAGAIN || errno === EINTR) return undefined;
      if (errno === ECONNREFUSED) return { kind: "refused" };
      return { kind: "error", message: errnoError(this.#libc, errno).message };
    }
    if (message.flags & MSG_TRUNC) return { kind: "error", message: "datagram truncated" };
    return {
      kind: "datagram",
      data: this.#data.subarray(0, length),
      from: this.#from ??= addressOf(message.name),
      at: message.kernelTime() ?? this.#now(),
    };
  }

  /** Settles once the socket may be readable, or `STAMPED_SOCKET_POLL_MS`
   * have passed: the poll still running, or a new one. */
  #readable(): Promise<true> {
    return this.#polling ??= this.#libc.symbols.poll(this.#pollfd, 1n, STAMPED_SOCKET_POLL_MS)
      .then(this.#polled, this.#polled);
  }

  /** `CLOCK_REALTIME` now, in ms since the epoch. */
  #now(): number {
    this.#libc.symbols.clock_gettime(CLOCK_REALTIME, this.#timespec);
    const [low = 0, high = 0, nanoseconds = 0] = this.#timespec;
    return (low + high * 2 ** 32) * 1000 + nanoseconds / 1e6;
  }
}

/** A UDP socket of `family` with `SO_TIMESTAMPNS` on, connected to
 * `address:port`; throws an `Error` with one line when a call fails. */
function connectedSocket(
  libc: Libc,
  address: string,
  family: 4 | 6,
  port: number,
  where: string,
): number {
  const { socket, connect, close } = libc.symbols;
  const fd = socket(family === 6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    throw new Error(`cannot open a UDP socket: ${errnoError(libc, errnoOf(libc)).message}`);
  }
  const target = sockaddr(address, family, port);
  const failed = !enableKernelStamps(libc, fd)
    ? "cannot turn on kernel timestamps"
    : connect(fd, target, target.length) < 0
    ? `cannot connect to ${where}`
    : undefined;
  if (failed === undefined) return fd;
  const reason = errnoError(libc, errnoOf(libc)).message;
  close(fd);
  throw new Error(`${failed}: ${reason}`);
}
