/**
 * Addresses: validating ports, resolving hosts, printing `host:port`.
 * Shared by server.ts and client.ts so both reject the same bad input with
 * the same words.
 *
 * @module
 */

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";

/** A problem with what the user asked for: reported as one line, exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A resolved IP address and its family. */
export interface ResolvedHost {
  address: string;
  family: 4 | 6;
}

/**
 * Checks a port number. The runtime silently clamps a port above 65535 to
 * 65535 when sending, so every port is checked here first. Port 0 ("any
 * free port") makes sense only for a socket that binds, so it is opt-in.
 */
export function checkPort(
  port: number,
  options: { allowZero?: boolean } = {},
  given: string = String(port),
): number {
  const min = options.allowZero ? 0 : 1;
  if (!Number.isInteger(port) || port < min || port > 65535) {
    throw new UsageError(`port must be a whole number from ${min} to 65535, got '${given}'`);
  }
  return port;
}

/** Parses a port given as text (a flag or a positional argument). */
export function parsePort(text: string, options: { allowZero?: boolean } = {}): number {
  return checkPort(/^\d+$/.test(text) ? Number(text) : NaN, options, text);
}

/** Strips the brackets of an IPv6 literal written as `[::1]`. */
export function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/**
 * Resolves a host name or IP literal with the system resolver (so
 * `/etc/hosts` and `localhost` work). A literal is checked, not looked up.
 */
export async function resolveHost(host: string): Promise<ResolvedHost> {
  const name = unbracket(host);
  const literal = isIP(name);
  if (literal === 4 || literal === 6) return { address: name, family: literal };
  if (/^[\d.]+$/.test(name)) throw new UsageError(`'${host}' is not a valid IPv4 address`);
  if (name.includes(":")) throw new UsageError(`'${host}' is not a valid IPv6 address`);
  try {
    const { address, family } = await lookup(name);
    return { address, family: family === 6 ? 6 : 4 };
  } catch {
    throw new UsageError(`cannot resolve host '${host}'`);
  }
}

/** `127.0.0.1:12000` or `[::1]:12000`. */
export function formatAddress(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/** Compares IP addresses written in possibly different forms
 * (`::1` and `0:0:0:0:0:0:0:1`). */
export function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  if (isIP(a) !== 6 || isIP(b) !== 6) return false;
  return expandIPv6(a) === expandIPv6(b);
}

function expandIPv6(address: string): string {
  const [head = "", tail] = address.toLowerCase().split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = Array(Math.max(0, 8 - left.length - right.length)).fill("0");
  const groups = tail === undefined ? left : [...left, ...zeros, ...right];
  return groups.map((group) => group.padStart(4, "0")).join(":");
}

/** Describes a socket error as a short phrase, without a stack. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.replace(/\s*\(os error \d+\)$/, "");
  return String(error);
}
