/**
 * The two scripts as a user runs them: subprocesses with `--allow-net` and
 * nothing else, their output, and their exit codes.
 */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import { runScript, startServerProcess, udpSocket } from "./helpers.ts";

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
    const client = await runScript("client.ts", [
      "127.0.0.1",
      String(server.port),
      "-c",
      "3",
      "-i",
      "0.05",
    ]);
    assertEquals(client.code, 0, client.stderr);
    const lines = client.stdout.trimEnd().split("\n");
    assertEquals(lines[0], `PING 127.0.0.1:${server.port} (udp): 64 data bytes`);
    for (const [i, seq] of [1, 2, 3].entries()) {
      assertMatch(
        lines[i + 1]!,
        new RegExp(
          `^64 bytes from 127\\.0\\.0\\.1:${server.port}: seq=${seq} time=\\d+(\\.\\d+)? ms$`,
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
    assertEquals(lines.length, 8);
    assertEquals(client.stderr, "");
  } finally {
    const stopped = await server.stop("SIGTERM");
    assertEquals(stopped.code, 0);
    assertMatch(
      stopped.stdout,
      /3 received, 3 replied, 0 dropped, 0 ignored, 0 failed sends, 1 clients/,
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
    const client = await runScript("client.ts", [
      "127.0.0.1",
      String(server.port),
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
  } finally {
    await server.stop();
  }
});

Deno.test("client.ts -q prints only the header and the summary", async () => {
  const server = await startServerProcess(["--quiet"]);
  try {
    const client = await runScript("client.ts", [
      "127.0.0.1",
      String(server.port),
      "-c",
      "2",
      "-i",
      "0.05",
      "-q",
    ]);
    assertEquals(client.code, 0);
    assertEquals(client.stdout.trimEnd().split("\n").length, 5);
    assert(!client.stdout.includes("bytes from"));
  } finally {
    await server.stop();
  }
});

Deno.test("client.ts exits 1 when -c replies did not all come by the -w deadline", async () => {
  const server = await startServerProcess(["--quiet", "--loss", "1"]);
  try {
    const client = await runScript("client.ts", [
      "127.0.0.1",
      String(server.port),
      "-c",
      "3",
      "-w",
      "0.3",
      "-i",
      "0.05",
    ]);
    assertEquals(client.code, 1);
  } finally {
    await server.stop();
  }
});

Deno.test("client.ts --chat sends standard input line by line, without a prompt when piped", async () => {
  const server = await startServerProcess(["--quiet", "--upper"]);
  try {
    const client = await runScript("client.ts", ["127.0.0.1", String(server.port), "--chat"], {
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
  [["-c", "0"], /-c must be a whole number of at least 1, got '0'/],
  [["-c", "abc"], /-c must be a whole number of at least 1, got 'abc'/],
  [["-c", "1.5"], /-c must be a whole number/],
  [["-i", "0"], /-i must be a number above 0, got '0'/],
  [["-W", "-1"], /option '-W' needs a value/],
  [["-W=x"], /-W must be a number above 0/],
  [["-s", "65508"], /-s must be a whole number from 0 to 65507, got '65508'/],
  [["-w", "0"], /-w must be a number above 0/],
  [["--retries", "-1"], /option '--retries' needs a value/],
  [["127.0.0.1", "70000"], /port must be a whole number from 1 to 65535, got '70000'/],
  [["127.0.0.1", "0"], /port must be a whole number from 1 to 65535, got '0'/],
  [["127.0.0.1", "http"], /port must be a whole number from 1 to 65535, got 'http'/],
  [["127.0.0.1", "1", "extra"], /unexpected argument 'extra'/],
  [["--bogus"], /unknown option '--bogus'/],
  [["-x"], /unknown option '-x'/],
  [["nonexistent.invalid", "12000", "-c", "1"], /cannot resolve host 'nonexistent\.invalid'/],
  [["300.1.1.1", "12000", "-c", "1"], /'300\.1\.1\.1' is not a valid IPv4 address/],
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
  [["--delay=-5"], /--delay must be a number of at least 0, got '-5'/],
  [["--seed", "1.5"], /--seed must be a whole number/],
  [["--port", "70000"], /port must be a whole number from 0 to 65535, got '70000'/],
  [["--upper", "--silent"], /choose one reply mode, not --upper and --silent/],
  [["--prefix", "x".repeat(65)], /prefix must be at most 64 bytes/],
  [
    ["--host", "10.255.255.254", "--port", "0"],
    /cannot listen on 10\.255\.255\.254:0: the address is not on this host/,
  ],
  [["--host", "nonexistent.invalid"], /cannot resolve host 'nonexistent\.invalid'/],
  [["--nope"], /unknown option '--nope'/],
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
