/**
 * lib/client/chat.ts: `client.ts --chat`, the textbook client. Which line each
 * reply answers (told by its content, so a late reply is not taken for the
 * next line's), how the lines add up, what is printed. Over loopback, and
 * the script as a subprocess.
 */

import { assertEquals } from "./assert.ts";
import { collect, customServer, runClient, startServerProcess } from "./helpers.ts";
import {
  carries,
  chat,
  type ChatEvent,
  ChatTally,
  matchReply,
  type SentLine,
} from "../lib/client/chat.ts";
import { serve } from "../server.ts";

const encoder = new TextEncoder();
const sent = (line: string, answered = false): SentLine => ({
  line,
  data: encoder.encode(line),
  answered,
});

/** The reply events: their kind, the line each answers, and its text. */
const repliesOf = (events: ChatEvent[]) =>
  events.flatMap((event) => event.type === "reply" ? [[event.kind, event.line, event.text]] : []);

Deno.test("carries() knows a line in its reply: echoed, uppercased, after a prefix", () => {
  const line = encoder.encode("Hello, 1 héllo");
  for (
    const reply of ["Hello, 1 héllo", "HELLO, 1 HéLLO", "OK...Hello, 1 héllo", "> HELLO, 1 HéLLO"]
  ) {
    assertEquals(carries(encoder.encode(reply), line), true, reply);
  }
  for (
    const reply of ["hello, 1 héllo", "Hello, 1 héll", "Hello, 1 héllo!", "HELLO, 1 HÉLLO", ""]
  ) {
    assertEquals(carries(encoder.encode(reply), line), false, reply);
  }
});

Deno.test("matchReply() prefers the line waiting, then a line given up on, then one answered", () => {
  const first = sent("first");
  const again = sent("first", true);
  const match = (reply: string, waiting: SentLine, earlier: SentLine[]) => {
    const { to, kind } = matchReply(encoder.encode(reply), waiting, earlier);
    return [kind, to === waiting ? "waiting" : earlier.indexOf(to)];
  };
  assertEquals(match("FIRST", sent("first"), [first]), ["answer", "waiting"]);
  assertEquals(match("FIRST", sent("second"), [again, first]), ["late", 1]);
  assertEquals(match("FIRST", sent("second"), [again]), ["duplicate", 0]);
  // Content that names no line sent: the answer to the line waiting.
  assertEquals(match("ACK", sent("second"), [first]), ["answer", "waiting"]);
});

Deno.test("chat() credits a late reply to the line it answers, not to the next line", async () => {
  // Each reply comes 450 ms after its line, 150 ms into the next line's
  // 300 ms wait.
  await using server = await serve({ port: 0, mode: "upper", delay: 450 });
  const events = await collect(
    chat(["first", "second", "third"], { port: server.addr.port, timeout: 0.3 }),
  );
  assertEquals(repliesOf(events), [["late", "first", "FIRST"], ["late", "second", "SECOND"]]);
  assertEquals(
    events.filter((event) => event.type === "no-reply").map((event) => event.line),
    ["first", "second", "third"],
  );
});

Deno.test("chat() shows a second reply to an answered line as a duplicate", async () => {
  await using server = await serve({ port: 0, duplicate: 1 });
  const events = await collect(chat(["one", "two"], { port: server.addr.port }));
  assertEquals(repliesOf(events), [
    ["answer", "one", "one"],
    ["duplicate", "one", "one"],
    ["answer", "two", "two"],
  ]);
});

Deno.test("chat() shows a reply in UTF-8 as text", async () => {
  await using server = await serve({ port: 0, mode: "upper" });
  const events = await collect(chat(["héllo wörld"], { port: server.addr.port }));
  assertEquals(repliesOf(events), [["answer", "héllo wörld", "HéLLO WöRLD"]]);
});

Deno.test("ChatTally: the lines sent add up to answered, late, unanswered and waiting", () => {
  const tally = new ChatTally();
  const events: ChatEvent[] = [
    { type: "sent", line: "a", bytes: 1, attempt: 1 },
    { type: "reply", kind: "answer", line: "a", text: "A", bytes: 1, from: "x" },
    { type: "sent", line: "b", bytes: 1, attempt: 1 },
    { type: "sent", line: "b", bytes: 1, attempt: 2 },
    { type: "no-reply", line: "b", attempts: 2 },
    { type: "not-sent", line: "c".repeat(70_000), reason: "too long", attempt: 1 },
    { type: "sent", line: "d", bytes: 1, attempt: 1 },
    { type: "not-sent", line: "d", reason: "refused", attempt: 2 },
    { type: "sent", line: "e", bytes: 1, attempt: 1 },
    { type: "reply", kind: "late", line: "b", text: "B", bytes: 1, from: "x" },
    { type: "reply", kind: "duplicate", line: "a", text: "A", bytes: 1, from: "x" },
  ];
  for (const event of events) tally.add(event);
  assertEquals(
    tally.describe(),
    "4 sent (1 answered, 1 answered late, 1 unanswered, 1 waiting), 1 resend(s), 1 not sent",
  );
});

Deno.test("client.ts --chat names the line a late reply answers and the line that got none", async () => {
  await using server = await startServerProcess(["--quiet", "--upper", "--delay", "450"]);
  const { code, stdout, stderr } = await runClient(server.port, ["--chat", "-W", "0.3"], {
    stdin: "first\nsecond\nthird\n",
  });
  assertEquals(code, 1, stderr);
  const from = `127.0.0.1:${server.port}`;
  assertEquals(stdout.trimEnd().split("\n"), [
    'no reply to "first" after 1 attempt(s)',
    `late reply from ${from} to "first": FIRST`,
    'no reply to "second" after 1 attempt(s)',
    `late reply from ${from} to "second": SECOND`,
    'no reply to "third" after 1 attempt(s)',
  ]);
});

Deno.test("client.ts --chat exits 0 when a line given up on is answered late", async () => {
  // The reply to "slow" comes while "fast" waits; "fast" is answered in time.
  let replies = 0;
  await using server = customServer(async (socket, data, from) => {
    if (replies++ === 0) return; // held: sent with the next one
    await socket.send(encoder.encode("SLOW"), from);
    await socket.send(data, from);
  });
  const result = await runClient(server.port, ["--chat", "-W", "0.2"], { stdin: "slow\nfast\n" });
  assertEquals(result.code, 0, result.stdout + result.stderr);
  assertEquals(result.stdout.trimEnd().split("\n").slice(1), [
    `late reply from 127.0.0.1:${server.port} to "slow": SLOW`,
    `reply from 127.0.0.1:${server.port}: fast`,
  ]);
});

Deno.test("chat() sends each line and yields the server's reply", async () => {
  await using server = await serve({ port: 0, mode: "upper" });
  const events = await collect(chat(["hello", "world"], { port: server.addr.port }));
  assertEquals(
    events.filter((event) => event.type === "reply").map((event) =>
      event.type === "reply" && event.text
    ),
    ["HELLO", "WORLD"],
  );
});

Deno.test("chat() resends an unanswered line --retries times", async () => {
  await using server = await serve({ port: 0, mode: "silent" });
  const events = await collect(
    chat(["anyone?"], { port: server.addr.port, timeout: 0.05, retries: 2 }),
  );
  assertEquals(events.map((event) => event.type), ["sent", "sent", "sent", "no-reply"]);
  assertEquals(server.stats.received, 3);
});
