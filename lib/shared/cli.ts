/**
 * Command-line plumbing for both scripts: strict flag parsing with one-line
 * errors, usage text generated from the flag table, the permission prompt,
 * and the exit-code contract. Numbers are checked against their limits in
 * checks.ts; what the scripts print goes through output.ts.
 *
 * Exit codes, as ping's: 0 success, 1 no reply (client only), 2 an error
 * (bad arguments, unknown host, a socket that cannot be opened).
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionDescriptor } from "node:util";
import config from "../../deno.json" with { type: "json" };
import { describeError } from "./net.ts";
import { EXIT_BROKEN_PIPE, EXIT_ERROR, isClosedOutput } from "./output.ts";

/** udping's version, from deno.json. */
export const VERSION: string = config.version;

/** A flag as `parseArgs` takes it, with what the usage text says of it. */
export type Flag = ParseArgsOptionDescriptor & {
  /** The value's name in the usage text (`-c, --count N`). */
  arg?: string;
  /** One line (wrapped as needed) of help. */
  help: string;
};

/** Every flag of a script, by long name. */
export type FlagTable = Record<string, Flag>;

/**
 * Parses `args` strictly against `flags`, keeping `parseArgs`' inferred
 * types; every mistake becomes a `TypeError` with one readable line.
 * `typed` gives each flag as the user wrote it (`--count` or `-c`), so that
 * a message names the flag as typed.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "./cli.ts";
 * import { equal } from "node:assert/strict";
 * const flags = { count: { type: "string", short: "c", help: "requests" } } as const;
 * const { values, typed } = parseCommandLine(["--count", "3"], flags);
 * equal(values.count, "3");
 * equal(typed.count, "--count");
 * ```
 */
export function parseCommandLine<const Flags extends FlagTable>(args: string[], flags: Flags) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: flags,
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
  } catch (error) {
    throw new TypeError(explainParseError(error, args));
  }
  const { values, positionals, tokens } = parsed;
  const typed: Partial<Record<keyof Flags & string, string>> = {};
  for (const token of tokens) {
    if (token.kind === "option") typed[token.name as keyof Flags & string] = token.rawName;
  }
  return { values, positionals, typed };
}

function explainParseError(error: unknown, args: string[]): string {
  const message = describeError(error);
  const option = /'(-{1,2}[^', ]+)/.exec(message)?.[1] ?? "";
  const code = (error as { code?: string }).code;
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown option '${option}' (see --help)`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    const next = args[args.indexOf(option) + 1];
    if (/ambiguous/.test(message) && next !== undefined) {
      return `option '${option}' needs a value, got '${next}'`;
    }
    if (/argument missing/.test(message)) return `option '${option}' needs a value`;
    return `option '${option}' takes no value`;
  }
  return message.split("\n")[0] ?? message;
}

/** The help lines of a flag table, aligned, wrapped at 100 columns. */
export function usage(flags: FlagTable): string {
  const names = Object.entries(flags).map(([name, flag]) =>
    `${flag.short ? `-${flag.short}, ` : ""}--${name}${flag.arg ? ` ${flag.arg}` : ""}`
  );
  const width = Math.max(...names.map((name) => name.length)) + 2;
  return Object.values(flags).map((flag, i) => {
    const lines: string[] = [];
    let line = "";
    for (const word of flag.help.split(" ")) {
      if (line && width + 2 + line.length + word.length > 100) lines.push(line), line = "";
      line += line ? ` ${word}` : word;
    }
    lines.push(line);
    return lines.map((text, j) => `  ${(j === 0 ? names[i]! : "").padEnd(width)}${text}`).join(
      "\n",
    );
  }).join("\n");
}

/**
 * Makes sure a permission is granted before anything is sent: asks for it
 * (a prompt on a terminal) unless it is granted already, and throws a
 * `Deno.errors.PermissionDenied` saying `denied` when it is refused or
 * cannot be asked (no terminal). Asking before the first send keeps a
 * prompt's wait out of every measured round trip.
 */
export async function ensurePermission(
  descriptor: Deno.PermissionDescriptor,
  denied: string,
): Promise<void> {
  if ((await Deno.permissions.query(descriptor)).state === "granted") return;
  if ((await Deno.permissions.request(descriptor)).state === "granted") return;
  throw new Deno.errors.PermissionDenied(denied);
}

/**
 * Runs a CLI's main function and exits with its status. Anything thrown is
 * reported as one line on stderr (never a stack trace) with exit status 2;
 * a closed standard output ends the program quietly with
 * {@linkcode EXIT_BROKEN_PIPE}.
 */
export async function runMain(program: string, main: () => Promise<number>): Promise<never> {
  let status: number;
  try {
    status = await main();
  } catch (error) {
    if (isClosedOutput(error)) Deno.exit(EXIT_BROKEN_PIPE);
    console.error(`${program}: ${describeError(error)}`);
    status = EXIT_ERROR;
  }
  Deno.exit(status);
}
