/**
 * The server's options: their limits (one table for `serve()` and the
 * command line), their checks, the line that says how it serves, and the
 * summary it prints when it stops.
 *
 * @module
 */

import {
  DEFAULT_RATE,
  MAX_DELAY_MS,
  MAX_PREFIX_BYTES,
  MAX_RATE,
  MAX_SECONDS,
} from "../../settings.ts";
import { checkNumber, type NumberOption } from "../shared/checks.ts";
import { type Impairments, impairmentsSet, type ServerStats } from "./verdict.ts";
import { checkPort, formatAddress, isLoopback } from "../shared/net.ts";
import type { ReplyMode } from "./reply.ts";

/** What {@linkcode serve} does; every field has a default. */
export interface ServeOptions extends Impairments {
  /** Address to bind.
   * @default {"127.0.0.1"} */
  host?: string;
  /** Port to bind; 0 picks a free one.
   * @default {12000} */
  port?: number;
  /** How to answer (`heartbeat` when `heartbeat` is given, else `prefix`
   * when `prefix` is, else echo). */
  mode?: ReplyMode;
  /** Text put before each reply in `prefix` mode, at most
   * `MAX_PREFIX_BYTES` bytes. */
  prefix?: string;
  /** Seed for repeatable impairments; random when left out. */
  seed?: number;
  /** Replies per second per source (address and port); 0: no limit.
   * @default {1000} */
  rate?: number;
  /** Answer sources on ports below 1024 (well-known services never ping). */
  allowPrivileged?: boolean;
  /** Recognise heartbeats (udping records, never answered) and declare a
   * source stopped after this many seconds of silence. */
  heartbeat?: number;
  /** Serve through the C library (Linux, `--allow-ffi`): 2-3 times the
   * replies per second, kernel receive times; no impairments. */
  fast?: boolean;
  /** Log times in UTC instead of local time. */
  utc?: boolean;
  /** Receives one line per datagram and per notice; no log when left out. */
  log?: (line: string) => void;
}

/** The numeric options of `serve()`. */
export const NUMERIC_OPTIONS = [
  "loss",
  "delay",
  "jitter",
  "duplicate",
  "reorder",
  "seed",
  "rate",
  "heartbeat",
] as const;

/** Each numeric option's flag and limits. */
export const SERVE_RULES: Record<(typeof NUMERIC_OPTIONS)[number], NumberOption> = {
  loss: { flag: "--loss", rule: { min: 0, max: 1 } },
  duplicate: { flag: "--duplicate", rule: { min: 0, max: 1 } },
  reorder: { flag: "--reorder", rule: { min: 0, max: 1 } },
  delay: { flag: "--delay", rule: { min: 0, max: MAX_DELAY_MS } },
  jitter: { flag: "--jitter", rule: { min: 0, max: MAX_DELAY_MS } },
  seed: { flag: "--seed", rule: { min: 0, max: 2 ** 32 - 1, integer: true } },
  rate: { flag: "--rate", rule: { min: 0, max: MAX_RATE } },
  heartbeat: { flag: "--heartbeat", rule: { min: 0, aboveMin: true, max: MAX_SECONDS } },
};

/**
 * Checks `serve()`'s options: a `RangeError` names the option and its
 * limits, a `TypeError` a combination that cannot work.
 *
 * @example
 * ```ts
 * import { checkServeOptions } from "./serve_options.ts";
 * import { throws } from "node:assert/strict";
 * throws(() => checkServeOptions({ loss: 2 }), RangeError);
 * ```
 */
export function checkServeOptions(options: ServeOptions): void {
  for (const name of NUMERIC_OPTIONS) {
    const value = options[name];
    if (value !== undefined) checkNumber(SERVE_RULES[name].flag, value, SERVE_RULES[name].rule);
  }
  // A jitter wider than the delay would be cut at zero, moving the mean.
  const { delay = 0, jitter = 0 } = options;
  if (jitter > delay) {
    throw new RangeError(
      `--jitter must be at most --delay (${delay} ms), got '${jitter}'`,
    );
  }
  const prefixBytes = new TextEncoder().encode(options.prefix ?? "").length;
  if (prefixBytes > MAX_PREFIX_BYTES) {
    throw new RangeError(`--prefix must be at most ${MAX_PREFIX_BYTES} bytes, got ${prefixBytes}`);
  }
  if (options.port !== undefined) checkPort(options.port, { allowZero: true });
  if (options.mode === "heartbeat" && !options.heartbeat) {
    throw new TypeError(
      "mode heartbeat needs heartbeat, the seconds of silence before a source is presumed stopped",
    );
  }
  const silent = options.mode === "silent" || options.mode === "heartbeat" ||
    options.heartbeat !== undefined;
  if (silent && impairmentsSet(options).length > 0) {
    const mode = options.heartbeat !== undefined ? "--heartbeat" : "--silent";
    throw new TypeError(`${mode} never replies: drop --${impairmentsSet(options).join(", --")}`);
  }
  if (!options.fast) return;
  if (Deno.build.os !== "linux") throw new TypeError("--fast works on Linux only");
  const impairments = impairmentsSet(options);
  if (impairments.length > 0) {
    throw new TypeError(`--fast leaves out the impairments: drop --${impairments.join(", --")}`);
  }
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    throw new TypeError(
      "--fast needs --allow-ffi (deno run --allow-net --allow-ffi server.ts --fast)",
    );
  }
}

/**
 * The line the server prints when it starts, and a notice when it listens
 * beyond loopback (then anyone who can reach the host can use it).
 *
 * @example
 * ```ts
 * import { serverBanner } from "./serve_options.ts";
 * import { equal, ok } from "node:assert/strict";
 * const banner = serverBanner({ mode: "upper", loss: 0.3 }, { transport: "udp", hostname: "0.0.0.0", port: 12000 });
 * equal(banner.line, "udping server listening on 0.0.0.0:12000 (udp), mode upper, loss 0.3, at most 1000 replies/s per client");
 * ok(banner.notice);
 * ```
 */
export function serverBanner(
  options: ServeOptions,
  addr: Deno.NetAddr,
): { line: string; notice?: string } {
  const settings = [
    options.loss ? `loss ${options.loss}` : "",
    options.delay ? `delay ${options.delay} ms` : "",
    options.jitter ? `jitter ±${options.jitter} ms` : "",
    options.duplicate ? `duplicate ${options.duplicate}` : "",
    options.reorder ? `reorder ${options.reorder}` : "",
    options.seed !== undefined ? `seed ${options.seed}` : "",
    options.heartbeat ? `silence after ${options.heartbeat} s` : "",
    options.fast ? "fast path (C library)" : "",
    options.mode === "silent" || options.heartbeat
      ? ""
      : options.rate === 0
      ? "no rate limit"
      : `at most ${options.rate ?? DEFAULT_RATE} replies/s per client`,
  ].filter(Boolean);
  const where = formatAddress(addr.hostname, addr.port);
  const mode = replyMode(options);
  const line = [`udping server listening on ${where} (udp)`, `mode ${mode}`, ...settings].join(
    ", ",
  );
  if (isLoopback(addr.hostname)) return { line };
  const every = /^(0\.0\.0\.0|::|::ffff:0\.0\.0\.0|::ffff:0:0)$/.test(addr.hostname);
  const notice = every
    ? "notice: listening on every interface: this echo service is reachable from the network"
    : `notice: listening on ${addr.hostname}: this echo service is reachable from the network`;
  return { line, notice };
}

/**
 * The mode `options` ask for: `heartbeat` when `heartbeat` is given, else
 * `mode`, else `prefix` when `prefix` is given, else echo.
 *
 * @example
 * ```ts
 * import { replyMode } from "./serve_options.ts";
 * import { equal } from "node:assert/strict";
 * equal(replyMode({ prefix: "OK " }), "prefix");
 * equal(replyMode({ heartbeat: 3 }), "heartbeat");
 * equal(replyMode({}), "echo");
 * ```
 */
export function replyMode(options: ServeOptions): ReplyMode {
  if (options.heartbeat) return "heartbeat";
  return options.mode ?? (options.prefix !== undefined ? "prefix" : "echo");
}

/**
 * The lines printed when the server stops. The figures after `received`
 * on the first line add up to it: a figure that is usually zero (overflow,
 * held, abandoned at exit) is shown only when it is not.
 *
 * @example
 * ```ts
 * import { newServerStats } from "./verdict.ts";
 * import { serverSummary } from "./serve_options.ts";
 * import { match } from "node:assert/strict";
 * const lines = serverSummary({ transport: "udp", hostname: "127.0.0.1", port: 12000 }, newServerStats());
 * match(lines[2]!, /^0 received, 0 replied/);
 * ```
 */
export function serverSummary(addr: Deno.NetAddr, stats: ServerStats): string[] {
  const clients = `${stats.clients}${stats.clientsCapped ? "+" : ""}`;
  const fates = [
    `${stats.received} received`,
    `${stats.replied} replied`,
    `${stats.dropped} dropped`,
    `${stats.limited} rate-limited`,
    `${stats.ignored} ignored`,
    `${stats.failed} failed sends`,
    stats.overflow > 0 ? `${stats.overflow} overflow` : "",
    stats.held > 0 ? `${stats.held} held` : "",
    stats.abandoned > 0 ? `${stats.abandoned} abandoned at exit` : "",
    `${clients} ${stats.clients === 1 && !stats.clientsCapped ? "client" : "clients"}`,
  ];
  const lines = [
    "",
    `--- ${formatAddress(addr.hostname, addr.port)} udping server statistics ---`,
    fates.filter(Boolean).join(", "),
  ];
  if (stats.duplicated + stats.reordered > 0) {
    lines.push(`${stats.duplicated} duplicated, ${stats.reordered} reordered`);
  }
  if (stats.refused + stats.loops > 0) {
    lines.push(`of the ignored: ${stats.refused} refused sources, ${stats.loops} loops`);
  }
  return lines;
}
