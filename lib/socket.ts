/**
 * The small pieces of datagram I/O that the scripts share: opening a socket
 * with a readable error (both), and receiving with a deadline (the client).
 *
 * @module
 */

import { describeError, formatAddress } from "./net.ts";

/** One received datagram. */
export interface Datagram {
  data: Uint8Array;
  from: Deno.NetAddr;
}

/**
 * The error for a socket that cannot listen on `where`: the runtime's own
 * class, with one readable line. The FFI socket maps its errno to the same
 * classes and calls this too, so both paths say the same thing.
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
 * Opens a UDP socket on `hostname:port`. Always give the host: left out,
 * the runtime binds 0.0.0.0, every interface.
 */
export function openSocket(hostname: string, port: number): Deno.DatagramConn {
  try {
    return Deno.listenDatagram({ transport: "udp", hostname, port });
  } catch (error) {
    throw listenError(error, formatAddress(hostname, port));
  }
}

type Received = { datagram: Datagram } | { error: unknown };

/**
 * Receives from a socket with deadlines, keeping at most one `receive()`
 * outstanding across calls so that a datagram that arrives while nobody is
 * waiting is not lost, and reusing one buffer (a fresh 64 KiB buffer per
 * datagram is the runtime's default otherwise). Call `close()` when done.
 */
export class Receiver {
  readonly #socket: Deno.DatagramConn;
  readonly #buffer: Uint8Array;
  #pending: Promise<Received> | undefined;
  #alarm: Alarm | undefined;
  #signal: AbortSignal | undefined;

  /** `bufferSize` must hold the largest datagram expected: the runtime
   * silently cuts a longer one to the buffer's length. */
  constructor(socket: Deno.DatagramConn, bufferSize = 65536) {
    this.#socket = socket;
    this.#buffer = new Uint8Array(bufferSize);
  }

  /**
   * The next datagram, or `undefined` once `deadline` (a
   * `performance.now()` time) passes or `signal` aborts first. The data is
   * a view of the shared buffer: use it before the next call.
   */
  async next(deadline: number, signal?: AbortSignal): Promise<Datagram | undefined> {
    this.#pending ??= this.#socket.receive(this.#buffer).then(
      ([data, from]) => ({ datagram: { data, from: from as Deno.NetAddr } }),
      (error) => ({ error }),
    );
    for (;;) {
      // One timer serves many receives: an alarm set for an earlier call
      // is kept while it is due no later than this deadline (an early ring
      // just loops). Setting a timer per receive cost ~5 µs a round trip.
      if (this.#alarm === undefined || this.#alarm.deadline > deadline || this.#signal !== signal) {
        this.#alarm?.cancel();
        this.#alarm = alarmAt(deadline, signal);
        this.#signal = signal;
      }
      const alarm = this.#alarm;
      // A datagram that is already here wins even when the deadline has
      // passed: race() settles in array order.
      const outcome = await Promise.race([this.#pending, alarm.rung]);
      if (outcome === undefined) {
        if (this.#alarm === alarm) this.#alarm = undefined;
        if (performance.now() >= deadline || signal?.aborted) return undefined;
        continue;
      }
      this.#pending = undefined;
      if ("error" in outcome) throw outcome.error;
      return outcome.datagram;
    }
  }

  /** Stops the alarm still set, so that no timer holds the process open;
   * call it when done receiving. */
  close(): void {
    this.#alarm?.cancel();
    this.#alarm = undefined;
  }
}

/** A timer that rings at a `performance.now()` time or on abort. */
interface Alarm {
  deadline: number;
  rung: Promise<undefined>;
  /** Stops the timer so that it does not hold the process open. */
  cancel(): void;
}

/**
 * How long before its deadline an alarm stops trusting the runtime's timer:
 * Deno's timers fire about 1-2 ms late with millisecond resolution, so the
 * last stretch is walked with `setImmediate`, which lets network I/O in
 * between steps (a reply that arrives meanwhile is timed as promptly as
 * ever) and rings within a few microseconds of the deadline.
 */
const FINE_WAIT_MS = 2.5;

function alarmAt(deadline: number, signal?: AbortSignal): Alarm {
  let cancel = () => {};
  const rung = new Promise<undefined>((resolve) => {
    if (signal?.aborted) return resolve(undefined);
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let step: ReturnType<typeof setImmediate> | undefined;
    const ring = () => {
      cancel();
      resolve(undefined);
    };
    const walk = () => {
      if (cancelled) return;
      if (performance.now() >= deadline) return ring();
      step = setImmediate(walk);
    };
    const wait = deadline - performance.now();
    if (Number.isFinite(wait)) timer = setTimeout(walk, Math.max(0, wait - FINE_WAIT_MS));
    signal?.addEventListener("abort", ring, { once: true });
    cancel = () => {
      cancelled = true;
      clearTimeout(timer);
      if (step !== undefined) clearImmediate(step);
      signal?.removeEventListener("abort", ring);
    };
  });
  return { deadline, rung, cancel: () => cancel() };
}

/** Resolves at `deadline` (a `performance.now()` time) or when `signal`
 * aborts, whichever is first. */
export async function sleepUntil(deadline: number, signal?: AbortSignal): Promise<void> {
  await alarmAt(deadline, signal).rung;
}

/** The next datagram on `socket` within `waitMs`, or `undefined`. */
export async function receiveWithin(
  socket: Deno.DatagramConn,
  waitMs: number,
  bufferSize?: number,
): Promise<Datagram | undefined> {
  const receiver = new Receiver(socket, bufferSize);
  try {
    return await receiver.next(performance.now() + waitMs);
  } finally {
    receiver.close();
  }
}
