/**
 * Standard output, for both scripts: what either prints goes through here,
 * and a closed output (`| head -1`) is told and handled in one place.
 *
 * - {@linkcode write} and {@linkcode printLine}, the client's: each line is
 *   written before the next request is sent, and a closed pipe throws
 *   `Deno.errors.BrokenPipe`, which `runMain()` turns into a quiet
 *   {@linkcode EXIT_BROKEN_PIPE}, as ping's status is.
 * - {@linkcode LogWriter}, the server's: lines are written in the
 *   background so that serving never waits on the output; a closed output
 *   takes no more lines, and the server goes on serving.
 *
 * @module
 */

import { LOG_FLUSH_MS, MAX_PENDING_LOG_CHARS } from "../../settings.ts";
import { logTime } from "./log.ts";

/** Exit status for errors, as ping's: bad arguments, an unknown host, a
 * socket that cannot be opened. */
export const EXIT_ERROR = 2;

/** Exit status when standard output was closed early (`| head -1`):
 * 128 + SIGPIPE, what ping's status is when the pipe kills it. */
export const EXIT_BROKEN_PIPE = 141;

/**
 * Whether `error` says the output was closed by its reader (`EPIPE`): not
 * a failure of the program, so it ends quietly (the client) or stops
 * writing (the server's log).
 *
 * @example
 * ```ts
 * import { isClosedOutput } from "./output.ts";
 * import { equal } from "node:assert/strict";
 * equal(isClosedOutput(new Deno.errors.BrokenPipe()), true);
 * equal(isClosedOutput(new RangeError("x")), false);
 * ```
 */
export function isClosedOutput(error: unknown): boolean {
  return error instanceof Deno.errors.BrokenPipe;
}

const encoder = new TextEncoder();

/** How many bytes a write took, or a `Deno.errors.WriteZero` when it took
 * none: every loop that writes a whole buffer ends. */
function taken(written: number): number {
  if (!(written > 0)) throw new Deno.errors.WriteZero("standard output took no bytes");
  return written;
}

/**
 * Writes `text` to standard output as it is (no newline added), before it
 * returns. Unlike `console.log`, a closed pipe (`| head -1`) throws
 * `Deno.errors.BrokenPipe`, so that the run stops at once.
 *
 * @example
 * ```ts
 * import { write } from "./output.ts";
 * import { doesNotThrow } from "node:assert/strict";
 * doesNotThrow(() => write(""));
 * ```
 */
export function write(text: string): void {
  const bytes = encoder.encode(text);
  for (let at = 0; at < bytes.length;) at += taken(Deno.stdout.writeSync(bytes.subarray(at)));
}

/** {@linkcode write} with a newline. */
export function printLine(text = ""): void {
  write(`${text}\n`);
}

/** Where a {@linkcode LogWriter} writes: `Deno.stdout`, or anything with its `write`. */
export interface LogOutput {
  /** Writes some of `data` and says how many bytes. */
  write(data: Uint8Array): Promise<number>;
}

/**
 * Log lines written in the background, so that whoever logs never waits on
 * the output, and together: a line waits up to `flushMs` for others to
 * share its write (see `LOG_FLUSH_MS`). Lines queue up to `maxPending`
 * characters; while the output cannot keep up (a pipe nobody reads, a
 * paused terminal), the lines that do not fit are dropped and counted, as
 * a busy syslog does, and where room is back the log says so once, in
 * place of the missing lines:
 * `2026-11-26T04:09:23.523417+05:30 1200 log lines dropped (output not keeping up)`.
 * An output that fails (closed) takes no more lines.
 *
 * @example
 * ```ts
 * import { LogWriter } from "./output.ts";
 * import { equal, match } from "node:assert/strict";
 * let text = "";
 * const slow = { write: (data: Uint8Array) => Promise.resolve((text += new TextDecoder().decode(data), data.length)) };
 * const log = new LogWriter(slow, { utc: true, maxPending: 12 });
 * log.write("one");
 * log.write("two");
 * log.write("three, too long to fit"); // dropped
 * await log.flush();
 * const lines = text.split("\n");
 * equal(lines.slice(0, 2).join(" "), "one two");
 * match(lines[2]!, /Z 1 log line dropped \(output not keeping up\)$/);
 * ```
 */
export class LogWriter {
  readonly #output: LogOutput;
  readonly #utc: boolean;
  readonly #maxPending: number;
  #queue: string[] = [];
  /** Characters queued or being written. */
  #pending = 0;
  #dropped = 0;
  #writing: Promise<void> | undefined;
  #failed = false;
  readonly #flushMs: number;
  /** Ends the wait before the next write (`flush()`). */
  #wake: (() => void) | undefined;
  #flushing = false;

  /**
   * A writer to `output`.
   *
   * @param options.utc The dropped-lines note's time in UTC.
   * @param options.maxPending Characters held at most.
   * @default {MAX_PENDING_LOG_CHARS}
   * @param options.flushMs Longest a line waits for others to share its write.
   * @default {LOG_FLUSH_MS}
   */
  constructor(
    output: LogOutput = Deno.stdout,
    { utc = false, maxPending = MAX_PENDING_LOG_CHARS, flushMs = LOG_FLUSH_MS }: {
      utc?: boolean;
      maxPending?: number;
      flushMs?: number;
    } = {},
  ) {
    this.#output = output;
    this.#utc = utc;
    this.#maxPending = maxPending;
    this.#flushMs = flushMs;
  }

  /** Queues `line` (a newline is added), or drops and counts it when it
   * does not fit. Never waits. */
  write(line: string): void {
    if (this.#failed || this.#pending + line.length + 1 > this.#maxPending) {
      this.#dropped++;
      return;
    }
    // Room again: the note (a line more than the bound) marks the gap.
    if (this.#dropped > 0) this.#noteDropped();
    this.#enqueue(line);
  }

  /** Lines dropped and not yet noted in the log. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Characters waiting to be written. */
  get pending(): number {
    return this.#pending;
  }

  /** Settles once every queued line, and the note of lines dropped since
   * the last one, is written (or the output has failed). */
  async flush(): Promise<void> {
    if (this.#dropped > 0 && !this.#failed) this.#noteDropped();
    this.#flushing = true;
    this.#wake?.();
    try {
      await this.#writing;
    } finally {
      this.#flushing = false;
    }
  }

  /** Queues the note of the lines dropped since the last one. */
  #noteDropped(): void {
    const note = droppedNote(this.#dropped, this.#utc);
    this.#dropped = 0;
    this.#enqueue(note);
  }

  #enqueue(line: string): void {
    this.#queue.push(line);
    this.#pending += line.length + 1;
    this.#writing ??= this.#drain();
  }

  /** Writes what is queued, round after round, until the queue is empty,
   * each round after waiting for more lines (unless flushing). */
  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        if (!this.#flushing) await this.#gather();
        const text = this.#queue.join("\n") + "\n";
        this.#queue = [];
        const bytes = encoder.encode(text);
        for (let at = 0; at < bytes.length;) {
          at += taken(await this.#output.write(bytes.subarray(at)));
        }
        this.#pending -= text.length;
      }
    } catch {
      // Closed or broken: log lines cannot go anywhere now (console.log
      // would drop them as quietly), and the server goes on serving.
      this.#failed = true;
      this.#dropped += this.#queue.length;
      this.#queue = [];
      this.#pending = 0;
    } finally {
      this.#writing = undefined;
    }
  }

  /** Waits `flushMs`, or until `flush()`: the lines that come meanwhile
   * share the next write. */
  #gather(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.#flushMs);
      this.#wake = done;
    });
  }
}

/** `…Z 1200 log lines dropped (output not keeping up)`. */
function droppedNote(count: number, utc: boolean): string {
  const lines = count === 1 ? "log line" : "log lines";
  return `${logTime(utc)} ${count} ${lines} dropped (output not keeping up)`;
}
