/**
 * The textbook UDP client, one line at a time: send a line, print the reply
 * (escaped: a hostile server cannot reach the terminal), resend on silence
 * if asked. Each reply is matched to the line it answers by its content, so
 * a late reply is shown as late, for its own line. Ctrl-C ends it at once
 * with a one-line summary.
 *
 * @module
 */

import {
  CHAT_LINES_REMEMBERED,
  MAX_UDP_PAYLOAD_V4,
  MAX_UDP_PAYLOAD_V6,
  settings,
  SHOWN_PAYLOAD_BYTES,
} from "../../settings.ts";
import { printLine, write } from "../shared/output.ts";
import { escapeBytes } from "../shared/log.ts";
import { describeError, formatAddress, resolveHost, sameAddress } from "../shared/net.ts";
import { planChat } from "./ping_options.ts";
import { CASE_OFFSET, LOWER_A, LOWER_Z } from "../../protocol.ts";
import { openClientSocket, Receiver } from "../shared/socket.ts";

/** What {@linkcode chat} does. */
export interface ChatOptions {
  /** Host name or IP literal of the server. */
  host?: string;
  /** The server's port, 1-65535. */
  port?: number;
  /** Seconds to wait for a reply to each line. */
  timeout?: number;
  /** How many times to resend a line that got no reply in time. */
  retries?: number;
  /** Ends the chat at once. */
  signal?: AbortSignal;
}

/** What a reply is to the line it answers: the answer to the line waiting,
 * a late answer to an earlier line given up on, or one more answer to a
 * line answered already. */
export type ReplyKind = "answer" | "late" | "duplicate";

/** What {@linkcode chat} yields. `text` of a reply is escaped; `line` is
 * the line it answers. */
export type ChatEvent =
  | { type: "sent"; line: string; bytes: number; attempt: number }
  | { type: "reply"; kind: ReplyKind; line: string; text: string; bytes: number; from: string }
  | { type: "no-reply"; line: string; attempts: number }
  | { type: "not-sent"; line: string; reason: string; attempt: number };

/** A line the chat has sent, as replies are matched to it. */
export interface SentLine {
  line: string;
  data: Uint8Array;
  answered: boolean;
}

/**
 * Whether `reply` carries `request`: ends with its bytes, each as sent or,
 * for an ASCII letter, in uppercase. An echo, the classic lab's
 * uppercasing and a prefix put first (`OK...`) all do.
 *
 * @example
 * ```ts
 * import { carries } from "./chat.ts";
 * import { equal } from "node:assert/strict";
 * const bytes = (text: string) => new TextEncoder().encode(text);
 * equal(carries(bytes("OK...HELLO"), bytes("hello")), true);
 * equal(carries(bytes("HELLO"), bytes("world")), false);
 * ```
 */
export function carries(reply: Uint8Array, request: Uint8Array): boolean {
  const offset = reply.length - request.length;
  if (offset < 0) return false;
  for (let at = 0; at < request.length; at++) {
    const sent = request[at]!;
    const got = reply[offset + at]!;
    if (got === sent) continue;
    if (sent < LOWER_A || sent > LOWER_Z || got !== sent - CASE_OFFSET) return false;
  }
  return true;
}

/**
 * The line a reply answers, told by its content: the line waiting if the
 * reply carries it, else the earliest line given up on that it carries (a
 * late reply), else the earliest answered one (a duplicate). A reply that
 * carries no line sent is the answer to the line waiting: the content does
 * not tell, and a server may answer anything.
 *
 * @example
 * ```ts
 * import { matchReply } from "./chat.ts";
 * import { equal } from "node:assert/strict";
 * const sent = (line: string, answered = false) =>
 *   ({ line, data: new TextEncoder().encode(line), answered });
 * const reply = new TextEncoder().encode("FIRST");
 * const match = matchReply(reply, sent("second"), [sent("first")]);
 * equal(match.to.line, "first");
 * equal(match.kind, "late");
 * ```
 */
export function matchReply(
  reply: Uint8Array,
  waiting: SentLine,
  earlier: readonly SentLine[],
): { to: SentLine; kind: ReplyKind } {
  if (carries(reply, waiting.data)) return { to: waiting, kind: "answer" };
  const given = earlier.find((sent) => !sent.answered && carries(reply, sent.data));
  if (given) return { to: given, kind: "late" };
  const answered = earlier.find((sent) => sent.answered && carries(reply, sent.data));
  if (answered) return { to: answered, kind: "duplicate" };
  return { to: waiting, kind: "answer" };
}

/**
 * Sends each line of `lines` as one datagram and waits up to the timeout for
 * its reply, resending `retries` times. Each reply is matched to the line it
 * answers ({@linkcode matchReply}), so a reply that comes after its line's
 * timeout is reported late, for that line, and does not answer the next. An
 * empty line sends nothing (a 0-byte datagram stops some textbook servers);
 * a line that cannot be sent is reported and the chat goes on.
 *
 * @example
 * ```ts
 * import { chat } from "./chat.ts";
 * import { serve } from "../../server.ts";
 * import { equal } from "node:assert/strict";
 * await using server = await serve({ port: 0, mode: "upper" });
 * const replies: string[] = [];
 * for await (const event of chat(["hello"], { port: server.addr.port })) {
 *   if (event.type === "reply") replies.push(event.text);
 * }
 * equal(replies[0], "HELLO");
 * ```
 */
export async function* chat(
  lines: AsyncIterable<string> | Iterable<string>,
  options: ChatOptions = {},
): AsyncGenerator<ChatEvent> {
  const { port, timeoutMs, retries } = planChat(options);
  const { address, family } = await resolveHost(options.host ?? settings.host);
  const destination: Deno.NetAddr = { transport: "udp", hostname: address, port };
  const largest = family === 6 ? MAX_UDP_PAYLOAD_V6 : MAX_UDP_PAYLOAD_V4;
  using socket = openClientSocket(family);
  using receiver = new Receiver(socket);
  const fromServer = ({ hostname, port: sourcePort }: Deno.NetAddr) =>
    sourcePort === port && sameAddress(hostname, address);
  const earlier: SentLine[] = [];
  const encoder = new TextEncoder();
  const { signal } = options;
  for await (const line of lines) {
    if (signal?.aborted) return;
    if (line === "") continue;
    const data = encoder.encode(line);
    if (data.length > largest) {
      const reason = `${data.length} bytes is over the ${largest}-byte datagram limit`;
      yield { type: "not-sent", line, reason, attempt: 1 };
      continue;
    }
    const waiting: SentLine = { line, data, answered: false };
    let sentOnce = false;
    for (
      let attempt = 1;
      attempt <= retries + 1 && !waiting.answered && !signal?.aborted;
      attempt++
    ) {
      try {
        await socket.send(data, destination);
      } catch (error) {
        yield { type: "not-sent", line, reason: describeError(error), attempt };
        break;
      }
      sentOnce = true;
      yield { type: "sent", line, bytes: data.length, attempt };
      const deadline = performance.now() + timeoutMs;
      for (let datagram; !waiting.answered && (datagram = await receiver.next(deadline, signal));) {
        if (!fromServer(datagram.from)) continue;
        const { to, kind } = matchReply(datagram.data, waiting, earlier);
        to.answered = true;
        const text = escapeBytes(datagram.data, SHOWN_PAYLOAD_BYTES);
        const from = formatAddress(datagram.from.hostname, datagram.from.port);
        yield { type: "reply", kind, line: to.line, text, bytes: datagram.data.length, from };
      }
      if (!waiting.answered && attempt === retries + 1 && !signal?.aborted) {
        yield { type: "no-reply", line, attempts: retries + 1 };
      }
    }
    if (sentOnce) earlier.push(waiting);
    if (earlier.length > CHAT_LINES_REMEMBERED) earlier.shift();
  }
}

/**
 * Splits a byte stream into lines (without their `\n` or `\r\n`); stops at
 * once when `signal` aborts, even while waiting for input.
 *
 * @example
 * ```ts
 * import { readLines } from "./chat.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * const input = ReadableStream.from([new TextEncoder().encode("a\r\nb\nc")]);
 * deepStrictEqual(await Array.fromAsync(readLines(input)), ["a", "b", "c"]);
 * ```
 */
export async function* readLines(
  readable: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<string> {
  const reader = readable.pipeThrough(new TextDecoderStream()).getReader();
  const aborted = new Promise<{ done: true; value: undefined }>((resolve) => {
    if (signal?.aborted) resolve({ done: true, value: undefined });
    signal?.addEventListener("abort", () => resolve({ done: true, value: undefined }), {
      once: true,
    });
  });
  let rest = "";
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), aborted]);
      if (signal?.aborted) return;
      if (done) break;
      const parts = (rest + value).split("\n");
      rest = parts.pop() ?? "";
      for (const part of parts) yield part.replace(/\r$/, "");
    }
    if (rest !== "") yield rest;
  } finally {
    reader.releaseLock();
  }
}

/** The exit status of a chat ended by Ctrl-C, as a shell job's (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

/**
 * Where the lines of a chat stand: each line sent is answered (in time or
 * late), unanswered, or still waiting for its reply, so the figures add up;
 * resends and lines that could not be sent are counted apart.
 *
 * @example
 * ```ts
 * import { ChatTally } from "./chat.ts";
 * import { equal } from "node:assert/strict";
 * const tally = new ChatTally();
 * tally.add({ type: "sent", line: "first", bytes: 5, attempt: 1 });
 * tally.add({ type: "no-reply", line: "first", attempts: 1 });
 * tally.add({ type: "sent", line: "second", bytes: 6, attempt: 1 });
 * tally.add({ type: "reply", kind: "late", line: "first", text: "FIRST", bytes: 5, from: "x" });
 * equal(
 *   tally.describe(),
 *   "2 sent (0 answered, 1 answered late, 0 unanswered, 1 waiting), 0 resend(s), 0 not sent",
 * );
 * ```
 */
export class ChatTally {
  sent = 0;
  answered = 0;
  late = 0;
  unanswered = 0;
  resends = 0;
  notSent = 0;

  /** Counts one event of {@linkcode chat}. */
  add(event: ChatEvent): void {
    if (event.type === "sent") event.attempt === 1 ? this.sent++ : this.resends++;
    if (event.type === "no-reply") this.unanswered++;
    // A resend that fails leaves its line unanswered; a first send, not sent.
    if (event.type === "not-sent") event.attempt === 1 ? this.notSent++ : this.unanswered++;
    if (event.type === "reply" && event.kind === "answer") this.answered++;
    if (event.type === "reply" && event.kind === "late") this.late++, this.unanswered--;
  }

  /** Lines sent whose reply is still awaited. */
  get waiting(): number {
    return this.sent - this.answered - this.late - this.unanswered;
  }

  /** The figures, as the interrupted chat's summary line gives them. */
  describe(): string {
    return `${this.sent} sent (${this.answered} answered, ${this.late} answered late, ` +
      `${this.unanswered} unanswered, ${this.waiting} waiting), ` +
      `${this.resends} resend(s), ${this.notSent} not sent`;
  }
}

/** A line as a chat's output names it: quoted, escaped, cut. */
function quoted(line: string): string {
  return `"${escapeBytes(new TextEncoder().encode(line), SHOWN_PAYLOAD_BYTES)}"`;
}

/**
 * The line `client.ts --chat` prints for an event, if any.
 *
 * @example
 * ```ts
 * import { describeChatEvent } from "./chat.ts";
 * import { equal } from "node:assert/strict";
 * equal(
 *   describeChatEvent({ type: "reply", kind: "late", line: "hi", text: "HI", bytes: 2, from: "127.0.0.1:12000" }),
 *   'late reply from 127.0.0.1:12000 to "hi": HI',
 * );
 * ```
 */
export function describeChatEvent(event: ChatEvent): string | undefined {
  switch (event.type) {
    case "sent":
      return event.attempt > 1 ? `no reply, resending (attempt ${event.attempt})` : undefined;
    case "reply":
      return event.kind === "answer"
        ? `reply from ${event.from}: ${event.text}`
        : `${event.kind} reply from ${event.from} to ${quoted(event.line)}: ${event.text}`;
    case "no-reply":
      return `no reply to ${quoted(event.line)} after ${event.attempts} attempt(s)`;
    case "not-sent":
      return `not sent: ${event.reason}`;
  }
}

/**
 * `client.ts --chat`: lines from standard input (a `> ` prompt on a
 * terminal), each reply printed with its source. Ctrl-C ends it at once
 * with a summary line and exit status 130 (as a shell job); otherwise 0
 * when every line was answered (late answers count), 1 if not.
 */
export async function runChat(options: ChatOptions, signal: AbortSignal): Promise<number> {
  const interactive = Deno.stdin.isTerminal();
  const prompt = () => interactive && !signal.aborted && write("> ");
  async function* promptedLines() {
    prompt();
    for await (const text of readLines(Deno.stdin.readable, signal)) {
      yield text;
      prompt();
    }
  }
  const tally = new ChatTally();
  for await (const event of chat(promptedLines(), { ...options, signal })) {
    tally.add(event);
    const line = describeChatEvent(event);
    if (line !== undefined) printLine(line);
  }
  if (interactive || signal.aborted) printLine();
  if (signal.aborted) {
    printLine(`chat interrupted: ${tally.describe()}`);
    return EXIT_INTERRUPTED;
  }
  return tally.unanswered === 0 && tally.notSent === 0 ? 0 : 1;
}
