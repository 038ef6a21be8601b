/**
 * Datagram sockets through the runtime (`Deno.listenDatagram`): opening one
 * with a readable error, the server's receive/send socket, and the client's
 * receive with a deadline that timestamps each datagram the moment it is
 * handed over.
 *
 * @module
 */

import { RECEIVE_BUFFER_BYTES } from "../../settings.ts";
import { describeError, formatAddress } from "./net.ts";
import { type Alarm, alarmAt, dueBy } from "./timer.ts";

/**
 * The error for a socket that cannot listen on `where`: the runtime's own
 * class, with one readable line. The FFI socket maps its errno to the same
 * classes and calls this too, so both paths say the same thing.
 *
 * @example
 * ```ts
 * import { listenError } from "./socket.ts";
 * import { equal } from "node:assert/strict";
 * const error = listenError(new Deno.errors.AddrInUse(), "127.0.0.1:12000");
 * equal(error.message, "cannot listen on 127.0.0.1:12000: the port is already in use");
 * ```
 */
export function listenError(error: unknown, where: string): Error {
  const prefix = `cannot listen on ${where}`;
  if (error instanceof Deno.errors.AddrInUse) {
    return new Deno.errors.AddrInUse(`${prefix}: the port is already in use`);
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return new Deno.errors.AddrNotAvailable(`${prefix}: the address is not on this host`);
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new Deno.errors.PermissionDenied(`${prefix}: permission denied`);
  }
  return new Error(`${prefix}: ${describeError(error)}`);
}

/**
 * Opens a UDP socket on `hostname:port`, disposable (`using`). Always give
 * the host: left out, the runtime binds 0.0.0.0, every interface.
 *
 * @example
 * ```ts
 * import { openSocket } from "./socket.ts";
 * import { equal } from "node:assert/strict";
 * using socket = openSocket("127.0.0.1", 0);
 * equal((socket.addr as Deno.NetAddr).hostname, "127.0.0.1");
 * ```
 */
export function openSocket(hostname: string, port: number): Deno.DatagramConn & Disposable {
  let socket: Deno.DatagramConn;
  try {
    socket = Deno.listenDatagram({ transport: "udp", hostname, port });
  } catch (error) {
    throw listenError(error, formatAddress(hostname, port));
  }
  // `using` closes it on every exit path; closing twice is harmless.
  return Object.assign(socket, {
    [Symbol.dispose]() {
      try {
        socket.close();
      } catch {
        // Already closed.
      }
    },
  });
}

/**
 * The socket a client sends from: an ephemeral port on every address of
 * the target's family, so that replies from the server's address reach it
 * whichever interface they come in on.
 *
 * @example
 * ```ts
 * import { openClientSocket } from "./socket.ts";
 * import { equal } from "node:assert/strict";
 * using socket = openClientSocket(6);
 * equal((socket.addr as Deno.NetAddr).hostname, "::");
 * ```
 */
export function openClientSocket(family: 4 | 6): Deno.DatagramConn & Disposable {
  return openSocket(family === 6 ? "::" : "0.0.0.0", 0);
}

/**
 * Takes a socket's send path once without sending anything, so that its
 * first use is not timed in a round trip: Linux refuses a datagram to port
 * 0 (EINVAL) before it leaves. Elsewhere (another system might send it),
 * or without the permission to send there, does nothing.
 *
 * @example
 * ```ts
 * import { openSocket, primeSend } from "./socket.ts";
 * import { equal } from "node:assert/strict";
 * using socket = openSocket("127.0.0.1", 0);
 * equal(await primeSend((data, to) => socket.send(data, to), "127.0.0.1"), undefined);
 * ```
 */
export async function primeSend(
  send: (data: Uint8Array, to: Deno.NetAddr) => Promise<unknown> | void,
  hostname: string,
): Promise<void> {
  if (Deno.build.os !== "linux") return;
  const host = formatAddress(hostname, 0);
  if (Deno.permissions.querySync({ name: "net", host }).state !== "granted") return;
  try {
    await send(new Uint8Array(), { transport: "udp", hostname, port: 0 });
  } catch {
    // Refused, as meant.
  }
}

/** A datagram that has arrived in a server socket's buffer. */
export interface Arrival {
  /** Its length in bytes, from the start of the socket's buffer. */
  length: number;
  from: Deno.NetAddr;
  /** When it arrived, in the socket's clock: ms since the Unix epoch. */
  at: number;
}

/** What a socket that sends in batches says of each reply it queued, once
 * its batch has left. */
export interface SendReport {
  /** `data` left for `to` at `at` (the socket's clock). */
  sent(data: Uint8Array, to: Deno.NetAddr, at: number): void;
  /** The reply to `to` could not be sent. */
  failed(to: Deno.NetAddr, error: unknown): void;
}

/** What a socket's `send()` returns for a reply it queued: its outcome goes
 * to the `SendReport` given with it. */
export const QUEUED: unique symbol = Symbol("queued");

/** What the server's loop needs of a socket: the runtime's or the C
 * library's (`--fast`). */
export interface ServerSocket {
  readonly addr: Deno.NetAddr;
  /** Where the datagram last received is: room for the largest one. */
  readonly buffer: Uint8Array;
  /** The next datagram, in `buffer`; `undefined` when closed. */
  receive(): Promise<Arrival | undefined> | Arrival | undefined;
  /** Sends `data` to `to`; a failure throws (or rejects). */
  send(data: Uint8Array, to: Deno.NetAddr): Promise<unknown> | void;
  /** The same, or, given a `report`, may queue it and return `QUEUED`. */
  send(
    data: Uint8Array,
    to: Deno.NetAddr,
    report: SendReport | undefined,
  ): Promise<unknown> | void | typeof QUEUED;
  /** The clock of `Arrival.at`. */
  clock(): number;
  close(): void;
}

/** The time, ms since the Unix epoch, from the monotonic clock. */
const epochNow = () => performance.timeOrigin + performance.now();

/**
 * The server's socket through the runtime.
 *
 * @example
 * ```ts
 * import { RuntimeSocket } from "./socket.ts";
 * import { ok } from "node:assert/strict";
 * const socket = new RuntimeSocket("127.0.0.1", 0);
 * ok(socket.addr.port > 0);
 * socket.close();
 * ```
 */
export class RuntimeSocket implements ServerSocket {
  readonly addr: Deno.NetAddr;
  readonly buffer: Uint8Array = new Uint8Array(RECEIVE_BUFFER_BYTES);
  readonly #socket: Deno.DatagramConn & Disposable;
  #closed = false;

  /** Binds `hostname:port`. */
  constructor(hostname: string, port: number) {
    this.#socket = openSocket(hostname, port);
    this.addr = this.#socket.addr as Deno.NetAddr;
  }

  /** The next datagram; `undefined` once closed. A receive error other
   * than closing is thrown (the loop logs it and goes on). */
  receive(): Promise<Arrival | undefined> {
    return this.#socket.receive(this.buffer).then(this.#arrived, this.#failed);
  }
  readonly #arrived = ([data, from]: [Uint8Array, Deno.Addr]): Arrival => ({
    length: data.length,
    from: from as Deno.NetAddr,
    at: epochNow(),
  });
  readonly #failed = (error: unknown): undefined => {
    if (this.#closed || error instanceof Deno.errors.BadResource) return undefined;
    throw error;
  };

  /** Sends `data` to `to`. */
  send(data: Uint8Array, to: Deno.NetAddr): Promise<number> {
    return this.#socket.send(data, to);
  }

  /** The time, ms since the Unix epoch. */
  clock(): number {
    return epochNow();
  }

  /** Closes the socket (idempotent). */
  close(): void {
    this.#closed = true;
    this.#socket[Symbol.dispose]();
  }
}

/** One received datagram, timestamped. */
export interface Datagram {
  data: Uint8Array;
  from: Deno.NetAddr;
  /** When the runtime handed it over, a `performance.now()` time. */
  at: number;
}

type Received = Datagram | { error: unknown };

/**
 * Receives from a socket with deadlines, keeping at most one `receive()`
 * outstanding across calls so that a datagram that arrives while nobody is
 * waiting is not lost, and reusing one buffer (a fresh 64 KiB buffer per
 * datagram is the runtime's default otherwise). Each datagram is
 * timestamped in the first callback after the runtime resolves the
 * receive, before any other work. Call `close()` when done.
 *
 * @example
 * ```ts
 * import { openSocket, Receiver } from "./socket.ts";
 * import { equal } from "node:assert/strict";
 * using socket = openSocket("127.0.0.1", 0);
 * using receiver = new Receiver(socket);
 * equal(await receiver.next(performance.now() + 5), undefined);
 * ```
 */
export class Receiver {
  readonly #socket: Deno.DatagramConn;
  readonly #buffer: Uint8Array;
  #pending: Promise<Received> | undefined;
  #alarm: Alarm | undefined;
  #signal: AbortSignal | undefined;
  /** Wakes the wait in progress when `#signal` aborts: one listener for
   * the signal's life, where an alarm given the signal added and removed
   * one per wait (the runtime's event listener code, 3% of a ping's CPU at
   * 10 ms). Each wait races a promise of its own: one raced by every wait
   * and settled only by the abort would keep each race's result alive, a
   * datagram per wait for the whole run. */
  #wakeOnAbort: ((value: undefined) => void) | undefined;

  /** `bufferSize` must hold the largest datagram expected: the runtime
   * silently cuts a longer one to the buffer's length. */
  constructor(socket: Deno.DatagramConn, bufferSize = RECEIVE_BUFFER_BYTES) {
    this.#socket = socket;
    this.#buffer = new Uint8Array(bufferSize);
  }

  /**
   * The next datagram, or `undefined` once `deadline` (a
   * `performance.now()` time) passes or `signal` aborts first. The data is
   * a view of the shared buffer: use it before the next call.
   */
  async next(deadline: number, signal?: AbortSignal): Promise<Datagram | undefined> {
    this.prime();
    for (;;) {
      const alarm = this.arm(deadline, signal);
      // A datagram that is already here wins even when the deadline has
      // passed: race() settles in array order.
      const waits = [this.#pending, alarm.rung];
      if (signal) {
        const woken = Promise.withResolvers<undefined>();
        if (signal.aborted) woken.resolve(undefined);
        this.#wakeOnAbort = woken.resolve;
        waits.push(woken.promise);
      }
      const outcome = await Promise.race(waits);
      this.#wakeOnAbort = undefined;
      if (outcome === undefined) {
        if (this.#alarm === alarm) this.#alarm = undefined;
        if (signal?.aborted) alarm.cancel();
        if (dueBy(deadline) || signal?.aborted) return undefined;
        continue;
      }
      this.#pending = undefined;
      if ("error" in outcome) throw outcome.error;
      return outcome;
    }
  }

  /**
   * Sets the timer of a wait until `deadline` now, ahead of the call to
   * `next()` that waits: setting a timer wakes the runtime's event loop
   * (a write to its eventfd), which, done between a send and `next()`,
   * delayed the reply's receive time by tens of microseconds. One timer
   * serves many receives: an alarm already set is kept while it is due no
   * later than `deadline` (an early ring just loops).
   */
  arm(deadline: number, signal?: AbortSignal): Alarm {
    if (this.#signal !== signal) {
      this.#signal = signal;
      if (signal && !signal.aborted) {
        signal.addEventListener("abort", () => {
          if (this.#signal === signal) this.#wakeOnAbort?.(undefined);
        }, { once: true });
      }
    }
    if (this.#alarm === undefined || this.#alarm.deadline > deadline) {
      this.#alarm?.cancel();
      this.#alarm = alarmAt(deadline);
    }
    return this.#alarm;
  }

  /** Starts the receive that the next call waits on, unless one is
   * outstanding already. A run primes it before its first send, so that
   * setting up the runtime's receive is not timed in the first round trip. */
  prime(): void {
    this.#pending ??= this.#socket.receive(this.#buffer).then(
      ([data, from]) => ({ at: performance.now(), data, from: from as Deno.NetAddr }),
      (error) => ({ error }),
    );
  }

  /** Stops the alarm still set, so that no timer holds the process open. */
  close(): void {
    this.#alarm?.cancel();
    this.#alarm = undefined;
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
