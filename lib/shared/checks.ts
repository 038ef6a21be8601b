/**
 * Numbers checked against their limits: an option's value (`checkNumber`),
 * a flag's text (`numberFlag`) and a duration's (`durationFlag`, with
 * units). Every failure is a `RangeError` whose one line names the flag or
 * option, the limits and the value given. Library code checks its options
 * here, never through the command line's module.
 *
 * @module
 */

/** The limits of a number. */
export interface NumberRule {
  min?: number;
  max?: number;
  /** The value must be above `min`, not equal to it. */
  aboveMin?: boolean;
  integer?: boolean;
  /** The unit of a duration (`s`): the limits are said in it. */
  unit?: string;
}

/** A numeric option: its flag (for messages) and its limits. */
export interface NumberOption {
  flag: string;
  rule: NumberRule;
}

/**
 * Checks a number against a rule, throwing a `RangeError` that names
 * `label` (a flag or an option), the rule and the value.
 *
 * @example
 * ```ts
 * import { checkNumber } from "./checks.ts";
 * import { throws } from "node:assert/strict";
 * throws(() => checkNumber("loss", 2, { min: 0, max: 1 }), /loss must be a number from 0 to 1, got '2'/);
 * ```
 */
export function checkNumber(label: string, value: number, rule: NumberRule, text?: string): number {
  const tooLow = rule.min !== undefined && (rule.aboveMin ? value <= rule.min : value < rule.min);
  const tooHigh = rule.max !== undefined && value > rule.max;
  if (!Number.isFinite(value) || tooLow || tooHigh || (rule.integer && !Number.isInteger(value))) {
    throw new RangeError(`${label} must be ${describeRule(rule)}, got '${text ?? value}'`);
  }
  return value;
}

function describeRule(rule: NumberRule): string {
  const kind = rule.unit ? "a duration" : rule.integer ? "a whole number" : "a number";
  const unit = rule.unit ? ` ${rule.unit}` : "";
  const min = rule.min === undefined ? undefined : `${rule.min}${unit}`;
  const max = rule.max === undefined ? undefined : `${rule.max}${unit}`;
  if (min !== undefined && max !== undefined) {
    return rule.aboveMin
      ? `${kind} above ${min} and at most ${max}`
      : `${kind} from ${min} to ${max}`;
  }
  if (min !== undefined) return `${kind} ${rule.aboveMin ? "above" : "of at least"} ${min}`;
  if (max !== undefined) return `${kind} of at most ${max}`;
  return kind;
}

/** A decimal number, the whole text. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * A flag's text as a checked number (`undefined` when the flag was not
 * given): the text must be entirely a decimal number within the option's
 * limits, or a `RangeError` names the flag, the limits and the text.
 *
 * @example
 * ```ts
 * import { numberFlag } from "./checks.ts";
 * import { equal } from "node:assert/strict";
 * equal(numberFlag("0.2", { flag: "-i", rule: { min: 0, aboveMin: true } }), 0.2);
 * ```
 */
export function numberFlag(text: string | undefined, option: NumberOption): number | undefined {
  if (text === undefined) return undefined;
  const value = DECIMAL.test(text.trim()) ? Number(text) : NaN;
  refuseRoundedToZero(option.flag, option.rule, text, value);
  return checkNumber(option.flag, value, option.rule, text);
}

/** Refuses a text that is not 0 but whose value is (`1e-400`): 0 may
 * mean something else entirely, as `--rate 0` turns the limit off. */
function refuseRoundedToZero(label: string, rule: NumberRule, text: string, value: number): void {
  if (value === 0 && /[1-9]/.test(text.trim().split(/e/i)[0]!)) {
    throw new RangeError(`${label} must be ${describeRule(rule)}, got '${text}' (it rounds to 0)`);
  }
}

/** Seconds per unit of a duration flag. */
const SECONDS_PER: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

/**
 * A duration flag's text in seconds (`undefined` when not given): a bare
 * number is seconds, as ping's; `200ms`, `5s`, `1m` and `2h` carry a unit.
 * Out of the option's limits (in seconds), a `RangeError` names the flag.
 *
 * @example
 * ```ts
 * import { durationFlag } from "./checks.ts";
 * import { equal } from "node:assert/strict";
 * const option = { flag: "-i", rule: { min: 0, aboveMin: true } };
 * equal(durationFlag("200ms", option), 0.2);
 * equal(durationFlag("1m", option), 60);
 * equal(durationFlag("2", option), 2);
 * ```
 */
export function durationFlag(text: string | undefined, option: NumberOption): number | undefined {
  if (text === undefined) return undefined;
  const [, number = "", unit = "s"] = /^(.*?)(ms|s|m|h)?$/.exec(text.trim()) ?? [];
  const seconds = DECIMAL.test(number) ? Number(number) * SECONDS_PER[unit]! : NaN;
  const rule = { ...option.rule, unit: "s" };
  if (Number.isNaN(seconds)) {
    throw new RangeError(
      `${option.flag} must be ${describeRule(rule)}, got '${text}' (seconds, or 200ms, 5s, 1m)`,
    );
  }
  refuseRoundedToZero(option.flag, rule, text, seconds);
  return checkNumber(option.flag, seconds, rule, text);
}
