/**
 * lib/shared/output.ts: standard output for both scripts. A closed output
 * ends the client quietly with 141, as ping; the server's log stops taking
 * lines and the server goes on serving.
 */

import { assertEquals } from "./assert.ts";
import { exchange, ROOT, startServerProcess, WAIT_MS } from "./helpers.ts";
import { serve } from "../server.ts";
import { EXIT_BROKEN_PIPE, LogWriter } from "../lib/shared/output.ts";

Deno.test("client.ts ends quietly with status 141 when its standard output is closed early", async () => {
  await using server = await serve({ port: 0 });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "client.ts", "127.0.0.1", String(server.addr.port)],
    cwd: ROOT,
    signal: AbortSignal.timeout(WAIT_MS * 4),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // `| head -0`: the reader goes away before the first line.
  await child.stdout.cancel();
  const { code, stderr } = await child.output();
  assertEquals(new TextDecoder().decode(stderr), "");
  assertEquals(code, EXIT_BROKEN_PIPE);
});

Deno.test("server.ts goes on serving, and exits 0, when its standard output is closed", async () => {
  await using server = await startServerProcess();
  await server.closeOutput();
  // The first log line meets the closed pipe; the requests are answered
  // all the same.
  for (let probe = 1; probe <= 3; probe++) {
    const reply = await exchange(server.port, `probe ${probe}`, { waitMs: WAIT_MS });
    assertEquals(reply && new TextDecoder().decode(reply), `probe ${probe}`);
  }
  const { code, stderr } = await server.stop();
  assertEquals(stderr, "");
  assertEquals(code, 0);
});

Deno.test("LogWriter takes no more lines once its output is closed, and counts them", async () => {
  let writes = 0;
  const closed = {
    write: () => (writes++, Promise.reject(new Deno.errors.BrokenPipe("Broken pipe"))),
  };
  const log = new LogWriter(closed);
  log.write("one");
  await log.flush();
  log.write("two");
  log.write("three");
  await log.flush();
  // One write failed; the lines after it were never tried.
  assertEquals(writes, 1);
  assertEquals(log.dropped, 2);
  assertEquals(log.pending, 0);
});

Deno.test("LogWriter writes the lines that come within its flush time together, and flush() does not wait for it", async () => {
  const writes: string[] = [];
  const output = {
    write: (
      data: Uint8Array,
    ) => (writes.push(new TextDecoder().decode(data)), Promise.resolve(data.length)),
  };
  // A write of standard output is a thread hand-off in the runtime: ten
  // lines a millisecond apart take one write, not ten.
  const log = new LogWriter(output, { flushMs: 200 });
  for (let line = 1; line <= 10; line++) {
    log.write(`line ${line}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await log.flush();
  assertEquals(writes.length, 1);
  assertEquals(writes[0], Array.from({ length: 10 }, (_, at) => `line ${at + 1}\n`).join(""));
  // flush() writes at once, whatever the flush time.
  const patient = new LogWriter(output, { flushMs: 60_000 });
  patient.write("now");
  const started = performance.now();
  await patient.flush();
  assertEquals(writes.at(-1), "now\n");
  assertEquals(performance.now() - started < 30_000, true);
});
