/**
 * The client's socket, and which clock times its round trips. With
 * `--allow-ffi` on Linux the client pings through the C library's socket,
 * which reads each reply's receive time from the kernel (`SO_TIMESTAMPNS`)
 * and hears ICMP port unreachable; otherwise through the runtime's, timed
 * the moment the runtime hands a reply over. Both give the same
 * {@linkcode PingSocket}.
 *
 * @module
 */

import { openClientSocket, primeSend, Receiver } from "../shared/socket.ts";
import { describeError, formatAddress, resolveHost } from "../shared/net.ts";
import { StampedSocket } from "../ffi/stamped_socket.ts";
import { alarmAt } from "../shared/timer.ts";

/** How long a warm-up waits for its timer: long enough that the runtime
 * really sets one (a shorter wait rings at once), short beside a start-up. */
const WARM_UP_WAIT_MS = 2;

/** What a receive gives: a datagram timed in the socket's clock (ms), an
 * ICMP port unreachable, or an error as one phrase. */
export type PingArrival =
  | { kind: "datagram"; data: Uint8Array; from: Deno.NetAddr; at: number }
  | { kind: "refused" }
  | { kind: "error"; message: string };

/** A socket that sends to one target and times what comes back. */
export interface PingSocket extends AsyncDisposable {
  /** Which clock `send()` and `at` are in. */
  readonly clock: "kernel" | "runtime";
  /** The target's address, resolved. */
  readonly address: string;
  readonly port: number;
  /** Sends `data`; returns the send time in the socket's clock, ms. */
  send(data: Uint8Array): Promise<number> | number;
  /** The next arrival, or `undefined` at `deadline` (a `performance.now()`
   * time) or on abort. */
  receive(deadline: number, signal?: AbortSignal): Promise<PingArrival | undefined>;
  /** Gets ready to wait until `deadline`: called before a send, so that
   * setting a timer is not timed in its round trip. */
  arm(deadline: number, signal?: AbortSignal): void;
  /** Does, before the first send, the first-use work of the runtime that
   * the first round trips would otherwise time. Nothing is sent. */
  warmUp(signal?: AbortSignal): Promise<void>;
  /** Closes it; the kernel-stamped socket waits for its last `poll`. */
  close(): Promise<void> | void;
}

/**
 * Resolves `host` and opens the socket to ping it from: the kernel-stamped
 * one when `kernel` is asked (a `notice` says why not when it cannot be
 * had), else the runtime's.
 *
 * @example
 * ```ts
 * import { openPingSocket } from "./ping_socket.ts";
 * import { equal } from "node:assert/strict";
 * await using socket = (await openPingSocket("127.0.0.1", 9, { kernel: false })).socket;
 * equal(socket.clock, "runtime");
 * ```
 */
export async function openPingSocket(
  host: string,
  port: number,
  options: { kernel?: boolean } = {},
): Promise<{ socket: PingSocket; notice?: string }> {
  const { address, family } = await resolveHost(host);
  if (options.kernel) {
    try {
      return {
        socket: new KernelPingSocket(StampedSocket.open(address, family, port), address, port),
      };
    } catch (error) {
      const reason = describeError(error);
      const notice = `notice: no kernel timestamps (${reason}); timing with the runtime's clock`;
      return { socket: new RuntimePingSocket(address, family, port), notice };
    }
  }
  return { socket: new RuntimePingSocket(address, family, port) };
}

/** The runtime's socket: unconnected, so that replies from the server's
 * address reach it whichever interface they come in on. */
class RuntimePingSocket implements PingSocket {
  readonly clock = "runtime";
  readonly address: string;
  readonly port: number;
  readonly #socket: Deno.DatagramConn & Disposable;
  readonly #receiver: Receiver;
  readonly #to: Deno.NetAddr;

  constructor(address: string, family: 4 | 6, port: number) {
    this.address = address;
    this.port = port;
    this.#socket = openClientSocket(family);
    this.#receiver = new Receiver(this.#socket);
    this.#to = { transport: "udp", hostname: address, port };
  }

  async send(data: Uint8Array): Promise<number> {
    const at = performance.now();
    await this.#socket.send(data, this.#to);
    return at;
  }

  /** Primes the receive, takes the send path once (nothing leaves) and
   * has a timer ring while waiting on a scratch socket that nothing is
   * sent to: each a millisecond or more on first use. */
  async warmUp(signal?: AbortSignal): Promise<void> {
    this.#receiver.prime();
    await primeSend((data, to) => this.#socket.send(data, to), this.address);
    const scratch = openClientSocket(this.address.includes(":") ? 6 : 4);
    const receiver = new Receiver(scratch, 1);
    await receiver.next(performance.now() + WARM_UP_WAIT_MS, signal);
    scratch.close();
    // Its receive ends with an error once the socket is closed: wait for
    // that here rather than in the first round trip.
    await receiver.next(Infinity).catch(() => {});
  }

  arm(deadline: number, signal?: AbortSignal): void {
    this.#receiver.arm(deadline, signal);
  }

  async receive(deadline: number, signal?: AbortSignal): Promise<PingArrival | undefined> {
    const datagram = await this.#receiver.next(deadline, signal);
    return datagram && { kind: "datagram", ...datagram };
  }

  close(): void {
    this.#receiver.close();
    this.#socket[Symbol.dispose]();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** The C library's socket, connected to the target, kernel-timed. */
class KernelPingSocket implements PingSocket {
  readonly clock = "kernel";
  readonly address: string;
  readonly port: number;
  readonly #socket: StampedSocket;

  constructor(socket: StampedSocket, address: string, port: number) {
    this.#socket = socket;
    this.address = address;
    this.port = port;
  }

  send(data: Uint8Array): number {
    return this.#socket.send(data);
  }

  /** The kernel times the replies: only the alarm's timer is worth a ring. */
  async warmUp(signal?: AbortSignal): Promise<void> {
    await alarmAt(performance.now() + WARM_UP_WAIT_MS, signal).rung;
  }

  /** The kernel times the replies: nothing to get ready. */
  arm(): void {}

  /** The socket's own alarm ends the wait on time. */
  receive(deadline: number, signal?: AbortSignal): Promise<PingArrival | undefined> {
    return this.#socket.receive(deadline, signal);
  }

  close(): Promise<void> {
    return this.#socket.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** `ip:port` of a socket's target. */
export function targetOf(socket: PingSocket): string {
  return formatAddress(socket.address, socket.port);
}
