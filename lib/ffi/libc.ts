/**
 * The C library, through `Deno.dlopen` (Linux, `--allow-ffi`): the few
 * socket calls that the runtime's datagram API does not offer (kernel
 * timestamps, ICMP errors on a connected socket, a blocking receive loop),
 * the C socket address layout, and errno turned into the errors the
 * runtime's socket throws, in the same words.
 *
 * Only the opt-in fast paths load this file's symbols; nothing here runs
 * without `--allow-ffi`.
 *
 * @module
 */

import { canonicalIPv6 } from "../shared/net.ts";

/** `AF_INET`. */
export const AF_INET = 2;
/** `AF_INET6`. */
export const AF_INET6 = 10;
/** `SOCK_DGRAM`. */
export const SOCK_DGRAM = 2;
/** `SOL_SOCKET`. */
export const SOL_SOCKET = 1;
/** `SO_RCVTIMEO` (x86-64 and arm64 Linux). */
export const SO_RCVTIMEO = 20;
/** `SO_TIMESTAMPNS`: a `struct timespec` of the kernel's receive time
 * (CLOCK_REALTIME) in a control message of each `recvmsg`. */
export const SO_TIMESTAMPNS = 35;
/** `SCM_TIMESTAMPNS`: the control message type that carries the
 * `SO_TIMESTAMPNS` receive time (the same number as the option). */
export const SCM_TIMESTAMPNS = 35;
/** `EAGAIN`: nothing to receive yet. */
export const EAGAIN = 11;
/** `EINTR`: a signal interrupted the call. */
export const EINTR = 4;
/** `ECONNREFUSED`: an ICMP port unreachable came back to a connected socket. */
export const ECONNREFUSED = 111;
/** `EPERM`. */
const EPERM = 1;
/** `EACCES`. */
const EACCES = 13;
/** `EADDRINUSE`. */
const EADDRINUSE = 98;
/** `EADDRNOTAVAIL`. */
const EADDRNOTAVAIL = 99;
/** `MSG_DONTWAIT`: return `EAGAIN` instead of blocking. */
export const MSG_DONTWAIT = 0x40;
/** `MSG_WAITFORONE`: `recvmmsg` blocks for the first datagram only, then
 * takes what else is there without waiting. */
export const MSG_WAITFORONE = 0x10000;
/** `MSG_TRUNC` in `msg_flags`: the datagram was longer than the buffer. */
export const MSG_TRUNC = 0x20;
/** `MSG_CTRUNC` in `msg_flags`: the control messages did not fit. */
export const MSG_CTRUNC = 0x08;
/** `POLLIN`. */
export const POLLIN = 1;
/** `CLOCK_REALTIME`, the clock of `SO_TIMESTAMPNS`. */
export const CLOCK_REALTIME = 0;
/** Bytes of a `sockaddr_in6`, the larger of the two address layouts. */
export const SOCKADDR_BYTES = 28;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  recvfrom: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"],
    result: "isize",
  },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "buffer"], result: "i32" },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
  /** Waits for a socket without blocking the event loop: runs on a
   * runtime thread and settles a promise. */
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
} as const;

/** The C library's socket symbols. It has no `close`: the one library of
 * the process stays open, and sockets close only their descriptors. */
export type Libc = Pick<Deno.DynamicLibrary<typeof SYMBOLS>, "symbols">;

// Each Deno.dlopen builds its symbols' call stubs anew, about 70 KB of
// native memory that close() does not return and only a garbage collection
// of the library object may: a dlopen per socket made 1,000 in-process
// ping runs grow by tens of MB.
let loaded: Libc | undefined;

/** The C library, loaded on the first call and shared by every socket of
 * the process; throws a `TypeError` (with a one-line message) off Linux or
 * where its symbols are missing. */
export function loadLibc(): Libc {
  if (loaded !== undefined) return loaded;
  if (Deno.build.os !== "linux") throw new TypeError("the C library path works on Linux only");
  try {
    return loaded = Deno.dlopen("libc.so.6", SYMBOLS);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new TypeError(`cannot load the C library's socket calls: ${reason}`);
  }
}

/** The calling thread's `errno`. */
export function errnoOf(libc: Libc): number {
  return new Deno.UnsafePointerView(libc.symbols.__errno_location()!).getInt32();
}

/**
 * The error the runtime's own socket throws for `errno`: its class
 * (`Deno.errors.AddrInUse`, `ConnectionRefused`, ...) and the C library's
 * wording (`strerror`), the phrase the runtime's messages carry ("Address
 * already in use"). `describeError()` then says the same for the same
 * failure on either path.
 */
export function errnoError(libc: Libc, errno: number): Error {
  const text = libc.symbols.strerror(errno);
  const message = text === null ? `error ${errno}` : new Deno.UnsafePointerView(text).getCString();
  const Class = ERRNO_CLASSES[errno] ?? Error;
  return new Class(message);
}

/** The runtime's error classes of the errno values a socket meets. */
const ERRNO_CLASSES: Record<number, new (message: string) => Error> = {
  [EPERM]: Deno.errors.PermissionDenied,
  [EACCES]: Deno.errors.PermissionDenied,
  [EADDRINUSE]: Deno.errors.AddrInUse,
  [EADDRNOTAVAIL]: Deno.errors.AddrNotAvailable,
  [ECONNREFUSED]: Deno.errors.ConnectionRefused,
};

/** A socket address in the C layout (`sockaddr_in` / `sockaddr_in6`). */
export function sockaddr(address: string, family: 4 | 6, port: number): Uint8Array {
  const bytes = new Uint8Array(family === 6 ? SOCKADDR_BYTES : 16);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, family === 6 ? AF_INET6 : AF_INET, true);
  view.setUint16(2, port, false);
  if (family === 4) {
    address.split(".").forEach((octet, i) => bytes[4 + i] = Number(octet));
  } else {
    const hextets = canonicalIPv6(address) ?? "::";
    const [head = "", tail = ""] = hextets.split("::");
    const left = head ? head.split(":") : [];
    const right = hextets.includes("::") && tail ? tail.split(":") : [];
    const groups = hextets.includes("::")
      ? [...left, ...Array(8 - left.length - right.length).fill("0"), ...right]
      : left;
    groups.forEach((group, i) => view.setUint16(8 + 2 * i, parseInt(group, 16), false));
  }
  return bytes;
}

/** The host and port of a C socket address. */
export function addressOf(bytes: Uint8Array): Deno.NetAddr {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const port = view.getUint16(2, false);
  if (view.getUint16(0, true) === AF_INET) {
    return { transport: "udp", hostname: `${bytes[4]}.${bytes[5]}.${bytes[6]}.${bytes[7]}`, port };
  }
  const groups = Array.from({ length: 8 }, (_, i) => view.getUint16(8 + 2 * i, false).toString(16));
  const hostname = canonicalIPv6(groups.join(":")) ?? "::";
  return { transport: "udp", hostname, port };
}

// struct msghdr (x86-64 and arm64 Linux): the offsets of its fields.
const MSGHDR_BYTES = 56;
const MSG_NAME = 0;
const MSG_NAMELEN = 8;
const MSG_IOV = 16;
const MSG_IOVLEN = 24;
const MSG_CONTROL = 32;
const MSG_CONTROLLEN = 40;
const MSG_FLAGS = 48;
// struct cmsghdr: len (u64), level (i32), type (i32), then the data.
const CMSG_LEVEL = 8;
const CMSG_TYPE = 12;
const CMSG_DATA = 16;
// One cmsghdr and one struct timespec (tv_sec i64, tv_nsec i64).
const CONTROL_BYTES = CMSG_DATA + 16;

/**
 * The buffers of a `recvmsg` that asks for the kernel's receive time: the
 * `msghdr`, its one `iovec` over `data`, the sender's address and room for
 * one `SO_TIMESTAMPNS` control message. Each buffer the kernel writes
 * through a pointer has an ArrayBuffer of its own, which V8 never moves.
 */
export class StampedMessage {
  /** The `msghdr`, to pass to `recvmsg`. */
  readonly header = new DataView(new ArrayBuffer(MSGHDR_BYTES));
  /** The sender's address as the kernel wrote it. */
  readonly name = new Uint8Array(new ArrayBuffer(SOCKADDR_BYTES));
  readonly #control = new DataView(new ArrayBuffer(CONTROL_BYTES));
  readonly #iovec = new DataView(new ArrayBuffer(16));

  /** Receives into `data`, which must have an ArrayBuffer of its own. */
  constructor(data: Uint8Array<ArrayBuffer>) {
    const address = (buffer: BufferSource) =>
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
    this.#iovec.setBigUint64(0, address(data), true);
    this.#iovec.setBigUint64(8, BigInt(data.byteLength), true);
    this.header.setBigUint64(MSG_NAME, address(this.name), true);
    this.header.setBigUint64(MSG_IOV, address(this.#iovec), true);
    this.header.setBigUint64(MSG_IOVLEN, 1n, true);
    this.header.setBigUint64(MSG_CONTROL, address(this.#control), true);
  }

  /** Resets the lengths the kernel overwrites; call before each `recvmsg`. */
  prepare(): DataView {
    this.header.setUint32(MSG_NAMELEN, SOCKADDR_BYTES, true);
    this.header.setUint32(MSG_CONTROLLEN, CONTROL_BYTES, true);
    return this.header;
  }

  /** The flags `recvmsg` returned (`MSG_TRUNC`, `MSG_CTRUNC`). */
  get flags(): number {
    return this.header.getInt32(MSG_FLAGS, true);
  }

  /** The kernel's receive time in ms since the epoch (CLOCK_REALTIME), or
   * `undefined` when the control message is missing or was cut. */
  kernelTime(): number | undefined {
    return kernelTimeOf(this.header, 0, this.#control, 0);
  }
}

/** The `SO_TIMESTAMPNS` receive time of the `msghdr` at `at` in `header`,
 * whose control buffer is at `controlAt` in `control`; `undefined` when
 * the control message is missing or was cut. */
function kernelTimeOf(
  header: DataView,
  at: number,
  control: DataView,
  controlAt: number,
): number | undefined {
  const length = header.getUint32(at + MSG_CONTROLLEN, true);
  if (
    header.getInt32(at + MSG_FLAGS, true) & MSG_CTRUNC || length < CONTROL_BYTES ||
    control.getInt32(controlAt + CMSG_LEVEL, true) !== SOL_SOCKET ||
    control.getInt32(controlAt + CMSG_TYPE, true) !== SCM_TIMESTAMPNS
  ) return undefined;
  // Read as 32-bit halves: a BigInt per datagram is an allocation to spare.
  const data = controlAt + CMSG_DATA;
  const seconds = control.getUint32(data, true) + control.getInt32(data + 4, true) * 2 ** 32;
  return seconds * 1000 + control.getUint32(data + 8, true) / 1e6;
}

// struct mmsghdr: a msghdr, then msg_len (u32), padded to 8 bytes.
const MMSGHDR_BYTES = 64;
const MSG_LEN = MSGHDR_BYTES;
const IOVEC_BYTES = 16;

/** Where an ArrayBuffer's bytes are in memory, as a number (exact below
 * 2^53, as every user-space address is). */
export function memoryAddress(buffer: BufferSource): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
}

/** Writes the 64-bit `value` at `at` as two 32-bit halves: no BigInt. */
function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value % 2 ** 32, true);
  view.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
}

/**
 * The buffers of a `recvmmsg` that receives up to `size` datagrams at once,
 * each into a slot of its own with its sender's address and its
 * `SO_TIMESTAMPNS` receive time: one array of `mmsghdr`s, one of
 * `iovec`s, one of addresses, one of control messages and one of slots,
 * each an ArrayBuffer of its own, which V8 never moves.
 */
export class StampedBatch {
  /** The `mmsghdr` array, to pass to `recvmmsg`. */
  readonly headers: DataView;
  /** The slots, `slotBytes` each, datagram `k` in `slots[k]`. */
  readonly slots: Uint8Array<ArrayBuffer>[];
  /** The senders' addresses as the kernel wrote them, `SOCKADDR_BYTES` each. */
  readonly names: Uint8Array<ArrayBuffer>;
  /** Where `names` is in memory, for a `msghdr` that sends to one of them. */
  readonly namesAddress: number;
  readonly #controls: DataView<ArrayBuffer>;
  /** Read by the kernel through `headers`: kept alive with them. */
  readonly #iovecs: DataView<ArrayBuffer>;

  constructor(size: number, slotBytes: number) {
    const data = new ArrayBuffer(size * slotBytes);
    this.slots = Array.from(
      { length: size },
      (_, k) => new Uint8Array(data, k * slotBytes, slotBytes),
    );
    this.headers = new DataView(new ArrayBuffer(size * MMSGHDR_BYTES));
    this.names = new Uint8Array(new ArrayBuffer(size * SOCKADDR_BYTES));
    this.#controls = new DataView(new ArrayBuffer(size * CONTROL_BYTES));
    const iovecs = this.#iovecs = new DataView(new ArrayBuffer(size * IOVEC_BYTES));
    const dataAt = memoryAddress(data);
    const iovecsAt = memoryAddress(iovecs);
    const controlsAt = memoryAddress(this.#controls);
    this.namesAddress = memoryAddress(this.names);
    for (let k = 0; k < size; k++) {
      setU64(iovecs, k * IOVEC_BYTES, dataAt + k * slotBytes);
      setU64(iovecs, k * IOVEC_BYTES + 8, slotBytes);
      const at = k * MMSGHDR_BYTES;
      setU64(this.headers, at + MSG_NAME, this.namesAddress + k * SOCKADDR_BYTES);
      setU64(this.headers, at + MSG_IOV, iovecsAt + k * IOVEC_BYTES);
      setU64(this.headers, at + MSG_IOVLEN, 1);
      setU64(this.headers, at + MSG_CONTROL, controlsAt + k * CONTROL_BYTES);
    }
    this.prepare(size);
  }

  /** Resets the lengths the kernel overwrote in the first `used` headers
   * (the last burst's); call before each `recvmmsg`. */
  prepare(used: number): DataView {
    for (let k = 0; k < used; k++) {
      this.headers.setUint32(k * MMSGHDR_BYTES + MSG_NAMELEN, SOCKADDR_BYTES, true);
      this.headers.setUint32(k * MMSGHDR_BYTES + MSG_CONTROLLEN, CONTROL_BYTES, true);
    }
    return this.headers;
  }

  /** The length of datagram `k`. */
  length(k: number): number {
    return this.headers.getUint32(k * MMSGHDR_BYTES + MSG_LEN, true);
  }

  /** The length of datagram `k`'s sender address in `names`. */
  nameLength(k: number): number {
    return this.headers.getUint32(k * MMSGHDR_BYTES + MSG_NAMELEN, true);
  }

  /** The kernel's receive time of datagram `k` in ms since the epoch, or
   * `undefined` when its control message is missing or was cut. */
  kernelTime(k: number): number | undefined {
    return kernelTimeOf(this.headers, k * MMSGHDR_BYTES, this.#controls, k * CONTROL_BYTES);
  }
}

/**
 * The `mmsghdr` array of a `sendmmsg` of up to `size` datagrams, each
 * sent from wherever its bytes already are: a `msghdr` and one `iovec`
 * per datagram, and room for an address per datagram where the caller
 * has none in memory.
 */
export class SendBatch {
  /** The `mmsghdr` array, to pass to `sendmmsg`, from datagram `k` on
   * (`headers.subarray`-like, no allocation: see `from()`). */
  readonly headers: Uint8Array<ArrayBuffer>;
  /** Room for the address of datagram `k` at `k * SOCKADDR_BYTES`. */
  readonly names: Uint8Array<ArrayBuffer>;
  readonly #view: DataView;
  readonly #iovecs: DataView<ArrayBuffer>;
  readonly #namesAt: number;
  /** `headers` from each datagram on: what `sendmmsg` is given after a
   * failed one. Made once. */
  readonly #tails: Uint8Array<ArrayBuffer>[];

  constructor(size: number) {
    this.headers = new Uint8Array(new ArrayBuffer(size * MMSGHDR_BYTES));
    this.#view = new DataView(this.headers.buffer);
    this.#iovecs = new DataView(new ArrayBuffer(size * IOVEC_BYTES));
    this.names = new Uint8Array(new ArrayBuffer(size * SOCKADDR_BYTES));
    this.#namesAt = memoryAddress(this.names);
    const iovecsAt = memoryAddress(this.#iovecs);
    for (let k = 0; k < size; k++) {
      setU64(this.#view, k * MMSGHDR_BYTES + MSG_IOV, iovecsAt + k * IOVEC_BYTES);
      setU64(this.#view, k * MMSGHDR_BYTES + MSG_IOVLEN, 1);
    }
    this.#tails = Array.from(
      { length: size },
      (_, k) => this.headers.subarray(k * MMSGHDR_BYTES),
    );
  }

  /** Datagram `k`: `length` bytes at memory address `bytesAt`, to the
   * address at memory address `nameAt` (`nameLength` bytes). */
  set(k: number, bytesAt: number, length: number, nameAt: number, nameLength: number): void {
    setU64(this.#iovecs, k * IOVEC_BYTES, bytesAt);
    setU64(this.#iovecs, k * IOVEC_BYTES + 8, length);
    setU64(this.#view, k * MMSGHDR_BYTES + MSG_NAME, nameAt);
    this.#view.setUint32(k * MMSGHDR_BYTES + MSG_NAMELEN, nameLength, true);
  }

  /** Where the room for datagram `k`'s address is in memory. */
  nameAddress(k: number): number {
    return this.#namesAt + k * SOCKADDR_BYTES;
  }

  /** The `mmsghdr` array from datagram `k` on. */
  from(k: number): Uint8Array<ArrayBuffer> {
    return this.#tails[k]!;
  }
}

/** Turns on `SO_TIMESTAMPNS` for `fd`; whether it worked. */
export function enableKernelStamps(libc: Libc, fd: number): boolean {
  const on = new Uint8Array(new Int32Array([1]).buffer);
  return libc.symbols.setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, on, on.length) >= 0;
}
