/**
 * The textbook UDP client, one line at a time: send a line, print the reply
 * (escaped: a hostile server cannot reach the terminal), resend on silence
 * if asked. Ctrl-C ends it at once with a one-line summary.
 *
 * @module
 */

import {
  MAX_UDP_PAYLOAD_V4,
  MAX_UDP_PAYLOAD_V6,
  settings,
  SHOWN_PAYLOAD_BYTES,
} from "../settings.ts";
import { checkNumber, printLine, write } from "./cli.ts";
import { escapeBytes } from "./log.ts";
import { checkPort, describeError, formatAddress, resolveHost, sameAddress } from "./net.ts";
import { PING_RULES } from "./ping_options.ts";
import { openClientSocket, Receiver } from "./socket.ts";

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

/** What {@linkcode chat} yields. `text` of a reply is escaped. */
export type ChatEvent =
  | { type: "sent"; line: string; bytes: number; attempt: number }
  | { type: "reply"; text: string; bytes: number; from: string }
  | { type: "no-reply"; line: string; attempts: number }
  | { type: "not-sent"; line: string; reason: string };

/**
 * Sends each line of `lines` as one datagram and waits up to the timeout for
 * a datagram back from the server, resending `retries` times. An empty line
 * sends nothing (a 0-byte datagram stops some textbook servers); a line that
 * cannot be sent is reported and the chat goes on.
 *
 * @example
 * ```ts
 * import { chat } from "./chat.ts";
 * import { serve } from "../server.ts";
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
  const port = checkPort(options.port ?? settings.port);
  const timeoutMs =
    checkNumber("timeout", options.timeout ?? settings.timeout, PING_RULES.timeout.rule) * 1000;
  const retries = checkNumber("retries", options.retries ?? 0, PING_RULES.retries.rule);
  const { address, family } = await resolveHost(options.host ?? settings.host);
  const destination: Deno.NetAddr = { transport: "udp", hostname: address, port };
  const largest = family === 6 ? MAX_UDP_PAYLOAD_V6 : MAX_UDP_PAYLOAD_V4;
  using socket = openClientSocket(family);
  using receiver = new Receiver(socket);
  const encoder = new TextEncoder();
  const { signal } = options;
  for await (const line of lines) {
    if (signal?.aborted) return;
    if (line === "") continue;
    const data = encoder.encode(line);
    if (data.length > largest) {
      yield {
        type: "not-sent",
        line,
        reason: `${data.length} bytes is over the ${largest}-byte datagram limit`,
      };
      continue;
    }
    let answered = false;
    for (let attempt = 1; attempt <= retries + 1 && !answered && !signal?.aborted; attempt++) {
      try {
        await socket.send(data, destination);
      } catch (error) {
        yield { type: "not-sent", line, reason: describeError(error) };
        break;
      }
      yield { type: "sent", line, bytes: data.length, attempt };
      const deadline = performance.now() + timeoutMs;
      for (let datagram; (datagram = await receiver.next(deadline, signal)) !== undefined;) {
        const { hostname, port: sourcePort } = datagram.from;
        if (sourcePort !== port || !sameAddress(hostname, address)) continue;
        answered = true;
        const text = escapeBytes(datagram.data, SHOWN_PAYLOAD_BYTES);
        yield {
          type: "reply",
          text,
          bytes: datagram.data.length,
          from: formatAddress(hostname, sourcePort),
        };
        break;
      }
      if (!answered && attempt === retries + 1 && !signal?.aborted) {
        yield { type: "no-reply", line, attempts: retries + 1 };
      }
    }
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
 * `client.ts --chat`: lines from standard input (a `> ` prompt on a
 * terminal), each reply printed with its source. Ctrl-C ends it at once
 * with a summary line and exit status 130 (as a shell job); otherwise 0
 * when every line was answered, 1 if not.
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
  const counts = { sent: 0, answered: 0, retried: 0, unanswered: 0 };
  for await (const event of chat(promptedLines(), { ...options, signal })) {
    if (event.type === "sent") event.attempt > 1 ? counts.retried++ : counts.sent++;
    if (event.type === "reply") counts.answered++;
    if (event.type === "reply") printLine(`reply from ${event.from}: ${event.text}`);
    if (event.type === "sent" && event.attempt > 1) {
      printLine(`no reply, resending (attempt ${event.attempt})`);
    }
    if (event.type === "no-reply") counts.unanswered++;
    if (event.type === "no-reply") printLine(`no reply after ${event.attempts} attempt(s)`);
    if (event.type === "not-sent") counts.unanswered++;
    if (event.type === "not-sent") printLine(`not sent: ${event.reason}`);
  }
  if (interactive || signal.aborted) printLine();
  if (signal.aborted) {
    printLine(
      `chat interrupted: ${counts.sent} sent, ${counts.answered} answered, ` +
        `${counts.retried} retried, ${counts.unanswered} unanswered`,
    );
    return EXIT_INTERRUPTED;
  }
  return counts.unanswered === 0 ? 0 : 1;
}
