/**
 * The client's command line: its flags, which mode each applies to (a flag
 * given to a mode it does not apply to is refused, never ignored), the
 * usage text generated from that table, the targets (one `[host] [port]`
 * or several `host:port`, like fping), and the parsed command.
 *
 * @module
 */

import {
  DEFAULT_RATE,
  FLOOD_GAP_MS,
  MAX_UDP_PAYLOAD_V4,
  MAX_UDP_PAYLOAD_V6,
  settings,
} from "../../settings.ts";
import { type Flag, parseCommandLine, usage } from "../shared/cli.ts";
import { durationFlag, numberFlag, type NumberOption } from "../shared/checks.ts";
import type { ChatOptions } from "./chat.ts";
import type { BeaconOptions } from "./beacon.ts";
import { formatAddress, parsePort, unbracket } from "../shared/net.ts";
import { PING_RULES, type PingOptions, withDefaults } from "./ping_options.ts";
import type { Output } from "./run_ping.ts";
import type { TimestampFormat } from "./report.ts";
import { kernelStampsAvailable } from "../ffi/stamped_socket.ts";

/** The client's modes. */
export type Mode = "ping" | "many" | "chat" | "send";

const PING: Mode[] = ["ping", "many"];
const ONE: Mode[] = ["ping", "chat", "send"];
const ALL: Mode[] = ["ping", "many", "chat", "send"];

/** A flag with the modes it applies to. */
type ClientFlag = Flag & { modes: Mode[] };

/** Every flag of client.ts, with its help line and modes. */
export const FLAGS = {
  count: {
    type: "string",
    short: "c",
    arg: "N",
    modes: ["ping", "many", "send"],
    help:
      `requests to send (default ${settings.count}; --send: until Ctrl-C; with -w and no -c: until the deadline)`,
  },
  interval: {
    type: "string",
    short: "i",
    arg: "S",
    modes: ["ping", "many", "send"],
    help:
      `seconds between requests, fractions allowed, or with a unit: 200ms, 5s, 1m (default ${settings.interval})`,
  },
  timeout: {
    type: "string",
    short: "W",
    arg: "S",
    modes: ["ping", "many", "chat"],
    help: `seconds (or 200ms, 5s, 1m) to wait for each reply (default ${settings.timeout})`,
  },
  size: {
    type: "string",
    short: "s",
    arg: "N",
    modes: PING,
    help:
      `bytes per request, sent exactly: from the record's length (33 for -c 9) to ${MAX_UDP_PAYLOAD_V4} (IPv4) or ${MAX_UDP_PAYLOAD_V6} (IPv6) (default ${settings.size})`,
  },
  deadline: {
    type: "string",
    short: "w",
    arg: "S",
    modes: ["ping", "many", "send"],
    help: "stop after S seconds (or 500ms, 1m, ...), whatever is outstanding",
  },
  flood: {
    type: "boolean",
    short: "f",
    modes: ["ping"],
    help:
      `send as soon as each reply is in (at least every ${FLOOD_GAP_MS} ms), a dot per request erased per reply, like ping -f; a udping server answers one client ${DEFAULT_RATE} times a second by default (--rate)`,
  },
  quiet: {
    type: "boolean",
    short: "q",
    modes: [...PING, "send"],
    help: "print only the first line and the summary, as ping -q (--send: nothing per datagram)",
  },
  timestamp: {
    type: "boolean",
    short: "D",
    modes: PING,
    help: "print the time before each reply or loss line, as ping -D: [seconds.µs since 1970]",
  },
  "timestamp-format": {
    type: "string",
    arg: "F",
    modes: PING,
    help: "-D's format: unix (ping's, the default) or iso (ISO 8601, local time with its offset)",
  },
  ipv4: {
    type: "boolean",
    short: "4",
    modes: ALL,
    help: "use IPv4 only: resolve host names to IPv4 addresses",
  },
  ipv6: {
    type: "boolean",
    short: "6",
    modes: ALL,
    help: "use IPv6 only: resolve host names to IPv6 addresses",
  },
  port: {
    type: "string",
    arg: "PORT",
    modes: ONE,
    help: `the server's port, as the second argument gives it (default ${settings.port})`,
  },
  verbose: {
    type: "boolean",
    short: "v",
    modes: PING,
    help: "print each reply's text (escaped) under its line, like the textbook client",
  },
  json: {
    type: "boolean",
    modes: PING,
    help: "print one JSON document at the end (per-request records unless -q)",
  },
  "json-lines": {
    type: "boolean",
    modes: PING,
    help: "print one JSON object per event as it happens, the summary last",
  },
  svg: {
    type: "string",
    arg: "FILE",
    modes: ["ping"],
    help: "also write the run as an SVG chart to FILE (for a lab report)",
  },
  "no-color": {
    type: "boolean",
    modes: ALL,
    help: "no colour and no RTT picture, even on a terminal (so does NO_COLOR)",
  },
  chat: {
    type: "boolean",
    modes: ["chat"],
    help: "send each line of standard input, print each reply; an empty line sends nothing",
  },
  retries: {
    type: "string",
    arg: "N",
    modes: ["chat"],
    help: "with --chat: resend a line N times if no reply came (default 0)",
  },
  send: {
    type: "string",
    arg: "TEXT",
    modes: ["send"],
    help:
      "send TEXT every interval until Ctrl-C or -c/-w; {now} and {seq} expand; --send '' sends udping heartbeats (server.ts --heartbeat)",
  },
  utc: {
    type: "boolean",
    modes: ["send"],
    help: "with --send: {now} in UTC (default: local time with its offset)",
  },
  help: { type: "boolean", short: "h", modes: ALL, help: "print this help" },
  version: { type: "boolean", short: "V", modes: ALL, help: "print the version" },
} as const satisfies Record<string, ClientFlag>;

/** The usage text. */
export const USAGE = `udping client: ping a UDP echo service.

Usage:
  deno run --allow-net client.ts [host] [port] [options]
  deno run --allow-net client.ts host:port host:port ... [options]
  deno run --allow-net --allow-ffi client.ts ...   (Linux: kernel timestamps, port unreachable)

Arguments:
  host               the server (default ${settings.host}); a name, IPv4 or IPv6 literal (fe80::1%eth0)
  port               the server's port, 1-65535 (default ${settings.port})
  host:port ...      several targets at once, like fping ([v6]:port for IPv6)

Options:
${usage(FLAGS)}

Exit status: 0 a reply arrived (chat: every line answered), 1 no reply
(or, with -c and -w, fewer than -c by the deadline; chat: a line unanswered or not sent),
2 an error, 130 chat ended by Ctrl-C, 141 standard output closed early (| head), as ping.`;

/** A host and port to ping. */
export interface Target {
  /** Host name or IP literal. */
  host: string;
  /** Port, 1-65535. */
  port: number;
  /** The host's address, once resolved. */
  address?: string;
}

/** `host:port`, `[v6]:port`: one positional that names a whole target. */
const TARGET = /^(\[[^\]]+\]|[^:\s]+):(\d+)$/;

/**
 * Reads the positional arguments: `[host] [port]` (one target, defaults
 * from settings.ts) or one or more `host:port` (`[v6]:port`) targets.
 * `portFlag` is the port given by flag (`--port`, named as typed by
 * `portFlagName`), which stands in for a positional port.
 *
 * @example
 * ```ts
 * import { parseTargets } from "./client_cli.ts";
 * import { deepStrictEqual, throws } from "node:assert/strict";
 * deepStrictEqual(parseTargets(["a:1", "[::1]:2"]), [{ host: "a", port: 1 }, { host: "::1", port: 2 }]);
 * deepStrictEqual(parseTargets(["a"], "7"), [{ host: "a", port: 7 }]);
 * throws(() => parseTargets(["12000", "127.0.0.1"]), /host and port look swapped/);
 * ```
 */
export function parseTargets(
  positionals: string[],
  portFlag?: string,
  portFlagName = "--port",
): Target[] {
  const [first, second] = positionals;
  const flagged = portFlag === undefined ? undefined : parsePort(portFlag, { label: portFlagName });
  if (first === undefined) return [{ host: settings.host, port: flagged ?? settings.port }];
  if (!TARGET.test(first)) {
    if (positionals.length > 2) {
      throw new TypeError(`unexpected argument '${positionals[2]}' (see --help)`);
    }
    if (second !== undefined && flagged !== undefined) {
      throw new TypeError(`give the port once: '${second}' or ${portFlagName}`);
    }
    if (ALL_DIGITS.test(first) && (second === undefined || !ALL_DIGITS.test(second))) {
      throw new TypeError(
        second === undefined
          ? `'${first}' looks like a port: give the host first (client.ts HOST ${first})`
          : `host and port look swapped: write client.ts ${second} ${first}`,
      );
    }
    const port = second === undefined ? flagged ?? settings.port : parsePort(second);
    return [{ host: first, port }];
  }
  // Several targets each carry their port: the command line refuses
  // --port there as a flag of another mode.
  if (flagged !== undefined && positionals.length === 1) {
    throw new TypeError(`give the port once: in '${first}' or with ${portFlagName}`);
  }
  return positionals.map((text) => {
    const match = TARGET.exec(text);
    if (match === null) throw new TypeError(`'${text}' is not a target: write host:port`);
    return { host: unbracket(match[1]!), port: parsePort(match[2]!) };
  });
}

const ALL_DIGITS = /^\d+$/;

/** A parsed command line: what to run, on which targets (`-4`/`-6`: of
 * that family only), with each flag as typed for later messages. */
export type Command =
  | { mode: "help" }
  | { mode: "version" }
  | RunCommand;

/** A command that sends: every mode but help and version. */
export type RunCommand =
  | Run<{ mode: "ping"; ping: PingOptions; output: Output }>
  | Run<{ mode: "many"; ping: PingOptions; output: Output }>
  | Run<{ mode: "chat"; chat: ChatOptions }>
  | Run<{ mode: "send"; beacon: BeaconOptions; quiet: boolean }>;

/** A mode's command with its targets, as given. */
type Run<T> = T & { targets: Target[]; family?: 4 | 6; typed: Typed };

/** Each flag given, as typed (`--count` or `-c`). */
export type Typed = Partial<Record<keyof typeof FLAGS, string>>;

/**
 * Parses the client's arguments. A `TypeError` or `RangeError` says what is
 * wrong in one line, naming each flag as typed, before anything is sent or
 * printed. Addresses are resolved later, before the first send (see
 * preflight.ts).
 *
 * @example
 * ```ts
 * import { parseClientCommand } from "./client_cli.ts";
 * import { equal, throws } from "node:assert/strict";
 * equal(parseClientCommand(["127.0.0.1", "-c", "3"]).mode, "ping");
 * throws(() => parseClientCommand(["--send", "hi", "--json"]), /--json does not apply to --send/);
 * throws(() => parseClientCommand(["--count", "0"]), /^RangeError: --count must be/);
 * ```
 */
export function parseClientCommand(args: string[]): Command {
  const { values, positionals, typed } = parseCommandLine(args, FLAGS);
  if (values.help) return { mode: "help" };
  if (values.version) return { mode: "version" };
  refuseTogether(values, typed);
  const targets = parseTargets(positionals, values.port, typed.port);
  const mode: Mode = values.chat
    ? "chat"
    : values.send !== undefined
    ? "send"
    : targets.length > 1
    ? "many"
    : "ping";
  refuseFlagsOutside(mode, values, typed);
  refuseValues(values, typed);
  if ((mode === "chat" || mode === "send") && targets.length > 1) {
    throw new TypeError(
      `${MODE_NAMES[mode]} talks to one server: unexpected argument '${positionals[1]}'`,
    );
  }
  const label = (name: keyof typeof PING_RULES) => ({
    flag: typed[name] ?? PING_RULES[name].flag,
    rule: PING_RULES[name].rule,
  });
  const family = values.ipv4 ? 4 : values.ipv6 ? 6 : undefined;
  const common = { targets, family, typed } as const;
  const [{ host, port }] = targets as [Target];
  const numbers = {
    count: numberFlag(values.count, label("count")),
    interval: intervalFlag(values.interval, label("interval")),
    timeout: durationFlag(values.timeout, label("timeout")),
    deadline: durationFlag(values.deadline, label("deadline")),
  };
  if (mode === "chat") {
    const retries = numberFlag(values.retries, label("retries"));
    return { mode, ...common, chat: { host, port, ...numbers, retries } };
  }
  if (mode === "send") {
    const text = values.send || undefined;
    return {
      mode,
      ...common,
      beacon: { host, port, ...numbers, text, utc: values.utc },
      quiet: values.quiet ?? false,
    };
  }
  const ping: PingOptions = {
    host,
    port,
    ...numbers,
    size: numberFlag(values.size, label("size")),
    flood: values.flood ?? false,
    verbose: values.verbose,
    kernelStamps: kernelStampsAvailable(),
  };
  return { mode, ...common, ping, output: outputOf(values, targets, ping) };
}

const MODE_NAMES: Record<Mode, string> = {
  ping: "ping mode",
  many: "several targets",
  chat: "--chat",
  send: "--send",
};

/** `-i`, with a hint at `-f` below the shortest interval (ping reads 0
 * as "as fast as you can"). */
function intervalFlag(text: string | undefined, option: NumberOption): number | undefined {
  try {
    return durationFlag(text, option);
  } catch (error) {
    let seconds = NaN;
    try {
      seconds = durationFlag(text, { flag: option.flag, rule: {} }) ?? NaN;
    } catch {
      // Not a duration at all: no hint.
    }
    if (error instanceof RangeError && seconds < option.rule.min!) {
      throw new RangeError(`${error.message} (-f sends as fast as replies come)`);
    }
    throw error;
  }
}

/** Refuses, with one line, flags that cannot go together or that one of
 * them would silently ignore. */
function refuseTogether(values: Values, typed: Typed): void {
  const one = (a: string, b: string) => `choose one of ${a} and ${b}`;
  const lines = (json: string, flag: string) => `${flag} adds to text lines; ${json} has none`;
  const pairs: [keyof typeof FLAGS, keyof typeof FLAGS, (a: string, b: string) => string][] = [
    ["chat", "send", one],
    ["json", "json-lines", one],
    ["ipv4", "ipv6", one],
    ["flood", "interval", (f, i) => `${f} sends as fast as replies come: drop ${i}`],
    ["json", "verbose", lines],
    ["json", "timestamp", lines],
    ["json", "timestamp-format", lines],
    ["json-lines", "timestamp", lines],
    ["json-lines", "timestamp-format", lines],
  ];
  for (const [first, second, message] of pairs) {
    if (values[first] !== undefined && values[second] !== undefined) {
      throw new TypeError(message(typed[first]!, typed[second]!));
    }
  }
}

/** Refuses, with one line, a flag's value that the flag's modes cannot
 * use. */
function refuseValues(values: Values, typed: Typed): void {
  const format = values["timestamp-format"];
  if (format !== undefined && !TIMESTAMP_FORMATS.includes(format as TimestampFormat)) {
    throw new TypeError(
      `${typed["timestamp-format"]} must be ${TIMESTAMP_FORMATS.join(" or ")}, got '${format}'`,
    );
  }
  if (values.utc && values.send === "") {
    throw new TypeError(`${typed.utc} applies to {now} in a text; --send '' sends no text`);
  }
}

/** `-D`'s formats. */
const TIMESTAMP_FORMATS: readonly TimestampFormat[] = ["unix", "iso"];

/** The parsed flags. */
type Values = ReturnType<typeof parseCommandLine<typeof FLAGS>>["values"];

/** Refuses, with one line, a flag given to a mode it does not apply to. */
function refuseFlagsOutside(mode: Mode, values: Values, typed: Typed): void {
  for (const [name, value] of Object.entries(values)) {
    const flag = FLAGS[name as keyof typeof FLAGS];
    if (value !== undefined && !(flag.modes as readonly Mode[]).includes(mode)) {
      throw new TypeError(
        `${typed[name as keyof typeof FLAGS]} does not apply to ${
          MODE_NAMES[mode]
        } (see the mode table in docs/client.md)`,
      );
    }
  }
}

/** How a ping run (or several) is printed, from the flags. The address
 * in the header is the host's until it is resolved. */
function outputOf(values: Values, targets: Target[], ping: PingOptions): Output {
  const { host = settings.host, port = settings.port } = ping;
  const options = withDefaults(ping);
  const format = values["timestamp-format"] as TimestampFormat | undefined;
  return {
    format: values.json ? "json" : values["json-lines"] ? "json-lines" : "text",
    quiet: values.quiet ?? false,
    flood: options.flood,
    // Deno.noColor reflects NO_COLOR without needing --allow-env.
    color: Deno.stdout.isTerminal() && !Deno.noColor && !values["no-color"],
    svg: values.svg,
    host: unbracket(host),
    address: unbracket(host),
    port,
    targets: targets.map((each) => formatAddress(each.host, each.port)),
    size: options.size,
    kernel: ping.kernelStamps ?? false,
    timestamps: values.timestamp || format ? format ?? "unix" : undefined,
    options,
  };
}
