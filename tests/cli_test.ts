/**
 * The two scripts as a user runs them: subprocesses with `--allow-net` and
 * nothing else, their output, and their exit codes.
 */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  ROOT,
  runClient,
  runScript,
  SCRIPT_TIMEOUT_MS,
  startServerProcess,
  udpSocket,
} from "./helpers.ts";

/** Two pings to `port` get no reply: two timeouts, 100% loss, no rtt
 * lines, exit 1. */
async function expectNoReply(port: string) {
  const client = await runScript("client.ts", [
    "127.0.0.1",
    port,
    "-c",
    "2",
    "-i",
    "0.05",
    "-W",
    "0.1",
  ]);
  assertEquals(client.code, 1);
  assertMatch(client.stdout, /Request timeout for seq=1\nRequest timeout for seq=2\n/);
  assertMatch(client.stdout, /2 packets transmitted, 0 received, 100% packet loss/);
  assert(!client.stdout.includes("rtt"), client.stdout);
}

/** An error is one line on stderr, with no stack trace. */
function assertOneLineError(stderr: string, pattern: RegExp) {
  const lines = stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, `expected one line, got:\n${stderr}`);
  assertMatch(lines[0]!, pattern);
  assert(!/Stack backtrace|\bat \S+:\d+/.test(stderr), stderr);
}

Deno.test("server.ts serves with --allow-net only, and the client prints ping's output", async () => {
  const server = await startServerProcess(["--upper"]);
  try {
    const client = await runClient(server.port, ["-c", "3", "-i", "0.05"]);
    assertEquals(client.code, 0, client.stderr);
    const lines = client.stdout.trimEnd().split("\n");
    assertEquals(lines[0], `PING 127.0.0.1 (127.0.0.1) port ${server.port} (udp): 64 data bytes`);
    for (const [i, seq] of [1, 2, 3].entries()) {
      assertMatch(
        lines[i + 1]!,
        new RegExp(
          `^64 bytes from 127\\.0\\.0\\.1:${server.port}: seq=${seq} time=\\d+(\\.\\d+)? ms \\(uppercased\\)$`,
        ),
      );
    }
    assertEquals(lines[4], "");
    assertEquals(lines[5], `--- 127.0.0.1:${server.port} udp ping statistics ---`);
    assertMatch(lines[6]!, /^3 packets transmitted, 3 received, 0% packet loss, time \d+ms$/);
    assertMatch(
      lines[7]!,
      /^rtt min\/avg\/max\/mdev = \d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3} ms$/,
    );
    assertMatch(
      lines[8]!,
      /^rtt p50\/p90\/p99 = [\d.]+\/[\d.]+\/[\d.]+ ms, jitter [\d.]+ ms(, ipdv [\d.]+ ms)?$/,
    );
    assertEquals(lines[9], "replies: 3 uppercased by the server");
    assertMatch(lines[10]!, /^lost upstream 0, downstream 0; server time avg [\d.]+ ms$/);
    assertEquals(lines.length, 11);
    assertEquals(client.stderr, "");
  } finally {
    const stopped = await server.stop("SIGTERM");
    assertEquals(stopped.code, 0);
    assertMatch(
      stopped.stdout,
      /\n3 received, 3 replied, 0 dropped, 0 rate-limited, 0 ignored, 0 failed sends, 1 client\n/,
    );
    assertEquals(stopped.stdout.match(/ bytes "PING \d+ [\d.]+ [0-9A-F]{8} /g)?.length, 3);
  }
});

Deno.test("server.ts prints its summary on SIGINT and exits 0", async () => {
  const server = await startServerProcess(["--quiet"]);
  const stopped = await server.stop("SIGINT");
  assertEquals(stopped.code, 0);
  assertMatch(stopped.stdout, /udping server statistics ---\n0 received, 0 replied/);
});

Deno.test("server.ts takes the port as a positional argument", async () => {
  const probe = udpSocket();
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const server = await startServerProcess(["--quiet", String(port)], { freePort: false });
  await server.stop();
  assertEquals(server.port, port);
});

Deno.test("client.ts exits 1 when no reply comes, with 100% loss and no rtt line", async () => {
  const server = await startServerProcess(["--silent", "--quiet"]);
  try {
    await expectNoReply(String(server.port));
  } finally {
    await server.stop();
  }
});

Deno.test("client.ts -q prints only the header and the summary", async () => {
  const server = await startServerProcess(["--quiet"]);
  try {
    const client = await runClient(server.port, ["-c", "2", "-i", "0.05", "-q"]);
    assertEquals(client.code, 0);
    assertEquals(client.stdout.trimEnd().split("\n").length, 7);
    assert(!client.stdout.includes("bytes from"));
  } finally {
    await server.stop();
  }
});

Deno.test("client.ts exits 1 when -c replies did not all come by the -w deadline", async () => {
  const server = await startServerProcess(["--quiet", "--loss", "1"]);
  try {
    const client = await runClient(server.port, ["-c", "3", "-w", "0.3", "-i", "0.05"]);
    assertEquals(client.code, 1);
  } finally {
    await server.stop();
  }
});

Deno.test("client.ts --chat sends standard input line by line, without a prompt when piped", async () => {
  const server = await startServerProcess(["--quiet", "--upper"]);
  try {
    const client = await runClient(server.port, ["--chat"], {
      stdin: "hello\nworld\n",
    });
    assertEquals(client.code, 0, client.stderr);
    assertEquals(
      client.stdout,
      `reply from 127.0.0.1:${server.port}: HELLO\nreply from 127.0.0.1:${server.port}: WORLD\n`,
    );
  } finally {
    await server.stop();
  }
});

Deno.test("client.ts --send prints each datagram it sends", async () => {
  const client = await runScript("client.ts", [
    "127.0.0.1",
    "9",
    "--send",
    "hi {seq}",
    "-c",
    "2",
    "-i",
    "0.01",
  ]);
  assertEquals(client.code, 0, client.stderr);
  assertEquals(
    client.stdout,
    "sent 4 bytes to 127.0.0.1:9: seq=1 hi 1\nsent 4 bytes to 127.0.0.1:9: seq=2 hi 2\n",
  );
});

Deno.test("--help on both scripts lists every flag with its default", async () => {
  const client = await runScript("client.ts", ["--help"]);
  assertEquals(client.code, 0);
  for (
    const flag of [
      "-c",
      "-i",
      "-W",
      "-s",
      "-w",
      "-q",
      "--chat",
      "--retries",
      "--send",
      "(default 10",
      "(default 12000)",
    ]
  ) {
    assert(client.stdout.includes(flag), `client --help lacks ${flag}`);
  }
  const server = await runScript("server.ts", ["--help"]);
  assertEquals(server.code, 0);
  for (
    const flag of [
      "--host",
      "--port",
      "--upper",
      "--prefix",
      "--silent",
      "--loss",
      "--delay",
      "--jitter",
      "--seed",
      "--quiet",
      "(default 127.0.0.1",
    ]
  ) {
    assert(server.stdout.includes(flag), `server --help lacks ${flag}`);
  }
});

const BAD_CLIENT_ARGS: [string[], RegExp][] = [
  [["-c", "-5"], /option '-c' needs a value, got '-5'/],
  [["-c", "0"], /-c must be a whole number from 1 to 4294967296, got '0'/],
  [["--count", "0"], /--count must be a whole number from 1 to 4294967296, got '0'/],
  [["-c", "abc"], /-c must be a whole number from 1 to 4294967296, got 'abc'/],
  [["-c", "1e309"], /-c must be a whole number from 1 to 4294967296, got '1e309'/],
  [["-c", "Infinity"], /-c must be a whole number from 1 to 4294967296, got 'Infinity'/],
  [["-c", "1.5"], /-c must be a whole number/],
  [
    ["-i", "0"],
    /-i must be a duration from 0\.001 s to 86400 s, got '0' \(-f sends as fast as replies come\)/,
  ],
  [["-i", "0.000"], /-i must be a duration from 0\.001 s to 86400 s, got '0\.000'/],
  [["--interval", "0ms"], /--interval must be a duration from 0\.001 s .*, got '0ms' \(-f sends/],
  // Shorter than the client can keep (MIN_INTERVAL_MS): refused, not lost.
  [["-i", "0.00001"], /-i must be a duration from 0\.001 s .*, got '0\.00001' \(-f sends/],
  [["-i", "0.5ms"], /-i must be a duration from 0\.001 s .*, got '0\.5ms' \(-f sends/],
  [["-i", "1e400"], /-i must be a duration from 0\.001 s to 86400 s, got '1e400'/],
  [["-i", "1e308"], /-i must be a duration from 0\.001 s to 86400 s, got '1e308'/],
  [["-i", "2d"], /-i must be a duration .*, got '2d' \(seconds, or 200ms, 5s, 1m\)/],
  [["-W", "3000000"], /-W must be a duration above 0 s and at most 86400 s, got '3000000'/],
  [["--timeout", "25h"], /--timeout must be a duration above 0 s and at most 86400 s, got '25h'/],
  [["-w", "3000000"], /-w must be a duration above 0 s and at most 86400 s, got '3000000'/],
  [["-s", "70000"], /-s must be a whole number from 0 to 65527, got '70000'/],
  [["-s", "0"], /-s must be at least 34 bytes \(the request's record needs them\), got 0/],
  [["-c", "1", "--size", "10"], /--size must be at least 33 bytes/],
  [["--send", "hi", "--json"], /--json does not apply to --send/],
  [["--send", "hi", "-f"], /-f does not apply to --send/],
  [["--send", "hi", "-s", "500"], /-s does not apply to --send/],
  [["--send", "hi", "--flood"], /--flood does not apply to --send/],
  [["--chat", "-c", "1"], /-c does not apply to --chat/],
  [["--chat", "--json"], /--json does not apply to --chat/],
  [["--chat", "--send", "hi"], /choose one of --chat and --send/],
  [["--chat", "127.0.0.1:1", "127.0.0.1:2"], /--chat talks to one server: unexpected argument/],
  [["--send", "hi", "127.0.0.1:1", "127.0.0.1:2"], /--send talks to one server: unexpected/],
  [["--chat", "127.0.0.1", "1", "extra"], /unexpected argument 'extra'/],
  [["--retries", "3"], /--retries does not apply to ping mode/],
  [["-f", "a:1", "b:2"], /-f does not apply to several targets/],
  [["--svg", "x.svg", "a:1", "b:2"], /--svg does not apply to several targets/],
  [["--port", "1", "a:1", "b:2"], /--port does not apply to several targets/],
  [["-c"], /option '-c' needs a value/],
  [["--json", "--json-lines"], /choose one of --json and --json-lines/],
  [["-f", "-i", "0.5"], /-f sends as fast as replies come: drop -i/],
  [["--json", "-v"], /-v adds to text lines; --json has none/],
  [["-D", "--json"], /-D adds to text lines; --json has none/],
  [["--json-lines", "-D"], /-D adds to text lines; --json-lines has none/],
  [["--timestamp-format", "ctime"], /--timestamp-format must be unix or iso, got 'ctime'/],
  [["--send", "", "--utc"], /--utc applies to \{now\} in a text; --send '' sends no text/],
  [["-4", "-6"], /choose one of -4 and -6/],
  [["-4", "::1"], /'::1' is an IPv6 address, not IPv4/],
  [["-6", "127.0.0.1"], /'127\.0\.0\.1' is an IPv4 address, not IPv6/],
  [["::zz", "12000"], /'::zz' is not a valid IPv6 address/],
  [["256.0.0.1", "12000"], /'256\.0\.0\.1' is not a valid IPv4 address/],
  [["-W", "-1"], /option '-W' needs a value/],
  [["-W=x"], /-W must be a duration above 0 s/],
  [["-s", "65508"], /-s must be at most 65507 bytes over IPv4, got 65508/],
  [["-w", "0"], /-w must be a duration above 0 s/],
  [["--retries", "-1"], /option '--retries' needs a value/],
  [["127.0.0.1", "70000"], /port must be a whole number from 1 to 65535, got '70000'/],
  [["127.0.0.1", "0"], /port must be a whole number from 1 to 65535, got '0'/],
  [["127.0.0.1", "http"], /port must be a whole number from 1 to 65535, got 'http'/],
  [["--port", "http"], /--port must be a whole number from 1 to 65535, got 'http'/],
  [["127.0.0.1", "1", "--port", "2"], /give the port once: '1' or --port/],
  [["127.0.0.1:1", "--port", "2"], /give the port once: in '127\.0\.0\.1:1' or with --port/],
  [["12000", "127.0.0.1"], /host and port look swapped: write client\.ts 127\.0\.0\.1 12000/],
  [["127.0.0.1", "1", "extra"], /unexpected argument 'extra'/],
  [["--bogus"], /unknown option '--bogus'/],
  [["-x"], /unknown option '-x'/],
  [["nonexistent.invalid", "12000", "-c", "1"], /cannot resolve host 'nonexistent\.invalid'/],
  [["300.1.1.1", "12000", "-c", "1"], /'300\.1\.1\.1' is not a valid IPv4 address/],
  [["", "12000"], /host must not be empty$/],
];

Deno.test("client.ts rejects every bad argument with one line and exit 2", async () => {
  for (const [args, pattern] of BAD_CLIENT_ARGS) {
    const result = await runScript("client.ts", args);
    assertEquals(result.code, 2, `${args.join(" ")}: ${result.stdout}${result.stderr}`);
    assertOneLineError(result.stderr, new RegExp(`^client\\.ts: ${pattern.source}`));
  }
});

const BAD_SERVER_ARGS: [string[], RegExp][] = [
  [["--loss", "1.5"], /--loss must be a number from 0 to 1, got '1\.5'/],
  [["--loss", "x"], /--loss must be a number from 0 to 1, got 'x'/],
  [["--delay", "-5"], /option '--delay' needs a value/],
  [["--delay=-5"], /--delay must be a number from 0 to 60000, got '-5'/],
  [["--delay", "2147483648"], /--delay must be a number from 0 to 60000, got '2147483648'/],
  [["--host", ""], /host must not be empty/],
  [["--heartbeat", "0"], /--heartbeat must be a number above 0 and at most 86400, got '0'/],
  [["--heartbeat", "3", "--upper"], /choose one reply mode, not --upper and --heartbeat/],
  [["--silent", "--loss", "0.5"], /--silent never replies: drop --loss/],
  [["--heartbeat", "3", "--delay", "10"], /--heartbeat never replies: drop --delay/],
  [["--seed", "1.5"], /--seed must be a whole number/],
  [["--port", "70000"], /port must be a whole number from 0 to 65535, got '70000'/],
  [["--upper", "--silent"], /choose one reply mode, not --upper and --silent/],
  [["--prefix", "x".repeat(65)], /--prefix must be at most 64 bytes, got 65$/],
  [["--jitter", "10"], /--jitter must be at most --delay \(0 ms\), got '10'$/],
  [["--delay", "5", "--jitter", "5.5"], /--jitter must be at most --delay \(5 ms\), got '5\.5'$/],
  [["12000", "--port", "13000"], /give the port once, not both --port 13000 and '12000'$/],
  [
    ["--host", "10.255.255.254", "--port", "0"],
    /cannot listen on 10\.255\.255\.254:0: the address is not on this host/,
  ],
  [["--host", "nonexistent.invalid"], /cannot resolve host 'nonexistent\.invalid'/],
  [["--nope"], /unknown option '--nope'/],
  [["--fast"], /--fast needs --allow-ffi/],
  [["--rate", "-1"], /option '--rate' needs a value/],
  [["--rate=-1"], /--rate must be a number from 0 to 1000000000, got '-1'/],
  [["--duplicate", "2"], /--duplicate must be a number from 0 to 1, got '2'/],
  [["--reorder", "x"], /--reorder must be a number from 0 to 1, got 'x'/],
  [["--jitter", "NaN"], /--jitter must be a number from 0 to 60000, got 'NaN'/],
  [["--port", "-1"], /option '--port' needs a value/],
  [["--port", "1.5"], /port must be a whole number from 0 to 65535, got '1\.5'/],
  [["12000", "13000"], /unexpected argument '13000'/],
  [["--host", "::zz"], /'::zz' is not a valid IPv6 address/],
];

Deno.test("server.ts rejects every bad argument with one line and exit 2", async () => {
  for (const [args, pattern] of BAD_SERVER_ARGS) {
    const result = await runScript("server.ts", args);
    assertEquals(result.code, 2, `${args.join(" ")}: ${result.stdout}${result.stderr}`);
    assertOneLineError(result.stderr, new RegExp(`^server\\.ts: ${pattern.source}`));
  }
});

Deno.test("server.ts reports a port already in use with one line and exit 2", async () => {
  const taken = udpSocket();
  try {
    const port = String((taken.addr as Deno.NetAddr).port);
    const result = await runScript("server.ts", ["--port", port]);
    assertEquals(result.code, 2);
    assertOneLineError(
      result.stderr,
      /^server\.ts: cannot listen on 127\.0\.0\.1:\d+: the port is already in use$/,
    );
  } finally {
    taken.close();
  }
});

const LINE_SHAPES = [
  /^PING 127\.0\.0\.1 \(127\.0\.0\.1\) port \d+ \(udp\): 64 data bytes$/,
  /^64 bytes from 127\.0\.0\.1:\d+: seq=\d+ time=\d+(\.\d+)? ms( \(DUP!\)| \(late\))?$/,
  /^Request timeout for seq=\d+$/,
  /^$/,
  /^--- 127\.0\.0\.1:\d+ udp ping statistics ---$/,
  /^\d+ packets transmitted, \d+ received(, \+\d+ duplicates)?, [\d.]+% packet loss, time \d+ms$/,
  /^rtt min\/avg\/max\/mdev = [\d.]+\/[\d.]+\/[\d.]+\/[\d.]+ ms$/,
  /^rtt p50\/p90\/p99 = [\d.]+\/[\d.]+\/[\d.]+ ms, jitter [\d.]+ ms(, ipdv [\d.]+ ms)?$/,
  /^lost upstream \d+, downstream \d+(, unknown \d+ \(after the last reply\))?; server time avg [\d.]+ ms$/,
  /^reordered \d+, late \d+, stray \d+$/,
];

Deno.test("client.ts piped prints plain ping-shaped text: every line a known shape, no escapes", async () => {
  const server = await startServerProcess([
    "--quiet",
    "--loss",
    "0.3",
    "--duplicate",
    "0.3",
    "--reorder",
    "0.2",
    "--seed",
    "9",
  ]);
  try {
    const client = await runClient(server.port, ["-c", "20", "-i", "0.01", "-W", "0.5"]);
    assertEquals(client.code, 0);
    assert(!client.stdout.includes("\x1b"), "escape code in piped output");
    const lines = client.stdout.split("\n");
    assertEquals(lines.pop(), "");
    for (const line of lines) {
      assert(
        LINE_SHAPES.some((shape) => shape.test(line)),
        `unexpected line: ${JSON.stringify(line)}`,
      );
    }
    assert(client.stdout.includes("(DUP!)") && client.stdout.includes("Request timeout"));
    assertMatch(client.stdout, /\nreordered [1-9]\d*, late 0, stray 0\n$/);
  } finally {
    await server.stop();
  }
});

/** Runs a command under a pseudo-terminal (util-linux `script`), as a
 * person at a terminal would, with NO_COLOR set or not. */
async function runInTerminal(args: string[], noColor: boolean, input?: string): Promise<string> {
  const env = Deno.env.toObject();
  delete env.NO_COLOR;
  if (noColor) env.NO_COLOR = "1";
  const command = [Deno.execPath(), "run", "--allow-net", ...args].map((arg) => `'${arg}'`).join(
    " ",
  );
  const output = new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const writer = output.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
  }
  return new TextDecoder().decode((await output.output()).stdout);
}

const HAS_SCRIPT = (() => {
  try {
    return new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "client.ts on a terminal colours its lines and ends with a sparkline and a histogram",
  ignore: !HAS_SCRIPT,
  async fn() {
    const server = await startServerProcess(["--quiet", "--loss", "0.3", "--seed", "4"]);
    try {
      const args = [
        "client.ts",
        "127.0.0.1",
        String(server.port),
        "-c",
        "10",
        "-i",
        "0.01",
        "-W",
        "0.2",
      ];
      const colored = await runInTerminal(args, false);
      assert(colored.includes("\x1b[32m10 bytes") || colored.includes("\x1b[32m64 bytes"), colored);
      assert(colored.includes("\x1b[31mRequest timeout"), colored);
      assertMatch(colored, /rtt per request: .*[▁▂▃▄▅▆▇█]/);
      assertMatch(colored, /\d\.\d{3} - \d\.\d{3} ms │█+ \d+/);
      for (
        const noColor of [
          await runInTerminal(args, true),
          await runInTerminal([...args, "--no-color"], false),
        ]
      ) {
        assert(!noColor.includes("\x1b["), noColor);
        assert(!noColor.includes("rtt per request"), noColor);
      }
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "client.ts -q on a terminal prints only the header and ping's summary, no picture",
  ignore: !HAS_SCRIPT,
  async fn() {
    await using server = await startServerProcess(["--quiet"]);
    const screen = await runInTerminal(
      ["client.ts", "127.0.0.1", String(server.port), "-c", "3", "-i", "0.01", "-q"],
      false,
    );
    assertMatch(screen, /^PING 127\.0\.0\.1 \(127\.0\.0\.1\) port \d+ \(udp\)/);
    assertMatch(screen, /3 packets transmitted, 3 received/);
    assert(!screen.includes("bytes from"), screen);
    assert(!screen.includes("rtt per request") && !screen.includes("│"), screen);
  },
});

Deno.test({
  name:
    "client.ts asks for its permissions before the first send: the time spent answering is not a round trip",
  ignore: !HAS_SCRIPT,
  async fn() {
    await using server = await startServerProcess(["--quiet"]);
    const command = [Deno.execPath(), "run", "client.ts", "127.0.0.1", String(server.port)]
      .concat(["-c", "2", "-i", "0.05", "-W", "0.5", "--no-color"]);
    const child = new Deno.Command("script", {
      args: ["-qec", command.map((arg) => `'${arg}'`).join(" "), "/dev/null"],
      cwd: ROOT,
      env: { NO_COLOR: "1", PATH: Deno.env.get("PATH") ?? "" },
      clearEnv: true,
      signal: AbortSignal.timeout(SCRIPT_TIMEOUT_MS),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let screen = "";
    let prompts = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      screen += value;
      const shown = screen.split("Allow?").length - 1;
      if (shown > prompts) {
        prompts = shown;
        // A person takes longer to answer than the run's timeout.
        await new Promise((resolve) => setTimeout(resolve, 700));
        await writer.write(new TextEncoder().encode("y\n"));
      }
    }
    await writer.close().catch(() => {});
    assertEquals((await child.status).code, 0, screen);
    assert(prompts >= 1, screen);
    assert(screen.lastIndexOf("Allow?") < screen.indexOf("PING 127"), screen);
    assertMatch(screen, /2 packets transmitted, 2 received, 0% packet loss/);
    assert(!screen.includes("(late)") && !screen.includes("Request timeout"), screen);
  },
});

Deno.test("client.ts --json prints one document with every figure and a record per request", async () => {
  const server = await startServerProcess(["--quiet", "--loss", "0.5", "--seed", "1"]);
  try {
    const client = await runClient(server.port, ["-c", "6", "-i", "0.01", "-W", "0.2", "--json"]);
    assertEquals(client.code, 0);
    const document = JSON.parse(client.stdout);
    assertEquals(document.target, `127.0.0.1:${server.port}`);
    assertEquals(document.options, {
      count: 6,
      interval: 0.01,
      timeout: 0.2,
      size: 64,
      deadline: null,
      flood: false,
    });
    assertEquals(document.transmitted, 6);
    assertEquals(document.pings.length, 6);
    const lost = document.pings.filter((record: { rtt: number | null }) => record.rtt === null);
    assertEquals(lost.length, 6 - document.received);
    for (const field of ["p50", "p90", "p99", "ipdv", "jitter", "mdev"]) {
      assertEquals(typeof document.rtt[field], "number");
    }
    assertEquals(document.lossSplit.upstream + document.lossSplit.unknown, 6 - document.received);
    assertEquals(typeof document.schedule.meanInterval, "number");
    const quiet = await runClient(server.port, ["-c", "2", "-i", "0.01", "--json", "-q"]);
    assertEquals(JSON.parse(quiet.stdout).pings, undefined);
  } finally {
    await server.stop();
  }
});

Deno.test("client.ts --json-lines prints one object per event, the summary last; exit codes unchanged", async () => {
  const server = await startServerProcess(["--quiet", "--silent"]);
  try {
    const client = await runClient(server.port, [
      "-c",
      "2",
      "-i",
      "0.01",
      "-W",
      "0.1",
      "--json-lines",
    ]);
    assertEquals(client.code, 1);
    const objects = client.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    assertEquals(objects.map((object) => object.type), [
      "sent",
      "sent",
      "timeout",
      "timeout",
      "summary",
    ]);
    assertEquals(objects.at(-1).summary.loss, 100);
    assertEquals(objects.at(-1).summary.rtt.avg, null);
  } finally {
    await server.stop();
  }
});

Deno.test("client.ts -f prints a dot per request and erases it per reply", async () => {
  const server = await startServerProcess([
    "--quiet",
    "--loss",
    "0.2",
    "--seed",
    "5",
    "--rate",
    "0",
  ]);
  try {
    const client = await runClient(server.port, ["-f", "-c", "100", "-W", "0.2"]);
    const [, flood = ""] = client.stdout.split("\n");
    const received = Number(/, (\d+) received/.exec(client.stdout)?.[1]);
    assertEquals(flood.split(".").length - 1, 100);
    assertEquals(flood.split("\b \b").length - 1, received);
    assert(received > 50 && received < 100, client.stdout);
  } finally {
    await server.stop();
  }
});

Deno.test("client.ts against a closed port reports loss, not an error: exit 1", async () => {
  // An unconnected Deno socket never sees ICMP port unreachable.
  const probe = udpSocket();
  const port = String((probe.addr as Deno.NetAddr).port);
  probe.close();
  await expectNoReply(port);
});

Deno.test("server.ts on every interface says, on stderr, that it is reachable from the network", async () => {
  const reachable =
    "notice: listening on every interface: this echo service is reachable from the network\n";
  const unknownSources =
    "notice: without --allow-sys=networkInterfaces, the broadcast addresses of this machine's networks and its own addresses are not known, and not refused as sources\n";
  for (const host of ["0.0.0.0", "::"]) {
    const server = await startServerProcess(["--quiet", "--host", host]);
    const stopped = await server.stop();
    assertEquals(stopped.code, 0);
    assertEquals(stopped.stderr, reachable + unknownSources);
    const listed = await startServerProcess(["--quiet", "--host", host], {
      permissions: ["--allow-net", "--allow-sys=networkInterfaces"],
    });
    const stoppedListed = await listed.stop();
    assertEquals(stoppedListed.code, 0);
    assertEquals(stoppedListed.stderr, reachable);
  }
});

/** Root, with setpriv to become nobody, on a system where port 80 is
 * privileged: only then can the test see a permission error. */
const CAN_DROP_ROOT = (() => {
  try {
    const probe = new Deno.Command("sh", {
      args: [
        "-c",
        "id -u && cat /proc/sys/net/ipv4/ip_unprivileged_port_start && command -v setpriv",
      ],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const [uid, firstUnprivileged] = new TextDecoder().decode(probe.stdout).split("\n");
    return probe.success && uid === "0" && Number(firstUnprivileged) > 80;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "server.ts on a privileged port without permission: one line, exit 2",
  ignore: !CAN_DROP_ROOT,
  async fn() {
    const denoDir = await Deno.makeTempDir();
    await Deno.chmod(denoDir, 0o777);
    try {
      const output = await new Deno.Command("setpriv", {
        args: [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          Deno.execPath(),
          "run",
          "--allow-net",
          "server.ts",
          "--port",
          "80",
        ],
        cwd: ROOT,
        env: { DENO_DIR: denoDir, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(output.code, 2);
      assertOneLineError(
        new TextDecoder().decode(output.stderr),
        /^server\.ts: cannot listen on 127\.0\.0\.1:80: permission denied$/,
      );
    } finally {
      await Deno.remove(denoDir, { recursive: true });
    }
  },
});

Deno.test("client.ts host:port host:port … pings every target, one summary line each; exit 1 unless all answered", async () => {
  const servers = await Promise.all([
    startServerProcess(["--quiet"]),
    startServerProcess(["--quiet", "--upper"]),
    startServerProcess(["--quiet", "--silent"]),
  ]);
  try {
    const targets = servers.map((server) => `127.0.0.1:${server.port}`);
    const args = [...targets, "-c", "3", "-i", "0.02", "-W", "0.2"];
    const all = await runScript("client.ts", args);
    assertEquals(all.code, 1);
    const lines = all.stdout.trimEnd().split("\n");
    assertEquals(lines[0], "PING 3 targets (udp): 64 data bytes");
    assertEquals(
      lines.filter((line) => line.startsWith(`${targets[0]} : 64 bytes from`)).length,
      3,
    );
    assertEquals(
      lines.filter((line) => line === `${targets[2]} : Request timeout for seq=1`).length,
      1,
    );
    assertMatch(
      lines.at(-3)!,
      new RegExp(`^${targets[0]} : xmt/rcv/%loss = 3/3/0%, min/avg/max = [\\d.]+/[\\d.]+/[\\d.]+$`),
    );
    assertMatch(
      lines.at(-2)!,
      new RegExp(`^${targets[1]} : xmt/rcv/%loss = 3/3/0%, min/avg/max = `),
    );
    assertEquals(lines.at(-1), `${targets[2]} : xmt/rcv/%loss = 3/0/100%`);
    const answering = await runScript("client.ts", [
      ...targets.slice(0, 2),
      "-c",
      "2",
      "-i",
      "0.02",
      "--json",
    ]);
    assertEquals(answering.code, 0);
    assertEquals(
      JSON.parse(answering.stdout).map((summary: { target: string }) => summary.target),
      targets.slice(0, 2),
    );
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
});

Deno.test("--version on both scripts prints the version from deno.json", async () => {
  const { version } = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  for (const script of ["client.ts", "server.ts"]) {
    const result = await runScript(script, ["--version"]);
    assertEquals(result.stdout, `udping ${script.replace(".ts", "")} ${version}\n`);
  }
});

Deno.test({
  name: "client.ts --chat on a terminal prompts with '> ' for each line",
  ignore: !HAS_SCRIPT,
  async fn() {
    const server = await startServerProcess(["--quiet", "--upper"]);
    try {
      const screen = await runInTerminal(
        ["client.ts", "127.0.0.1", String(server.port), "--chat"],
        true,
        "hello\nworld\n",
      );
      const from = `127.0.0.1:${server.port}`;
      assert(
        screen.includes(`> reply from ${from}: HELLO\r\n> reply from ${from}: WORLD\r\n> `),
        screen,
      );
    } finally {
      await server.stop();
    }
  },
});

Deno.test("client.ts runs with --allow-net narrowed to one server and the bind address", async () => {
  await using server = await startServerProcess(["--quiet"]);
  const narrowed = [`--allow-net=127.0.0.1:${server.port},0.0.0.0`];
  const args = (port: number) => ["127.0.0.1", String(port), "-c", "2", "-i", "0.01", "-W", "0.1"];
  const allowed = await runScript("client.ts", args(server.port), { permissions: narrowed });
  assertEquals(allowed.code, 0, allowed.stderr);
  // Anywhere else: refused before anything is sent, in one line.
  const other = await runScript("client.ts", args(server.port + 1), { permissions: narrowed });
  assertEquals([other.code, other.stdout], [2, ""]);
  assertOneLineError(
    other.stderr,
    new RegExp(
      `^client\\.ts: network permission denied: the client needs to send to 127\\.0\\.0\\.1:${
        server.port + 1
      } \\(run with --allow-net\\)$`,
    ),
  );
});

Deno.test("client.ts without --allow-net says so in one line, in its own words, before anything is printed", async () => {
  const cases: [string[], RegExp][] = [
    [["127.0.0.1", "9"], /the client needs a socket on 0\.0\.0\.0:0 \(run with --allow-net\)$/],
    [["::1", "9"], /the client needs a socket on \[::\]:0 \(run with --allow-net\)$/],
    [["localhost", "9"], /the client needs to look up 'localhost' \(run with --allow-net\)$/],
    [["127.0.0.1:9", "127.0.0.1:10"], /the client needs a socket on 0\.0\.0\.0:0/],
    [["127.0.0.1", "9", "--chat"], /the client needs a socket on 0\.0\.0\.0:0/],
    [["127.0.0.1", "9", "--send", "hi"], /the client needs a socket on 0\.0\.0\.0:0/],
  ];
  for (const [args, pattern] of cases) {
    // No terminal to prompt on: a permission not given is denied.
    const result = await runScript("client.ts", args, { permissions: [], stdin: "" });
    assertEquals([result.code, result.stdout], [2, ""], `${args.join(" ")}: ${result.stderr}`);
    assertOneLineError(result.stderr, new RegExp(`^client\\.ts: network permission denied: `));
    assertMatch(result.stderr.trimEnd(), pattern);
  }
});

Deno.test("several targets: a bad target or size is refused before anything is sent to the good ones", async () => {
  await using server = await startServerProcess([]);
  const good = `127.0.0.1:${server.port}`;
  const cases: [string[], RegExp][] = [
    [[good, "nosuch.invalid:45001"], /^client\.ts: cannot resolve host 'nosuch\.invalid'$/],
    [[good, "127.0.0.300:45001"], /^client\.ts: '127\.0\.0\.300' is not a valid IPv4 address$/],
    [
      ["[::1]:45001", good, "-s", "65520"],
      new RegExp(`^client\\.ts: ${good}: -s must be at most 65507 bytes over IPv4, got 65520$`),
    ],
  ];
  for (const [args, pattern] of cases) {
    const result = await runScript("client.ts", [...args, "-c", "3", "-i", "0.05"]);
    assertEquals([result.code, result.stdout], [2, ""], `${args.join(" ")}: ${result.stderr}`);
    assertOneLineError(result.stderr, pattern);
  }
  const stopped = await server.stop();
  assert(!/ bytes "PING /.test(stopped.stdout), `the server heard a ping:\n${stopped.stdout}`);
});
