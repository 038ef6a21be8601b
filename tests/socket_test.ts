import { assertEquals } from "./assert.ts";
import { openSocket, Receiver } from "../lib/shared/socket.ts";
import { runScript, within } from "./helpers.ts";

Deno.test("Receiver listens for its signal's abort once, however many times it waits", async () => {
  using socket = openSocket("127.0.0.1", 0);
  using receiver = new Receiver(socket);
  const controller = new AbortController();
  const { signal } = controller;
  let listeners = 0;
  const addEventListener = signal.addEventListener.bind(signal);
  signal.addEventListener = ((...args: Parameters<typeof addEventListener>) => {
    listeners++;
    addEventListener(...args);
  }) as typeof signal.addEventListener;
  for (let wait = 0; wait < 5; wait++) {
    assertEquals(await receiver.next(performance.now() + 2, signal), undefined);
  }
  assertEquals(listeners, 1);
  controller.abort();
});

Deno.test("Receiver ends a wait at once when its signal aborts, and stops the wait's timer", async () => {
  // Timers still set once the wait is over: a left one holds the process
  // open until its deadline.
  const realSetTimeout = globalThis.setTimeout;
  const realClearTimeout = globalThis.clearTimeout;
  const live = new Set<unknown>();
  globalThis.setTimeout = ((callback: () => void, delay?: number) => {
    const timer = realSetTimeout(() => {
      live.delete(timer);
      callback();
    }, delay);
    live.add(timer);
    return timer;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((timer?: number) => {
    live.delete(timer);
    realClearTimeout(timer);
  }) as typeof clearTimeout;
  using socket = openSocket("127.0.0.1", 0);
  const receiver = new Receiver(socket);
  const controller = new AbortController();
  try {
    const abort = realSetTimeout(() => controller.abort(), 5);
    const waited = await within(5_000, "a wait of a minute, aborted after 5 ms", () => {
      return receiver.next(performance.now() + 60_000, controller.signal);
    });
    realClearTimeout(abort);
    assertEquals(waited, undefined);
    assertEquals(live.size, 0, "a timer is still set after the aborted wait");
  } finally {
    globalThis.setTimeout = realSetTimeout;
    globalThis.clearTimeout = realClearTimeout;
    receiver.close();
  }
});

/** Bytes of heap kept per `Receiver.next()` after collections, with a
 * signal that never aborts and without one (run with --expose-gc). */
const KEPT_PER_WAIT_SCRIPT = `
import { openSocket, Receiver } from "./lib/shared/socket.ts";
async function keptPerWait(signal, waits) {
  using socket = openSocket("127.0.0.1", 0);
  using receiver = new Receiver(socket);
  const to = socket.addr;
  const data = new Uint8Array(8);
  for (let i = 0; i < 200; i++) {
    await socket.send(data, to);
    await receiver.next(performance.now() + 1000, signal);
  }
  globalThis.gc();
  const before = Deno.memoryUsage().heapUsed;
  // Each deadline earlier than the last sets a new alarm: only what the
  // signal keeps can pile up.
  const base = performance.now() + 60_000;
  for (let i = 0; i < waits; i++) {
    await socket.send(data, to);
    await receiver.next(base - i * 0.01, signal);
  }
  globalThis.gc();
  return (Deno.memoryUsage().heapUsed - before) / waits;
}
const none = await keptPerWait(undefined, 20000);
const signalled = await keptPerWait(new AbortController().signal, 20000);
console.log(JSON.stringify({ none, signalled }));
`;

Deno.test("Receiver keeps nothing per wait for a signal that never aborts", async () => {
  // A promise raced by every wait and settled only by the abort kept each
  // race's result, a datagram per wait for the whole run (96 bytes a wait
  // more than without a signal).
  const { code, stdout, stderr } = await runScript("-", [], {
    stdin: KEPT_PER_WAIT_SCRIPT,
    permissions: ["--allow-net", "--v8-flags=--expose-gc"],
  });
  assertEquals(code, 0, stderr);
  const { none, signalled } = JSON.parse(stdout);
  assertEquals(
    signalled - none < 32,
    true,
    `${signalled} bytes a wait with a signal, ${none} without`,
  );
});
