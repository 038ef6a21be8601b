/**
 * udping server: a UDP echo service with the classic lab's impairments.
 *
 * ```sh
 * deno run --allow-net server.ts                        # echo on 127.0.0.1:12000
 * deno run --allow-net server.ts --upper --loss 0.3     # the UDP Pinger lab
 * deno run --allow-net server.ts --host :: 12000        # every IPv6 and IPv4 interface
 * ```
 *
 * Read it top to bottom: the options, the loop (receive a datagram,
 * `decide()` what becomes of it, log that, `reply()` in the chosen mode,
 * send), the command line.
 *
 * @module
 */

import {
  DEFAULT_RATE,
  HEARTBEAT_CHECK_MS,
  MAX_DELAY_MS,
  MAX_PREFIX_BYTES,
  MAX_REORDER_HOLD_MS,
  settings,
} from "./settings.ts";
import { type FlagTable, parseCommandLine, runMain, usage, VERSION } from "./lib/shared/cli.ts";
import { numberFlag } from "./lib/shared/checks.ts";
import { FastSocket } from "./lib/ffi/fast_socket.ts";
import { describeNote, HeartbeatMonitor, heartbeatSummaryLines } from "./lib/server/heartbeat.ts";
import { escapeBytes, logger } from "./lib/shared/log.ts";
import { LogWriter } from "./lib/shared/output.ts";
import { readInterfaces } from "./lib/server/loop_guard.ts";
import { describeError, parsePort, resolveHost } from "./lib/shared/net.ts";
import { Outbox } from "./lib/server/outbox.ts";
import { reply, type ReplyMode } from "./lib/server/reply.ts";
import { RuntimeSocket, type ServerSocket } from "./lib/shared/socket.ts";
import { describe, newServerStats, Policy, type ServerStats } from "./lib/server/verdict.ts";
import { warmUpServer } from "./lib/server/warm_up.ts";
import {
  checkServeOptions,
  NUMERIC_OPTIONS,
  replyMode,
  SERVE_RULES,
  type ServeOptions,
  serverBanner,
  serverSummary,
} from "./lib/server/serve_options.ts";

export type { ReplyMode, ServeOptions, ServerStats };
export type { Impairments } from "./lib/server/verdict.ts";

/** A running server; `await using server = await serve()` closes it. */
export interface Server extends AsyncDisposable {
  /** The bound address; its port is the real one when port 0 was asked. */
  addr: Deno.NetAddr;
  /** Live counters. */
  stats: Readonly<ServerStats>;
  /** Heartbeat summary lines (`--heartbeat`), empty otherwise. */
  heartbeats(): string[];
  /** Stops receiving, abandons held replies and closes the socket. */
  close(): Promise<void>;
  /** Settles when the receive loop has ended. */
  finished: Promise<void>;
}

/**
 * Starts the server and returns once it is bound. One bad datagram or one
 * failed send never stops it.
 *
 * @example
 * ```ts
 * import { serve } from "./server.ts";
 * import { ok } from "node:assert/strict";
 * await using server = await serve({ port: 0, mode: "upper", loss: 0.3, seed: 1 });
 * ok(server.addr.port > 0);
 * ```
 */
export async function serve(options: ServeOptions = {}): Promise<Server> {
  checkServeOptions(options);
  const { address, family } = await resolveHost(options.host ?? settings.host);
  const mode = replyMode(options);
  const prefix = new TextEncoder().encode(mode === "prefix" ? options.prefix ?? "" : "");
  const port = options.port ?? settings.port;
  const socket: ServerSocket = options.fast
    ? FastSocket.open(address, family, port)
    : new RuntimeSocket(address, port);
  const stats = newServerStats();
  const interfaces = readInterfaces();
  const policyOptions = { ...options, mode, own: socket.addr, interfaces };
  const policy = new Policy(policyOptions, stats);
  const logLine = logger(options.log, options.utc);
  const outbox = new Outbox((data, to, report) => socket.send(data, to, report), {
    prefixLength: prefix.length,
    stats,
    clock: () => socket.clock(),
    sent: (data, to, at) => policy.sent(data, to, at),
    note: logLine,
  });
  const monitor = options.heartbeat ? new HeartbeatMonitor(options.heartbeat) : undefined;
  let closing = false;

  async function receiveLoop(): Promise<void> {
    while (!closing) {
      let arrival;
      try {
        arrival = await socket.receive();
      } catch (error) {
        logLine(undefined, `receive failed: ${describeError(error)}`);
        continue;
      }
      if (arrival === undefined) continue;
      const { length, from, at } = arrival;
      const request = socket.buffer.subarray(0, length);
      const verdict = policy.decide(request, from, at);
      const beat = verdict.kind === "ignored" ? verdict.heartbeat : undefined;
      if (monitor && beat) {
        monitor.beat(beat).forEach((note) => logLine(undefined, describeNote(note)));
      } else if (options.log) logLine(from, describe(verdict, length, `"${escapeBytes(request)}"`));
      if (verdict.kind === "reply") {
        const data = reply(mode, request, prefix);
        if (data) await outbox.send(data, from, verdict.fate, verdict.stamp);
      }
    }
  }

  await warmUpServer(socket, policyOptions, prefix, options.utc);
  const finished = receiveLoop();
  const watch = monitor && setInterval(() => {
    for (const note of monitor.check(socket.clock())) logLine(undefined, describeNote(note));
  }, HEARTBEAT_CHECK_MS);
  const close = async () => {
    if (!closing) {
      closing = true;
      clearInterval(watch);
      outbox.close();
      socket.close();
    }
    await finished;
  };
  return {
    addr: socket.addr,
    stats,
    heartbeats: () => monitor ? heartbeatSummaryLines(monitor.summary(), options.utc) : [],
    close,
    finished,
    [Symbol.asyncDispose]: close,
  };
}

/** The command line: each flag's value name and help line generate the usage text. */
const FLAGS = {
  host: {
    type: "string",
    arg: "HOST",
    help: `address to listen on (default ${settings.host}; 0.0.0.0 or :: for the network)`,
  },
  port: {
    type: "string",
    arg: "PORT",
    help: `port, 0-65535, 0 = any free one (default ${settings.port}); also positional`,
  },
  upper: { type: "boolean", help: "reply in ASCII uppercase (the classic UDP Pinger lab)" },
  prefix: {
    type: "string",
    arg: "TEXT",
    help: `reply with TEXT (at most ${MAX_PREFIX_BYTES} bytes) before the request`,
  },
  silent: { type: "boolean", help: "never reply, only log what arrives" },
  heartbeat: {
    type: "string",
    arg: "S",
    help:
      "heartbeat monitor: never reply; log each udping heartbeat's one-way delay and losses, and say when a source has been silent S seconds",
  },
  loss: { type: "string", arg: "P", help: "drop each request with probability P, 0-1 (default 0)" },
  delay: {
    type: "string",
    arg: "MS",
    help: `hold each reply back MS milliseconds, at most ${MAX_DELAY_MS} (default 0)`,
  },
  jitter: {
    type: "string",
    arg: "MS",
    help: "vary the delay uniformly by up to ±MS milliseconds, at most --delay (default 0)",
  },
  duplicate: {
    type: "string",
    arg: "P",
    help: "send each reply twice with probability P, 0-1 (default 0)",
  },
  reorder: {
    type: "string",
    arg: "P",
    help:
      `hold each reply back with probability P, 0-1, until a later reply has gone out (at most ${MAX_REORDER_HOLD_MS} ms)`,
  },
  seed: { type: "string", arg: "N", help: "repeatable impairments (default: random)" },
  rate: {
    type: "string",
    arg: "N",
    help:
      `replies per second per client (address and port), excess dropped (default ${DEFAULT_RATE}; 0 = no limit)`,
  },
  "allow-privileged": {
    type: "boolean",
    help:
      "answer source ports below 1024 too (refused by default: no client pings from a service port)",
  },
  fast: {
    type: "boolean",
    help:
      "2-3 times the replies/s under load (docs/performance.md) and kernel receive times, through the C library (Linux; run with --allow-net --allow-ffi); no impairments",
  },
  utc: { type: "boolean", help: "log times in UTC (default: local time with its offset)" },
  quiet: { type: "boolean", short: "q", help: "no log line per datagram" },
  help: { type: "boolean", short: "h", help: "print this help" },
  version: { type: "boolean", short: "V", help: "print the version" },
} as const satisfies FlagTable;

const USAGE = `udping server: a UDP echo service with lab impairments.

Usage:
  deno run --allow-net server.ts [port] [options]

Options:
${usage(FLAGS)}

Stops on Ctrl+C or SIGTERM with a summary, exit status 0.
Exit status 2: bad arguments, or the address cannot be bound.`;

/** Turns a command line into {@linkcode ServeOptions} and the CLI's own flags. */
function parseServeCommand(args: string[]) {
  const { values, positionals } = parseCommandLine(args, FLAGS);
  if (positionals.length > 1) {
    throw new TypeError(`unexpected argument '${positionals[1]}' (see --help)`);
  }
  if (values.port !== undefined && positionals.length > 0) {
    throw new TypeError(
      `give the port once, not both --port ${values.port} and '${positionals[0]}'`,
    );
  }
  const portText = values.port ?? positionals[0];
  const modes = [
    values.upper && "--upper",
    values.prefix !== undefined && "--prefix",
    values.silent && "--silent",
    values.heartbeat !== undefined && "--heartbeat",
  ].filter(Boolean);
  if (modes.length > 1) throw new TypeError(`choose one reply mode, not ${modes.join(" and ")}`);
  const options: ServeOptions = {
    host: values.host ?? settings.host,
    port: portText === undefined ? settings.port : parsePort(portText, { allowZero: true }),
    mode: values.upper
      ? "upper"
      : values.heartbeat !== undefined
      ? "heartbeat"
      : values.silent
      ? "silent"
      : values.prefix !== undefined
      ? "prefix"
      : "echo",
    prefix: values.prefix,
    allowPrivileged: values["allow-privileged"] ?? false,
    fast: values.fast ?? false,
    utc: values.utc ?? false,
  };
  for (const name of NUMERIC_OPTIONS) options[name] = numberFlag(values[name], SERVE_RULES[name]);
  return { options, quiet: values.quiet ?? false, help: values.help, version: values.version };
}

/**
 * The command line: serves until SIGINT or SIGTERM, then prints the summary
 * and returns 0. A second signal exits at once.
 *
 * @example
 * ```ts
 * import { main } from "./server.ts";
 * import { equal } from "node:assert/strict";
 * equal(await main(["--version"]), 0);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const { options, quiet, help, version } = parseServeCommand(args);
  // Everything the server prints goes through the log's writer: serving
  // never waits on the output (a slow one drops lines instead), and a
  // closed one takes no more lines while the server goes on.
  const log = new LogWriter(Deno.stdout, { utc: options.utc });
  if (help || version) {
    log.write(help ? USAGE : `udping server ${VERSION}`);
    await log.flush();
    return 0;
  }
  const server = await serve({ ...options, log: quiet ? undefined : (text) => log.write(text) });
  // Listen for signals before saying "listening": a supervisor (or a test)
  // may signal as soon as it reads that line.
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  let stopping = false;
  const stop = () => {
    if (stopping) Deno.exit(0);
    stopping = true;
    void server.close();
  };
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  const banner = serverBanner(options, server.addr);
  // Through the log's writer: its first write is then not in the first reply.
  log.write(banner.line);
  if (banner.notice) console.error(banner.notice);
  if (banner.notice && readInterfaces() === undefined) {
    console.error(
      "notice: without --allow-sys=networkInterfaces, the broadcast addresses of this machine's networks and its own addresses are not known, and not refused as sources",
    );
  }
  await server.finished;
  for (const signal of signals) Deno.removeSignalListener(signal, stop);
  // The log's last lines (and the note of any it dropped) first: then the
  // summary has the whole queue to itself.
  await log.flush();
  for (const text of [...serverSummary(server.addr, server.stats), ...server.heartbeats()]) {
    log.write(text);
  }
  await log.flush();
  return 0;
}

if (import.meta.main) await runMain("server.ts", () => main(Deno.args));
