/**
 * Prints a ping run as the command line shows it: ping's lines and summary,
 * flood dots, the terminal picture, JSON, JSON lines, an SVG chart; and the
 * exit status, as ping's. Several targets' runs, like fping's, are merged
 * into one stream of events as they happen.
 *
 * @module
 */

import type { PingEvent, PingSummary } from "./events.ts";
import {
  colored,
  eventLine,
  floodMark,
  headerLine,
  jsonDocument,
  jsonLine,
  jsonText,
  pictureLines,
  PingRecords,
  plain,
  type RunOptions,
  summaryLines,
  targetSummaryLine,
  type TimestampFormat,
  timestampPrefix,
} from "./report.ts";
import { renderSvg } from "./svg.ts";
import { EXIT_ERROR, printLine, write } from "../shared/output.ts";

/** An event of one of several runs, with the target it belongs to. */
export interface TargetEvent {
  /** The target as given, `host:port`. */
  target: string;
  /** What happened, as `ping()` yields it. */
  event: PingEvent;
}

/** How a run is printed. */
export interface Output {
  format: "text" | "json" | "json-lines";
  /** Only the header and the summary (no picture either), as ping -q. */
  quiet: boolean;
  /** Dots, as ping -f. */
  flood: boolean;
  /** Colour and the RTT picture (a terminal only). */
  color: boolean;
  /** Write the run as an SVG chart to this file. */
  svg?: string;
  /** The header's host (as given), address (resolved) and port. */
  host: string;
  address: string;
  port: number;
  /** Several targets: each as given, `host:port`, in order. */
  targets?: string[];
  size: number;
  /** Kernel timestamps were asked for. */
  kernel: boolean;
  /** `-D`: the time before each event line. */
  timestamps?: TimestampFormat;
  /** The options, as `--json` reports them; `count` and `deadline` also
   * decide the exit status. */
  options: RunOptions;
}

/**
 * The exit status of a finished run, as ping's: 0 if a reply came (and,
 * with both `-c` and `-w`, all `-c` of them), 1 otherwise.
 *
 * @example
 * ```ts
 * import { exitStatus } from "./run_ping.ts";
 * import { equal } from "node:assert/strict";
 * equal(exitStatus({ received: 0 }), 1);
 * ```
 */
export function exitStatus(
  summary: Pick<PingSummary, "received">,
  count?: number | null,
  deadline?: number | null,
): number {
  const short = deadline != null && count != null && summary.received < count;
  return summary.received > 0 && !short ? 0 : 1;
}

/** Prints the events of one run as they come; returns the exit status.
 * Timed by the runtime's clock, the header goes out before the run starts
 * (written after the first send, it was timed in the first round trip);
 * with kernel stamps, at the first event, which may be the notice that
 * they could not be had. */
export async function printRun(events: AsyncIterable<PingEvent>, output: Output): Promise<number> {
  const { format, quiet } = output;
  const paint = output.color ? colored : plain;
  const records = (format === "json" && !quiet) || output.svg ? new PingRecords() : undefined;
  const header = headerLine(output.host, output.address, output.port, output.size);
  let started = false;
  if (format === "text" && !output.kernel) {
    printLine(header);
    started = true;
  }
  for await (const event of events) {
    if (!started && format === "text") {
      const kernel = event.type !== "notice";
      printLine(header + (kernel ? ", kernel timestamps" : ""));
    }
    started = true;
    if (event.type === "notice") {
      console.error(event.text);
      continue;
    }
    if (event.type === "summary") return await finish(event.summary, output, records);
    records?.add(event);
    if (format === "json-lines") printLine(jsonLine(event));
    if (format !== "text" || quiet) continue;
    if (output.flood) write(floodMark(event));
    else {
      const text = eventLine(event, paint);
      if (text !== undefined) printLine(stamped(output, text));
    }
  }
  return EXIT_ERROR;
}

async function finish(
  summary: PingSummary,
  output: Output,
  records?: PingRecords,
): Promise<number> {
  const { format, quiet } = output;
  if (format === "json") {
    printLine(jsonDocument(summary, output.options, quiet ? undefined : records?.list()));
  } else if (format === "json-lines") printLine(jsonLine({ type: "summary", summary }));
  else {
    if (output.flood && !quiet) write("\n");
    for (const text of summaryLines(summary)) printLine(text);
    if (output.color && !quiet) {
      for (const text of pictureLines(summary, colored)) printLine(text);
    }
  }
  if (output.svg && records) {
    const svg = renderSvg({
      target: summary.target,
      date: new Date(Date.now() - summary.time),
      pings: records.list(),
      summary,
    });
    await Deno.writeTextFile(output.svg, svg);
  }
  return exitStatus(summary, output.options.count, output.options.deadline);
}

/** Prints the events of several runs, fping-style; returns the exit
 * status (0 only if every target answered). */
export async function printMany(
  events: AsyncIterable<TargetEvent>,
  output: Output,
): Promise<number> {
  const paint = output.color ? colored : plain;
  const summaries = new Map<string, PingSummary>();
  let started = false;
  for await (const { target, event } of events) {
    if (!started && output.format === "text") {
      const kernel = output.kernel && event.type !== "notice" ? ", kernel timestamps" : "";
      printLine(`PING ${output.targets?.length} targets (udp): ${output.size} data bytes${kernel}`);
    }
    started = true;
    if (event.type === "notice") {
      console.error(`${target} : ${event.text}`);
      continue;
    }
    if (output.format === "json-lines") printLine(jsonText({ target, ...event }));
    if (event.type === "summary") summaries.set(target, event.summary);
    if (output.format !== "text" || output.quiet) continue;
    const text = eventLine(event, paint);
    if (text !== undefined) printLine(stamped(output, `${target} : ${text}`));
  }
  const ordered = [...summaries.values()].sort((a, b) => order(output, a) - order(output, b));
  if (output.format === "json") printLine(jsonText(ordered, 2));
  if (output.format === "text") {
    printLine();
    for (const summary of ordered) printLine(targetSummaryLine(summary));
  }
  const { count, deadline } = output.options;
  return ordered.every((summary) => exitStatus(summary, count, deadline) === 0) ? 0 : 1;
}

/** A line with `-D`'s time before it, when asked for. */
function stamped(output: Output, text: string): string {
  if (output.timestamps === undefined) return text;
  return timestampPrefix(performance.timeOrigin + performance.now(), output.timestamps) + text;
}

/** Where a summary's target stands in the order the targets were given. */
function order(output: Output, summary: PingSummary): number {
  return output.targets?.indexOf(summary.target) ?? 0;
}

/**
 * Runs several event streams at once and yields their events as they come,
 * each with its target. The first error ends the merge and is thrown.
 *
 * @example
 * ```ts
 * import { mergeRuns } from "./run_ping.ts";
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
