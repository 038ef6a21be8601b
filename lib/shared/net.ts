/**
 * Addresses: validating ports, resolving hosts, printing `host:port`.
 * Shared by server.ts and client.ts so both reject the same bad input with
 * the same words.
 *
 * @module
 */

import { keyedNumber, keyedString } from "./keyed_hash.ts";

/** A resolved IP address and its family. */
export interface ResolvedHost {
  address: string;
  family: 4 | 6;
}

/** How a port is checked: whether 0 ("any free port") is allowed, and the
 * name of the flag or argument that gave it, for the message. */
export interface PortRule {
  allowZero?: boolean;
  /** @default {"port"} */
  label?: string;
}

/**
 * Checks a port number. The runtime silently clamps a port above 65535 to
 * 65535 when sending, so every port is checked here first. Port 0 ("any
 * free port") makes sense only for a socket that binds, so it is opt-in.
 */
export function checkPort(
  port: number,
  options: PortRule = {},
  given: string = String(port),
): number {
  const min = options.allowZero ? 0 : 1;
  if (!Number.isInteger(port) || port < min || port > 65535) {
    const label = options.label ?? "port";
    throw new RangeError(`${label} must be a whole number from ${min} to 65535, got '${given}'`);
  }
  return port;
}

/**
 * Parses a port given as text (a flag or a positional argument).
 *
 * @example
 * ```ts
 * import { parsePort } from "./net.ts";
 * import { equal, throws } from "node:assert/strict";
 * equal(parsePort("12000"), 12000);
 * throws(() => parsePort("x", { label: "--port" }), /^RangeError: --port must be a whole number/);
 * ```
 */
export function parsePort(text: string, options: PortRule = {}): number {
  return checkPort(/^\d+$/.test(text) ? Number(text) : NaN, options, text);
}

/** Strips the brackets of an IPv6 literal written as `[::1]`. */
export function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

const IPV4_OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const IPV4 = new RegExp(`^${IPV4_OCTET}(\\.${IPV4_OCTET}){3}$`);

/**
 * The canonical form of an IPv6 literal (`0:0::1` → `::1`), or `undefined`
 * when it is not one. The URL parser knows IPv6 syntax, embedded IPv4
 * included. (node:net's isIP would do, but loading node:net costs every
 * process about 5 MB.)
 */
export function canonicalIPv6(address: string): string | undefined {
  if (!address.includes(":") || /[\[\]/%]/.test(address)) return undefined;
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

/** 4 or 6 for an IP literal of that family, 0 otherwise. */
export function ipFamily(address: string): 0 | 4 | 6 {
  if (IPV4.test(address)) return 4;
  return canonicalIPv6(address) === undefined ? 0 : 6;
}

/** An IPv6 literal with a scope (zone) id, `fe80::1%eth0`: the address and
 * the zone. */
const SCOPED_IPV6 = /^([0-9a-f:.]+)%([\w.-]+)$/i;

/**
 * Resolves a host name or IP literal with the system resolver (so
 * `/etc/hosts` and `localhost` work). A literal is checked, not looked up;
 * an IPv6 literal may carry a scope id (`fe80::1%eth0`), kept in the
 * address. `family` asks for an address of that family only (ping's `-4`
 * and `-6`).
 *
 * @example
 * ```ts
 * import { resolveHost } from "./net.ts";
 * import { deepStrictEqual, rejects } from "node:assert/strict";
 * deepStrictEqual(await resolveHost("[fe80::1%lo]"), { address: "fe80::1%lo", family: 6 });
 * await rejects(resolveHost("127.0.0.1", 6), /'127\.0\.0\.1' is an IPv4 address, not IPv6/);
 * ```
 */
export async function resolveHost(host: string, family?: 4 | 6): Promise<ResolvedHost> {
  const name = unbracket(host);
  if (name.trim() === "") throw new TypeError("host must not be empty");
  const scoped = SCOPED_IPV6.exec(name);
  const literal = ipFamily(scoped ? scoped[1]! : name);
  if (literal !== 0) {
    if (family !== undefined && literal !== family) {
      throw new TypeError(`'${host}' is an IPv${literal} address, not IPv${family}`);
    }
    return { address: name, family: literal };
  }
  if (/^[\d.]+$/.test(name)) throw new TypeError(`'${host}' is not a valid IPv4 address`);
  if (!needsLookup(name)) throw new TypeError(`'${host}' is not a valid IPv6 address`);
  try {
    // Loaded only for names: most runs give an address.
    const { lookup } = await import("node:dns/promises");
    const found = await lookup(name, { family: family ?? 0 });
    return { address: found.address, family: found.family === 6 ? 6 : 4 };
  } catch {
    const which = family === undefined ? "" : ` to an IPv${family} address`;
    throw new Deno.errors.NotFound(`cannot resolve host '${host}'${which}`);
  }
}

/** Whether {@linkcode resolveHost} asks the resolver about `host`: a name,
 * not something written as an IP literal (digits and dots, or a colon). */
export function needsLookup(host: string): boolean {
  const name = unbracket(host);
  return !/^[\d.]+$/.test(name) && !name.includes(":");
}

/** `127.0.0.1:12000` or `[::1]:12000`. */
export function formatAddress(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/** Compares IP addresses written in possibly different forms
 * (`::1` and `0:0:0:0:0:0:0:1`; `fe80::1%eth0` and `fe80::1`). */
export function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  const canonical = canonicalIPv6(unscoped(a));
  return canonical !== undefined && canonical === canonicalIPv6(unscoped(b));
}

/** An IPv6 address without its scope id: the runtime reports the source of
 * a datagram from `fe80::1%eth0` as `fe80::1`. */
function unscoped(address: string): string {
  return address.replace(/%.*$/, "");
}

/** Describes a socket error as a short phrase, without a stack. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.replace(/\s*\(os error \d+\)$/, "");
  return String(error);
}

/**
 * Whether an address reaches this host only: 127.0.0.0/8, `::1`, and their
 * IPv4-mapped IPv6 forms.
 *
 * @example
 * ```ts
 * import { isLoopback } from "./net.ts";
 * import { equal } from "node:assert/strict";
 * equal(isLoopback("::ffff:127.0.0.1"), true);
 * equal(isLoopback("::ffff:0.0.0.0"), false);
 * ```
 */
export function isLoopback(address: string): boolean {
  const v6 = canonicalIPv6(address);
  if (v6 === undefined) return /^127\./.test(address);
  if (v6 === "::1") return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v6)?.[1];
  if (mapped) return mapped.startsWith("127.");
  const hex = /^::ffff:([0-9a-f]{1,4}):[0-9a-f]{1,4}$/.exec(v6)?.[1];
  return hex !== undefined && parseInt(hex, 16) >> 8 === 127;
}

/** An IPv4 address in dotted-quad form as a number, or -1: a map key that
 * needs no string. */
export function ipv4Number(hostname: string): number {
  let value = 0;
  let part = -1;
  let dots = 0;
  for (let i = 0; i < hostname.length; i++) {
    const code = hostname.charCodeAt(i);
    if (code === 0x2e) {
      if (part < 0 || ++dots > 3) return -1;
      value = value * 256 + part;
      part = -1;
    } else if (code >= 0x30 && code <= 0x39) {
      part = part < 0 ? code - 0x30 : part * 10 + code - 0x30;
      if (part > 255) return -1;
    } else return -1;
  }
  return dots === 3 && part >= 0 ? value * 256 + part : -1;
}

/** A client (address and port) as one map key: a number (no allocation
 * for IPv4), keyed with this process's secret so that no sender can choose
 * sources that collide in a Map (keyed_hash.ts). */
export function clientKey(hostname: string, port: number): number {
  if (port === lastClient.port && hostname === lastClient.hostname) return lastClient.key;
  const v4 = ipv4Number(hostname);
  const key = v4 >= 0 ? keyedNumber(v4 * 65536 + port) : keyedString(hostname, port);
  lastClient.hostname = hostname;
  lastClient.port = port;
  lastClient.key = key;
  return key;
}

/** The last client {@linkcode clientKey} keyed: the server asks for each
 * datagram's key four times (the client count, the loop guard, the rate
 * limit, the reply's send), and keying an IPv6 address reads it whole. */
const lastClient = { hostname: "", port: -1, key: 0 };

/** An address as a map key, keyed like {@linkcode clientKey}. */
export function addressKey(hostname: string): number {
  const v4 = ipv4Number(hostname);
  return v4 >= 0 ? keyedNumber(v4) : keyedString(hostname);
}
