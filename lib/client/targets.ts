/**
 * Several targets at once, like fping: reading `host:port` arguments, and
 * merging the runs' events into one stream as they happen.
 *
 * @module
 */

import { settings } from "../../settings.ts";
import type { PingEvent } from "./events.ts";
import { parsePort, unbracket } from "../shared/net.ts";

/** A host and port to ping. */
export interface Target {
  /** Host name or IP literal. */
  host: string;
  /** Port, 1-65535. */
  port: number;
  /** The host's address, once resolved. */
  address?: string;
}

/** An event of one of several runs, with the target it belongs to. */
export interface TargetEvent {
  /** The target as given, `host:port`. */
  target: string;
  /** What happened, as `ping()` yields it. */
  event: PingEvent;
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
 * import { parseTargets } from "./targets.ts";
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

/**
 * Runs several event streams at once and yields their events as they come,
 * each with its target. The first error ends the merge and is thrown.
 *
 * @example
 * ```ts
 * import { mergeRuns } from "./targets.ts";
 * import { equal } from "node:assert/strict";
 * async function* one() { yield { type: "timeout" as const, seq: 1 }; }
 * let seen = 0;
 * for await (const _ of mergeRuns([{ target: "a:1", events: one() }, { target: "b:2", events: one() }])) seen++;
 * equal(seen, 2);
 * ```
 */
export async function* mergeRuns(
  runs: { target: string; events: AsyncIterable<PingEvent> }[],
): AsyncGenerator<TargetEvent> {
  const queue: TargetEvent[] = [];
  let wake: (() => void) | undefined;
  let failure: unknown;
  let running = runs.length;
  const drained = runs.map(async ({ target, events }) => {
    try {
      for await (const event of events) {
        queue.push({ target, event });
        wake?.();
      }
    } catch (error) {
      failure ??= error;
    } finally {
      running--;
      wake?.();
    }
  });
  while (running > 0 || queue.length > 0) {
    if (queue.length === 0) await new Promise<void>((resolve) => wake = resolve);
    wake = undefined;
    while (queue.length > 0) yield queue.shift()!;
    if (failure !== undefined) break;
  }
  await Promise.all(drained);
  if (failure !== undefined) throw failure;
}
