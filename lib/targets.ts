/**
 * Several targets at once, like fping: reading `host:port` arguments, and
 * merging the runs' events into one stream as they happen.
 *
 * @module
 */

import { settings } from "../settings.ts";
import type { PingEvent } from "./events.ts";
import { parsePort, unbracket } from "./net.ts";

/** A host and port to ping. */
export interface Target {
  /** Host name or IP literal. */
  host: string;
  /** Port, 1-65535. */
  port: number;
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
 *
 * @example
 * ```ts
 * import { parseTargets } from "./targets.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * deepStrictEqual(parseTargets(["a:1", "[::1]:2"]), [{ host: "a", port: 1 }, { host: "::1", port: 2 }]);
 * ```
 */
export function parseTargets(positionals: string[]): Target[] {
  const [first, second] = positionals;
  if (first === undefined) return [{ host: settings.host, port: settings.port }];
  if (!TARGET.test(first)) {
    if (positionals.length > 2) {
      throw new TypeError(`unexpected argument '${positionals[2]}' (see --help)`);
    }
    return [{ host: first, port: second === undefined ? settings.port : parsePort(second) }];
  }
  return positionals.map((text) => {
    const match = TARGET.exec(text);
    if (match === null) throw new TypeError(`'${text}' is not a target: write host:port`);
    return { host: unbracket(match[1]!), port: parsePort(match[2]!) };
  });
}

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
