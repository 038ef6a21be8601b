/**
 * The client's command line: its flags, which mode each applies to (a flag
 * given to a mode it does not apply to is refused, never ignored), the
 * usage text generated from that table, and the parsed command.
 *
 * @module
 */

import {
  DEFAULT_RATE,
  FLOOD_GAP_MS,
  MAX_UDP_PAYLOAD_V4,
  MAX_UDP_PAYLOAD_V6,
  settings,
} from "../settings.ts";
import { type Flag, numberFlag, parseCommandLine, usage } from "./cli.ts";
import type { ChatOptions } from "./chat.ts";
import type { BeaconOptions } from "./beacon.ts";
import { formatAddress, unbracket } from "./net.ts";
import { PING_RULES, type PingOptions } from "./ping_options.ts";
import type { Output } from "./run_ping.ts";
import { parseTargets, type Target } from "./targets.ts";
import { kernelStampsAvailable } from "./stamped_socket.ts";

/** The client's modes. */
export type Mode = "ping" | "many" | "chat" | "send";

const PING: Mode[] = ["ping", "many"];
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
    help: `seconds between requests, fractions allowed (default ${settings.interval})`,
  },
  timeout: {
    type: "string",
    short: "W",
    arg: "S",
    modes: ["ping", "many", "chat"],
    help: `seconds to wait for each reply (default ${settings.timeout})`,
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
    help: "stop after S seconds, whatever is outstanding",
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
    modes: PING,
    help: "print only the first line and the summary",
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
    modes: PING,
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
  host               the server (default ${settings.host}); a name, IPv4 or IPv6 literal
  port               the server's port, 1-65535 (default ${settings.port})
  host:port ...      several targets at once, like fping ([v6]:port for IPv6)

Options:
${usage(FLAGS)}

Exit status: 0 a reply arrived (chat: every line answered), 1 no reply
(or, with -c and -w, fewer than -c by the deadline; chat: a line unanswered or not sent),
2 an error, 130 chat ended by Ctrl-C, 141 standard output closed early (| head), as ping.`;

/** A parsed command line. */
export type Command =
  | { mode: "help" | "version" }
  | { mode: "ping"; ping: PingOptions; output: Output }
  | { mode: "many"; targets: Target[]; ping: PingOptions; output: Output }
  | { mode: "chat"; chat: ChatOptions }
  | { mode: "send"; beacon: BeaconOptions };

/**
 * Parses the client's arguments. A `TypeError` or `RangeError` says what is
 * wrong in one line, before anything is sent or printed.
 *
 * @example
 * ```ts
 * import { parseClientCommand } from "./client_cli.ts";
 * import { equal, throws } from "node:assert/strict";
 * equal(parseClientCommand(["127.0.0.1", "-c", "3"]).mode, "ping");
 * throws(() => parseClientCommand(["--send", "hi", "--json"]), /--json does not apply to --send/);
 * ```
 */
export function parseClientCommand(args: string[]): Command {
  const { values, positionals } = parseCommandLine(args, FLAGS);
  if (values.help) return { mode: "help" };
  if (values.version) return { mode: "version" };
  if (values.chat && values.send !== undefined) {
    throw new TypeError("choose one of --chat and --send");
  }
  if (values.json && values["json-lines"]) {
    throw new TypeError("choose one of --json and --json-lines");
  }
  const targets = parseTargets(positionals);
  const mode: Mode = values.chat
    ? "chat"
    : values.send !== undefined
    ? "send"
    : targets.length > 1
    ? "many"
    : "ping";
  refuseFlagsOutside(mode, values);
  if (
    values.svg !== undefined &&
    Deno.permissions.querySync({ name: "write", path: values.svg }).state !== "granted"
  ) {
    throw new TypeError(
      `--svg needs --allow-write (deno run --allow-net --allow-write client.ts ... --svg ${values.svg})`,
    );
  }
  const [{ host, port }] = targets as [Target];
  const numbers = {
    count: numberFlag(values.count, PING_RULES.count),
    interval: intervalFlag(values.interval),
    timeout: numberFlag(values.timeout, PING_RULES.timeout),
    deadline: numberFlag(values.deadline, PING_RULES.deadline),
  };
  if (mode === "chat") {
    return {
      mode,
      chat: { host, port, ...numbers, retries: numberFlag(values.retries, PING_RULES.retries) },
    };
  }
  if (mode === "send") {
    return {
      mode,
      beacon: { host, port, ...numbers, text: values.send || undefined, utc: values.utc },
    };
  }
  const flood = values.flood ?? false;
  const size = numberFlag(values.size, PING_RULES.size);
  const ping: PingOptions = {
    host,
    port,
    ...numbers,
    size,
    flood,
    verbose: values.verbose,
    kernelStamps: kernelStampsAvailable(),
  };
  const output = outputOf(values, targets, ping);
  return mode === "many" ? { mode, targets, ping, output } : { mode, ping, output };
}

const MODE_NAMES: Record<Mode, string> = {
  ping: "ping mode",
  many: "several targets",
  chat: "--chat",
  send: "--send",
};

/** `-i`, with a hint for 0 (which ping reads as "as fast as you can"). */
function intervalFlag(text: string | undefined): number | undefined {
  try {
    return numberFlag(text, PING_RULES.interval);
  } catch (error) {
    const zero = text !== undefined && Number(text) === 0;
    if (zero && error instanceof RangeError) {
      throw new RangeError(`${error.message} (-f sends as fast as replies come)`);
    }
    throw error;
  }
}

/** Refuses, with one line, a flag given to a mode it does not apply to. */
function refuseFlagsOutside(mode: Mode, values: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(values)) {
    const flag = FLAGS[name as keyof typeof FLAGS];
    if (value !== undefined && !(flag.modes as readonly Mode[]).includes(mode)) {
      const given = "short" in flag ? `-${flag.short}` : `--${name}`;
      throw new TypeError(
        `${given} does not apply to ${MODE_NAMES[mode]} (see the mode table in README)`,
      );
    }
  }
}

/** How a ping run (or several) is printed, from the flags. */
function outputOf(
  values: {
    json?: boolean;
    "json-lines"?: boolean;
    quiet?: boolean;
    "no-color"?: boolean;
    svg?: string;
  },
  targets: Target[],
  ping: PingOptions,
): Output {
  const { host = settings.host, port = settings.port, flood = false } = ping;
  const numbers = ping;
  const size = ping.size;
  return {
    format: values.json ? "json" : values["json-lines"] ? "json-lines" : "text",
    quiet: values.quiet ?? false,
    flood,
    // Deno.noColor reflects NO_COLOR without needing --allow-env.
    color: Deno.stdout.isTerminal() && !Deno.noColor && !values["no-color"],
    svg: values.svg,
    target: formatAddress(unbracket(host), port),
    targets: targets.map((each) => formatAddress(each.host, each.port)),
    size: size ?? settings.size,
    kernel: ping.kernelStamps ?? false,
    options: {
      count: numbers.count ?? (numbers.deadline === undefined ? settings.count : null),
      interval: flood ? 0 : numbers.interval ?? settings.interval,
      timeout: numbers.timeout ?? settings.timeout,
      size: size ?? settings.size,
      deadline: numbers.deadline ?? null,
      flood,
    },
  };
}
