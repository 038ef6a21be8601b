/**
 * Command-line plumbing shared by server.ts and client.ts: flag parsing with
 * one-line errors, number checks, and the exit-code contract.
 *
 * Exit codes, as ping's: 0 success, 1 no reply (client only), 2 an error
 * (bad arguments, unknown host, a socket that cannot be opened).
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import config from "../deno.json" with { type: "json" };
import { describeError, UsageError } from "./net.ts";

/** udping's version, from deno.json. */
export const VERSION: string = config.version;

/** Exit status for errors, as ping's. */
export const EXIT_ERROR = 2;

/** The parsed flags and positional arguments. */
export interface CommandLine {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/**
 * Parses `args` strictly against `options`; every mistake becomes a
 * {@linkcode UsageError} with one readable line.
 */
export function parseCommandLine(args: string[], options: ParseArgsOptionsConfig): CommandLine {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true });
    return { values: values as CommandLine["values"], positionals };
  } catch (error) {
    throw new UsageError(explainParseError(error, args));
  }
}

function explainParseError(error: unknown, args: string[]): string {
  const message = error instanceof Error ? error.message : String(error);
  const option = /'(-{1,2}[^', ]+)/.exec(message)?.[1] ?? "";
  const code = (error as { code?: string }).code;
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    return `unknown option '${option}' (see --help)`;
  }
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

/** Bounds for {@linkcode parseNumber}. */
export interface NumberRule {
  min?: number;
  max?: number;
  /** The value must be above `min`, not equal to it. */
  aboveMin?: boolean;
  integer?: boolean;
  /** `Infinity` is allowed (an option that can mean "no limit"). */
  unbounded?: boolean;
}

/**
 * Parses a numeric flag value, rejecting text that is not entirely a finite
 * decimal number and values outside the rule, with a line that names the
 * flag, the rule and the offending value.
 */
export function parseNumber(flag: string, text: string, rule: NumberRule): number {
  const numeric = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text.trim());
  return checkNumber(flag, numeric ? Number(text) : NaN, rule, text);
}

/**
 * Checks a number against a rule, throwing a {@linkcode UsageError} that
 * names `label` (a flag or an option), the rule and the value.
 */
export function checkNumber(label: string, value: number, rule: NumberRule, text?: string): number {
  const tooLow = rule.min !== undefined && (rule.aboveMin ? value <= rule.min : value < rule.min);
  const tooHigh = rule.max !== undefined && value > rule.max;
  const infinite = value === Infinity && rule.unbounded;
  const fractional = rule.integer && !Number.isInteger(value) && !infinite;
  if (!(Number.isFinite(value) || infinite) || tooLow || tooHigh || fractional) {
    throw new UsageError(`${label} must be ${describeRule(rule)}, got '${text ?? value}'`);
  }
  return value;
}

function describeRule(rule: NumberRule): string {
  const kind = rule.integer ? "a whole number" : "a number";
  const { min, max } = rule;
  if (min !== undefined && max !== undefined) return `${kind} from ${min} to ${max}`;
  if (min !== undefined) return `${kind} ${rule.aboveMin ? "above" : "of at least"} ${min}`;
  if (max !== undefined) return `${kind} of at most ${max}`;
  return kind;
}

/** A table of numeric options: each option's flag and limits. */
export type OptionRules = Record<string, { flag: string; rule: NumberRule }>;

/**
 * Reads every numeric flag named in `rules` from a command line: a number
 * for each flag given, `undefined` for each left out.
 */
export function numericFlags<Rules extends OptionRules>(
  line: CommandLine,
  rules: Rules,
): { [Name in keyof Rules]: number | undefined } {
  const values: Record<string, number | undefined> = {};
  for (const [name, { flag, rule }] of Object.entries(rules)) {
    const text = line.values[name];
    values[name] = typeof text === "string" ? parseNumber(flag, text, rule) : undefined;
  }
  return values as { [Name in keyof Rules]: number | undefined };
}

/**
 * Runs a CLI's main function and exits with its status. Anything thrown is
 * reported as one line on stderr (never a stack trace) with exit status 2.
 */
export async function runMain(program: string, main: () => Promise<number>): Promise<never> {
  let status: number;
  try {
    status = await main();
  } catch (error) {
    console.error(`${program}: ${describeError(error)}`);
    status = EXIT_ERROR;
  }
  Deno.exit(status);
}
