/**
 * The command line as its users live it (the lab, the everyday check): chat
 * and beacon under Ctrl-C, the heartbeat exercise, what the server did to
 * each reply, sizes, local times, pipes closed early, errors before the
 * header, the demo's banner, the SVG chart, the rate limit seen by `-f`.
 * Every test runs the real scripts as subprocesses over loopback.
 */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import { noNamespace, ROOT, runClient, runScript, udpSocket } from "./helpers.ts";
import { FLAGS, type Mode, parseClientCommand } from "../lib/client/client_cli.ts";

const decoder = new TextDecoder();

/** A script running as a subprocess whose output lines are collected as
 * they come, so a test can wait for one. */
interface Running extends AsyncDisposable {
  child: Deno.ChildProcess;
  lines: string[];
  errors: string[];
  /** Waits (bounded) for a stdout line matching `pattern`. */
  line(pattern: RegExp, waitMs?: number): Promise<string>;
  /** Writes to its standard input. */
  type(text: string): Promise<void>;
  /** Sends `signal` and waits for the exit status. */
  stop(signal?: Deno.Signal): Promise<number>;
}

function start(
  script: string,
  args: string[],
  options: { env?: Record<string, string>; stdin?: boolean } = {},
): Running {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", script, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const errors: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>, into: string[]) => {
    let rest = "";
    for await (const chunk of stream) {
      const parts = (rest + decoder.decode(chunk)).split("\n");
      rest = parts.pop() ?? "";
      into.push(...parts);
    }
    if (rest) into.push(rest);
  };
  const done = Promise.all([collect(child.stdout, lines), collect(child.stderr, errors)]);
  const writer = options.stdin ? child.stdin.getWriter() : undefined;
  let status: Promise<number> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    status ??= (async () => {
      try {
        child.kill(signal);
      } catch {
        // Already ended.
      }
      const { code } = await child.status;
      await done;
      return code;
    })();
    return status;
  };
  return {
    child,
    lines,
    errors,
    async line(pattern, waitMs = 10_000) {
      const deadline = performance.now() + waitMs;
      for (;;) {
        const found = lines.find((line) => pattern.test(line));
        if (found !== undefined) return found;
        if (performance.now() > deadline) {
          throw new Error(`no line like ${pattern} in ${waitMs} ms:\n${lines.join("\n")}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    async type(text) {
      await writer!.write(new TextEncoder().encode(text));
    },
    stop,
    async [Symbol.asyncDispose]() {
      await writer?.close().catch(() => {});
      await stop();
    },
  };
}

/** A server subprocess; resolves once it has said where it listens. */
async function server(args: string[], env?: Record<string, string>) {
  const running = start("server.ts", ["--port", "0", ...args], { env });
  const line = await running.line(/listening on/);
  const port = Number(/:(\d+) \(udp\)/.exec(line)![1]);
  return Object.assign(running, { port });
}

Deno.test("--chat: Ctrl-C ends it at once, with a summary and exit 130, while waiting for a reply or for input", async () => {
  await using silent = await server(["--silent"]);
  await using chat = start("client.ts", ["127.0.0.1", String(silent.port), "--chat", "-W", "30"], {
    stdin: true,
  });
  await chat.type("hello\n");
  await silent.line(/"hello" not answered/);
  const status = await chat.stop("SIGINT");
  assertEquals(status, 130, chat.errors.join("\n"));
  // The line waiting for its reply is counted as such: the figures add up.
  assertEquals(
    chat.lines.at(-1),
    "chat interrupted: 1 sent (0 answered, 0 answered late, 0 unanswered, 1 waiting), 0 resend(s), 0 not sent",
  );
  // Waiting at the prompt for the next line ends the same way.
  await using upper = await server(["--upper", "-q"]);
  await using idle = start("client.ts", ["127.0.0.1", String(upper.port), "--chat"], {
    stdin: true,
  });
  await idle.type("hi\n");
  await idle.line(/: HI$/);
  assertEquals(await idle.stop("SIGINT"), 130);
  assertEquals(
    idle.lines.at(-1),
    "chat interrupted: 1 sent (1 answered, 0 answered late, 0 unanswered, 0 waiting), 0 resend(s), 0 not sent",
  );
});

Deno.test("--chat: an empty line sends nothing; a line too long for a datagram is reported and the chat goes on", async () => {
  await using upper = await server(["--upper"]);
  const long = "x".repeat(70_000);
  const result = await runClient(upper.port, ["--chat"], { stdin: `one\n\n${long}\ntwo\n` });
  // Not every line was answered: exit 1, as for a line that got no reply.
  assertEquals(result.code, 1, result.stderr);
  assertEquals(result.stdout.trimEnd().split("\n"), [
    `reply from 127.0.0.1:${upper.port}: ONE`,
    "not sent: 70000 bytes is over the 65507-byte datagram limit",
    `reply from 127.0.0.1:${upper.port}: TWO`,
  ]);
  await upper.stop();
  assertEquals(upper.lines.filter((line) => / bytes "/.test(line)).length, 2);
});

Deno.test("--send runs until Ctrl-C without -c, then says how many it sent; -w bounds it", async () => {
  await using sink = await server(["--silent", "-q"]);
  await using beacon = start("client.ts", [
    "127.0.0.1",
    String(sink.port),
    "--send",
    "tick {seq}",
    "-i",
    "0.05",
  ]);
  await beacon.line(/seq=12 tick 12$/);
  assertEquals(await beacon.stop("SIGINT"), 0);
  const sent = beacon.lines.filter((line) => /^sent \d+ bytes/.test(line)).length;
  assertEquals(beacon.lines.at(-1), `beacon stopped: ${sent} sent`);
  assert(sent >= 12, `${sent} sent`);
  // -w 1 with -i 0.5: sends at 0 s and 0.5 s, not the 5 that -c asks for.
  const bounded = await runClient(sink.port, ["--send", "hi", "-c", "5", "-i", "0.5", "-w", "1"]);
  assertEquals(bounded.code, 0, bounded.stderr);
  assertEquals(bounded.stdout.trimEnd().split("\n").length, 2, bounded.stdout);
});

Deno.test("--heartbeat: one-way delay per heartbeat, gaps counted lost, silence, resumption, and the summary", async () => {
  await using monitor = await server(["--heartbeat", "0.4"]);
  // Heartbeats from one port: seqs 1, 2, then 5 (3 and 4 lost), a pause, 6.
  using socket = udpSocket();
  const source = `127.0.0.1:${(socket.addr as Deno.NetAddr).port}`;
  const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: monitor.port };
  const beat = (seq: number) =>
    socket.send(new TextEncoder().encode(`PING ${seq} ${Date.now().toFixed(3)} 0000BEEF`), to);
  await beat(1);
  await beat(2);
  // Lost heartbeats take time: 3 and 4 are only counted lost if 5 comes
  // later than two intervals (here about 1 ms) after 2.
  await new Promise((resolve) => setTimeout(resolve, 150));
  await beat(5);
  assertMatch(
    await monitor.line(/heartbeat seq=1 /),
    new RegExp(
      `^\\S+ ${source} heartbeat seq=1 one-way -?\\d+\\.\\d{3} ms \\(receiver − sender clock\\)$`,
    ),
  );
  assertMatch(await monitor.line(/heartbeat seq=5 /), /2 lost before it/);
  assertMatch(
    await monitor.line(/presumed stopped/),
    new RegExp(`${source} silent for 0\\.\\d+ s: presumed stopped`),
  );
  await beat(6);
  await monitor.line(new RegExp(`${source} resumed after`));
  await monitor.line(/heartbeat seq=6 /);
  assertEquals(await monitor.stop(), 0);
  assertMatch(
    monitor.lines.at(-1) ?? "",
    new RegExp(
      `^heartbeats from ${source}: 4 received, 2 lost, last seen \\d{4}-\\S+[+-]\\d\\d:\\d\\d$`,
    ),
  );
  // The client's --send '' sends exactly such records.
  await using second = await server(["--heartbeat", "5"]);
  const sent = await runClient(second.port, ["--send", "", "-c", "2", "-i", "0.05"]);
  assertEquals(sent.code, 0, sent.stderr);
  await second.line(/heartbeat seq=2 one-way/);
});

Deno.test("server and beacon times are local ISO 8601 with the offset and µs; --utc gives Z", async () => {
  const env = { TZ: "Asia/Kolkata" };
  await using local = await server([], env);
  await runScript("client.ts", ["127.0.0.1", String(local.port), "-c", "1"]);
  assertMatch(await local.line(/ bytes "PING/), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+05:30 /);
  await using utc = await server(["--utc"], env);
  await runScript("client.ts", ["127.0.0.1", String(utc.port), "-c", "1"]);
  assertMatch(await utc.line(/ bytes "PING/), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z /);
  await using beacon = start("client.ts", [
    "127.0.0.1",
    String(utc.port),
    "--send",
    "{now}",
    "-c",
    "1",
  ], {
    env,
  });
  assertMatch(await beacon.line(/seq=1/), /seq=1 \d{4}-\S+\.\d{6}\+05:30$/);
});

Deno.test("ping marks replies the server changed and summarises them; -v shows each reply escaped", async () => {
  await using prefixed = await server(["--prefix", "OK...", "-q"]);
  const result = await runClient(prefixed.port, ["-c", "2", "-i", "0.05", "-v"]);
  assertEquals(result.code, 0, result.stderr);
  const lines = result.stdout.split("\n");
  assertMatch(lines[1]!, /^69 bytes from .*: seq=1 time=\S+ ms \(prefixed "OK\.\.\."\)$/);
  assertMatch(lines[2]!, /^ {4}"OK\.\.\.PING 1 \d+\.\d{3} [0-9A-F]{8} =1,[\d.]+,\d+;[0-9a-z]+"$/);
  assert(lines.includes('replies: 2 prefixed "OK..." by the server'), result.stdout);
});

Deno.test("-s is the size sent; the IPv6 limit is accepted for ::1", async () => {
  await using v6 = start("server.ts", ["--host", "::1", "--port", "0", "-q"]);
  const port = Number(/:(\d+) \(udp\)/.exec(await v6.line(/listening on/))![1]);
  const result = await runScript("client.ts", [
    "::1",
    String(port),
    "-c",
    "1",
    "-s",
    "65527",
    "--json",
  ]);
  assertEquals(result.code, 0, result.stderr);
  assertEquals(JSON.parse(result.stdout).received, 1);
  const exact = await runScript("client.ts", ["::1", String(port), "-c", "1", "-s", "33", "-v"]);
  assertMatch(exact.stdout, /^33 bytes from /m);
});

Deno.test("errors come before the header: a bad address prints one line and no PING line", async () => {
  const result = await runScript("client.ts", ["41701", "-c", "1"]);
  assertEquals(result.code, 2);
  assertEquals(result.stdout, "");
  assertEquals(
    result.stderr,
    "client.ts: '41701' looks like a port: give the host first (client.ts HOST 41701)\n",
  );
});

Deno.test("a pipe closed early (| head -1) stops the client at once, quietly, as ping's SIGPIPE status", async () => {
  await using echo = await server(["-q"]);
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      `"${Deno.execPath()}" run --allow-net client.ts 127.0.0.1 ${echo.port} -c 100 -i 0.05 | head -1; echo "status $?"`,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
  const started = performance.now();
  const { stdout, stderr } = await child.output();
  const elapsed = performance.now() - started;
  assertEquals(
    decoder.decode(stdout).split("\n")[0],
    `PING 127.0.0.1 (127.0.0.1) port ${echo.port} (udp): 64 data bytes`,
  );
  assertEquals(decoder.decode(stderr), "");
  // 100 pings at 50 ms take 5 s: stopping at once takes a small part of it.
  assert(elapsed < 2500, `the client went on after the pipe closed (${elapsed.toFixed(0)} ms)`);
});

Deno.test("-f against a server's rate limit: the summary says rate-limited by the server, not upstream loss", async () => {
  await using limited = await server(["--rate", "10", "-q"]);
  const result = await runClient(limited.port, ["-c", "200", "-f", "-q", "-W", "0.2", "--json"]);
  const summary = JSON.parse(result.stdout);
  // 200 requests as fast as replies come, against 10 a second: most are
  // refused, and the stamps say so (the last refusals, after the last
  // answered request, stay unknown).
  assert(summary.lossSplit.rateLimited > 100, JSON.stringify(summary.lossSplit));
  assert(summary.lossSplit.upstream < 10, result.stdout);
  const text = await runClient(limited.port, ["-c", "200", "-f", "-q", "-W", "0.2"]);
  assertMatch(text.stdout, /lost upstream \d+, downstream \d+, rate-limited by the server \d+/);
});

Deno.test("deno task demo's banner says what the flags ask for", async () => {
  const result = await runScript("demo.ts", ["-c", "3", "-i", "0.2"]);
  assertEquals(result.code === 0 || result.code === 1, true, result.stderr);
  assertMatch(result.stdout.split("\n")[0]!, /pinging it 3 times, one per 0\.2 s$/);
  assertMatch(result.stdout, /^3 packets transmitted/m);
});

Deno.test("--svg writes the run as a chart with a mark per request", async () => {
  await using lossy = await server(["--loss", "0.5", "--seed", "3", "-q"]);
  const file = await Deno.makeTempFile({ suffix: ".svg" });
  const args = ["127.0.0.1", String(lossy.port), "-c", "10", "-i", "0.02", "-W", "0.2"];
  const refused = await runScript("client.ts", [...args, "--svg", file, "-q"]);
  assertEquals([refused.code, refused.stdout], [2, ""]);
  assertMatch(refused.stderr, /--svg needs --allow-write/);
  const result = await runScript("client.ts", [...args, "--svg", file, "-q"], {
    permissions: ["--allow-net", "--allow-write"],
  });
  const summary = /(\d+) received/.exec(result.stdout);
  assert(summary !== null, result.stdout + result.stderr);
  const svg = await Deno.readTextFile(file);
  await Deno.remove(file);
  const received = Number(summary![1]);
  assertEquals((svg.match(/<circle class="reply"/g) ?? []).length, received);
  assertEquals((svg.match(/<path class="timeout"/g) ?? []).length, 10 - received);
  assert(svg.includes(`127.0.0.1:${lossy.port}`));
});

const namespaceMissing = noNamespace();
if (namespaceMissing) console.log(`cold-cache demo test skipped: ${namespaceMissing}`);

Deno.test({
  name: "deno task demo runs with a cold cache and no network beyond loopback",
  ignore: namespaceMissing !== undefined,
  async fn() {
    const cache = await Deno.makeTempDir();
    const deno = Deno.execPath();
    const { code, stdout, stderr } = await new Deno.Command("unshare", {
      args: ["-n", "sh", "-c", `ip link set lo up && "${deno}" task demo -c 2 -i 0.1`],
      cwd: ROOT,
      env: { DENO_DIR: cache, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    await Deno.remove(cache, { recursive: true });
    const text = decoder.decode(stdout);
    assert(code === 0 || code === 1, `exit ${code}: ${decoder.decode(stderr)}`);
    assertMatch(text, /^2 packets transmitted/m);
    assert(!/npm|fast-check/i.test(decoder.decode(stderr)), decoder.decode(stderr));
  },
});

Deno.test("every flag is accepted in the modes the table gives it and refused in the others", () => {
  const modeArgs: Record<Mode, string[]> = {
    ping: ["127.0.0.1"],
    many: ["127.0.0.1:1", "127.0.0.1:2"],
    chat: ["--chat"],
    send: ["--send", "hi"],
  };
  const value: Record<string, string[]> = {
    svg: ["/dev/null"],
    send: ["hi"],
    "timestamp-format": ["iso"],
  };
  for (const [name, flag] of Object.entries(FLAGS)) {
    if (name === "help" || name === "version" || name === "chat" || name === "send") continue;
    const given = flag.type === "string" ? [`--${name}`, ...(value[name] ?? ["1"])] : [`--${name}`];
    for (const mode of Object.keys(modeArgs) as Mode[]) {
      const args = [...modeArgs[mode], ...given];
      let refusal = "";
      try {
        parseClientCommand(args);
      } catch (error) {
        refusal = String(error);
      }
      const applies = (flag.modes as readonly Mode[]).includes(mode);
      assertEquals(
        /does not apply/.test(refusal),
        !applies,
        `${args.join(" ")}: ${refusal || "accepted"}`,
      );
    }
  }
});

Deno.test("requests too small for a stamp say so, instead of blaming the server", async () => {
  await using lossy = await server(["--loss", "0.5", "--seed", "3", "-q"]);
  const result = await runClient(lossy.port, [
    "-c",
    "9",
    "-s",
    "34",
    "-i",
    "0.02",
    "-W",
    "0.2",
    "-q",
  ]);
  assertMatch(
    result.stdout,
    /^lost upstream\/downstream and server time: unknown \(requests of 34 bytes leave no room for a stamp\)$/m,
  );
});

Deno.test("several targets: --json-lines and --json are rounded like one target's", async () => {
  await using a = await server(["-q"]);
  await using b = await server(["-q"]);
  const targets = [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`];
  for (const format of ["--json-lines", "--json"]) {
    const result = await runScript("client.ts", [...targets, "-c", "3", "-i", "0.02", format]);
    assertEquals(result.code, 0, result.stderr);
    assert(!/\d\.\d{4,}/.test(result.stdout), result.stdout);
  }
});

Deno.test("--send after a stall (SIGSTOP, SIGCONT) neither bursts nor skips a seq: the monitor sees a silence, nothing lost", async () => {
  await using monitor = await server(["--heartbeat", "1"]);
  await using beacon = start("client.ts", [
    "127.0.0.1",
    String(monitor.port),
    "--send",
    "",
    "-i",
    "0.2",
  ]);
  await beacon.line(/seq=3 /);
  Deno.kill(beacon.child.pid, "SIGSTOP");
  try {
    // The stall lasts until the monitor has noticed it: over 1 s, 5 intervals.
    await monitor.line(/presumed stopped/);
  } finally {
    Deno.kill(beacon.child.pid, "SIGCONT");
  }
  const stall = await beacon.line(/^stalled: /);
  const [, skipped, resumedSeq] = /: (\d+) sends skipped, .* seq=(\d+) /.exec(stall) ?? [];
  assert(Number(skipped) >= 3, stall);
  const lastSeq = Number(resumedSeq) + 3;
  await beacon.line(new RegExp(`seq=${lastSeq} `));
  await monitor.line(new RegExp(`heartbeat seq=${lastSeq} `));
  await beacon.stop("SIGINT");
  await monitor.stop();
  const sent = beacon.lines.flatMap((line) => {
    const match = /^sent \d+ bytes .*: seq=(\d+) PING \d+ ([\d.]+) /.exec(line);
    return match ? [{ seq: Number(match[1]), at: Number(match[2]) }] : [];
  });
  // No seq left out: the monitor has nothing to count lost.
  assertEquals(sent.map(({ seq }) => seq), sent.map((_, i) => i + 1), beacon.lines.join("\n"));
  assertMatch(monitor.lines.at(-1) ?? "", new RegExp(`: ${sent.length} received, 0 lost, `));
  assertEquals(beacon.lines.filter((line) => line.startsWith("stalled: ")), [stall]);
  // No burst: from the send after the stall on, one an interval again.
  const after = sent.filter(({ seq }) => seq >= Number(resumedSeq));
  const gaps = after.slice(1).map(({ at }, i) => at - after[i]!.at);
  assert(gaps.every((gap) => gap > 100), `ms between sends after the stall: ${gaps.join(" ")}`);
});

Deno.test("--svg is checked before the run: a directory, a missing folder, an empty name; one line, exit 2, nothing sent", async () => {
  await using echo = await server([]);
  const folder = await Deno.makeTempDir();
  const cases: [string, RegExp][] = [
    [folder, /^client\.ts: --svg '.*' is a directory: give a file name$/],
    [
      `${folder}/missing/run.svg`,
      /^client\.ts: --svg '.*\/missing\/run\.svg': its folder does not exist$/,
    ],
    ["", /^client\.ts: --svg needs a file name$/],
  ];
  try {
    for (const [file, pattern] of cases) {
      const result = await runScript("client.ts", [
        "127.0.0.1",
        String(echo.port),
        "-c",
        "2",
        "-i",
        "0.05",
        `--svg=${file}`,
      ], { permissions: ["--allow-net", "--allow-write"] });
      assertEquals([result.code, result.stdout], [2, ""], `--svg '${file}': ${result.stderr}`);
      assertMatch(result.stderr.trimEnd(), pattern);
      assertEquals(result.stderr.trimEnd().split("\n").length, 1, result.stderr);
    }
    // The check leaves nothing behind in the folder.
    assertEquals(await Array.fromAsync(Deno.readDir(folder)), []);
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
  await echo.stop();
  assert(!echo.lines.some((line) => / bytes "PING /.test(line)), echo.lines.join("\n"));
});

Deno.test("-D puts ping's [seconds.microseconds] before each reply and loss line; --timestamp-format iso an ISO 8601 time", async () => {
  await using lossy = await server(["--loss", "0.5", "--seed", "3", "-q"]);
  const args = ["-c", "6", "-i", "0.02", "-W", "0.2"];
  const before = Date.now() / 1000;
  const unix = await runClient(lossy.port, [...args, "-D"]);
  const after = Date.now() / 1000;
  assertEquals(unix.code, 0, unix.stderr);
  const lines = unix.stdout.split("\n");
  assertMatch(lines[0]!, /^PING /);
  const events = lines.filter((line) => /bytes from|Request timeout/.test(line));
  assertEquals(events.length, 6, unix.stdout);
  for (const line of events) {
    const match = /^\[(\d+\.\d{6})\] (\d+ bytes from |Request timeout for seq=)/.exec(line);
    assert(match !== null, line);
    const at = Number(match[1]);
    assert(at >= before && at <= after, `${line}: not within the run`);
  }
  assert(lines.some((line) => /^\d+ packets transmitted/.test(line)), unix.stdout);
  const iso = await runClient(lossy.port, [...args, "--timestamp-format", "iso"]);
  const isoEvents = iso.stdout.split("\n").filter((line) =>
    /bytes from|Request timeout/.test(line)
  );
  assertEquals(isoEvents.length, 6, iso.stdout);
  for (const line of isoEvents) {
    assertMatch(line, /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}([+-]\d\d:\d\d|Z)\] /);
  }
  // Several targets: the time comes first, as fping prints it.
  const many = await runScript("client.ts", [
    `127.0.0.1:${lossy.port}`,
    `127.0.0.1:${lossy.port}`,
    "-c",
    "1",
    "-W",
    "0.2",
    "-D",
  ]);
  assertMatch(many.stdout, /^\[\d+\.\d{6}\] 127\.0\.0\.1:\d+ : /m);
});

Deno.test("-i, -W and -w take durations with units; a bare number is seconds", async () => {
  await using echo = await server(["-q"]);
  const result = await runClient(echo.port, [
    "-c",
    "3",
    "-i",
    "20ms",
    "-W",
    "1s",
    "-w",
    "1m",
    "--json",
    "-q",
  ]);
  assertEquals(result.code, 0, result.stderr);
  const { options } = JSON.parse(result.stdout);
  assertEquals([options.interval, options.timeout, options.deadline], [0.02, 1, 60]);
  const bare = await runClient(echo.port, ["-c", "2", "-i", "0.02", "-W", "2", "--json", "-q"]);
  assertEquals(JSON.parse(bare.stdout).options.timeout, 2);
});

Deno.test("the header names the host and the address pinged; -4 resolves to IPv4; --port gives the port", async () => {
  await using echo = await server(["-q"]);
  const result = await runScript("client.ts", [
    "localhost",
    "-4",
    "--port",
    String(echo.port),
    "-c",
    "1",
  ]);
  assertEquals(result.code, 0, result.stderr);
  assertEquals(
    result.stdout.split("\n")[0],
    `PING localhost (127.0.0.1) port ${echo.port} (udp): 64 data bytes`,
  );
  assertMatch(
    result.stdout,
    new RegExp(`^--- localhost:${echo.port} udp ping statistics ---$`, "m"),
  );
  const chat = await runScript("client.ts", ["--chat", "--port", String(echo.port)], {
    stdin: "hi\n",
  });
  assertEquals(chat.stdout, `reply from 127.0.0.1:${echo.port}: hi\n`);
});

Deno.test("harmless combinations are accepted: --no-color with --chat; -q with --send prints nothing per datagram", async () => {
  await using echo = await server([]);
  const chat = await runClient(echo.port, ["--chat", "--no-color"], { stdin: "hi\n" });
  assertEquals([chat.code, chat.stdout], [0, `reply from 127.0.0.1:${echo.port}: hi\n`]);
  const beacon = await runClient(echo.port, ["--send", "x", "-c", "2", "-i", "0.01", "-q"]);
  assertEquals([beacon.code, beacon.stdout, beacon.stderr], [0, "", ""]);
  await echo.stop();
  assertEquals(
    echo.lines.filter((line) => / bytes "x"/.test(line)).length,
    2,
    echo.lines.join("\n"),
  );
});

Deno.test({
  name: "an IPv6 link-local address with its scope id (fe80::1%lo) is pinged",
  ignore: namespaceMissing !== undefined,
  async fn() {
    const deno = Deno.execPath();
    const log = await Deno.makeTempFile();
    // A private network namespace: lo gets a link-local address, and the
    // port is free there whatever runs on the host.
    const script = [
      "ip link set lo up && ip addr add fe80::1/64 dev lo",
      `"${deno}" run --allow-net server.ts --host :: --port 45300 -q > "${log}" 2>&1 & server=$!`,
      `i=0; until grep -q listening "${log}" || [ $i -ge 200 ]; do sleep 0.05; i=$((i+1)); done`,
      `"${deno}" run --allow-net client.ts fe80::1%lo 45300 -c 2 -i 0.05`,
      // By its pid: a non-interactive sh has no job %1 to kill, and a
      // server left behind outlives the test in its namespace.
      'status=$?; kill "$server"; wait "$server"; exit $status',
    ].join("\n");
    try {
      const { code, stdout, stderr } = await new Deno.Command("unshare", {
        args: ["-n", "sh", "-c", script],
        cwd: ROOT,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = decoder.decode(stdout);
      assertEquals(code, 0, text + decoder.decode(stderr));
      assertEquals(
        text.split("\n")[0],
        "PING fe80::1%lo (fe80::1%lo) port 45300 (udp): 64 data bytes",
      );
      assertMatch(text, /^64 bytes from \[fe80::1\]:45300: seq=2 /m);
      assertMatch(text, /2 packets transmitted, 2 received, 0% packet loss/);
    } finally {
      await Deno.remove(log);
    }
  },
});
