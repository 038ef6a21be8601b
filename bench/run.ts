/**
 * `deno task bench`: udping side by side with native peers, on loopback.
 * A benchmark, not a test: it measures, prints eight tables with each
 * figure beside its target (PASS/MISS), and asserts nothing.
 *
 * 1. Server reply rate under a C load generator (64, then 256 requests in
 *    flight).
 * 2. Client RTT overhead: udping's client vs a C ping-pong client.
 * 3. Server added latency: udping's server vs a C echo server.
 * 4. Schedule accuracy: 1,000 pings at 10 ms.
 * 5. Memory: server RSS over 1M requests, client RSS for 100,000 pings.
 * 6. RTT a user sees (bench/rtt.ts): ping-like runs at 10 ms and 200 ms,
 *    unpinned, beside ping, irtt, a bare Deno loop and a kernel-stamped
 *    client. This is the figure a user gets; tables 2 and 3 (`-f` hot
 *    loops, pinned) are a second view, of the code path alone.
 * 7. Warm-up (bench/warm_up.ts): the median RTT of seq 1 and seq 2 beside
 *    seq 3–10's, over 20 fresh runs of `-c 10 -i 0.2`, udping's client
 *    against the C echo and a Python textbook client against a fresh
 *    udping server.
 * 8. Client at the runtime's floor and at its CPU (bench/rtt.ts): udping's
 *    client (--allow-net, --allow-ffi) beside the bare Deno loop, p50 and
 *    CPU as ratios, one row per goal.
 *
 * Every row is measured in the same run, contenders alternating, in
 * ROUNDS rounds; a cell is the median with the min–max range. Processes
 * are pinned with `taskset` where placement matters: loopback RTT on this
 * kind of machine is ~10 µs on one CPU and ~40-55 µs across two.
 *
 * ```sh
 * deno task bench            # about half an hour (table 6 takes ~27 min, 7 ~3 min)
 * deno task bench --quick    # one round, shorter runs (table 6: ~3 min)
 * deno task bench --tables=1,2   # only those tables
 * ```
 *
 * @module
 */

import { cpuSecondsOf, memoryOf } from "./procfs.ts";
import { clientFloor, userRtt } from "./rtt.ts";
import { warmUp } from "./warm_up.ts";
import {
  available,
  freePort,
  has,
  median,
  sleep,
  stdoutOf,
  succeeds,
  table,
  waitForEcho,
} from "./tools.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const QUICK = Deno.args.includes("--quick");
/** `--tables=1,2,6`: only those tables (all eight by default). */
const TABLES = (Deno.args.find((arg) => arg.startsWith("--tables="))?.slice(9) ?? "1,2,3,4,5,6,7,8")
  .split(",");
const ROUNDS = QUICK ? 1 : 3;
const RATE_SECONDS = QUICK ? 1.5 : 3;
const PINGS = QUICK ? 1000 : 5000;

// ---------------------------------------------------------------- tools

interface Natives {
  loadgen: string[];
  echo?: string[];
  pingpong?: string[];
}

/** Compiles the C peers, or falls back to the Deno load generator. */
async function natives(): Promise<Natives> {
  if (await available("cc", "gcc")) {
    const out = await Deno.makeTempDir({ prefix: "udping-bench-" });
    for (const name of ["loadgen", "echo", "pingpong"]) {
      const compiled = await succeeds("cc", [
        "-O2",
        "-o",
        `${out}/${name}`,
        `${ROOT}bench/${name}.c`,
      ]);
      if (!compiled) throw new Error(`cc could not compile bench/${name}.c`);
    }
    return {
      loadgen: [`${out}/loadgen`],
      echo: [`${out}/echo`],
      pingpong: [`${out}/pingpong`],
    };
  }
  console.log(
    "bench: WARNING: no C compiler; the load generator is the Deno one (it may be the " +
      "bottleneck) and the C reference rows are left out",
  );
  return { loadgen: [Deno.execPath(), "run", "--allow-net", `${ROOT}bench/loadgen.ts`] };
}

// ------------------------------------------------------------ processes

/** A server under test, started as a subprocess. */
interface Running {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

const TASKSET = await has("taskset");

/** `command` pinned to `cpu` with taskset, when both are there. */
function pin(command: string[], cpu?: number): string[] {
  return cpu === undefined || !TASKSET ? command : ["taskset", "-c", String(cpu), ...command];
}

/**
 * Starts `command` (with `{port}` replaced), pinned to `cpu` if given, and
 * waits until it echoes. socat's UDP-LISTEN serves only the first peer it
 * hears from, so it is given a moment instead of a probe.
 */
async function start(command: string[], cpu?: number): Promise<Running> {
  const port = freePort();
  const args = command.map((arg) => arg.replaceAll("{port}", String(port)));
  const pinned = pin(args, cpu);
  const child = new Deno.Command(pinned[0]!, {
    args: pinned.slice(1),
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  if (command[0] === "socat") await sleep(300);
  else await waitForEcho(port);
  // taskset execs the command: the pid is the server's own.
  return {
    pid: child.pid,
    port,
    async stop() {
      // socat may have ended on its own (its peer went away): nothing to stop.
      try {
        child.kill("SIGKILL");
      } catch {
        // Already ended.
      }
      await child.status;
    },
  };
}

/** Runs a command to completion and returns its stdout. */
function run(command: string[], cpu?: number): Promise<string> {
  return stdoutOf(pin(command, cpu), ROOT);
}

const field = (text: string, name: string) =>
  Number(new RegExp(`${name}=([\\d.]+)`).exec(text)?.[1] ?? NaN);

// ---------------------------------------------------------------- output

const range = (values: number[], digits = 0) =>
  values.length > 1
    ? ` (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`
    : "";
const cell = (values: number[], digits = 0) =>
  `${median(values).toFixed(digits)}${range(values, digits)}`;
const verdict = (pass: boolean) => (pass ? "PASS" : "MISS");

// ------------------------------------------------------------- the runs

/** udping's server under load: quiet, and no rate limit (the load is one address). */
const udpingServer = (permissions: string[], extra: string[] = []) => [
  Deno.execPath(),
  "run",
  ...permissions,
  "server.ts",
  "--port",
  "{port}",
  "--quiet",
  "--rate",
  "0",
  ...extra,
];
const UDPING_SERVER = udpingServer(["--allow-net"]);
const UDPING_FAST_SERVER = udpingServer(["--allow-net", "--allow-ffi"], ["--fast"]);
/** udping's server as users start it, a log line per datagram (to /dev/null here). */
const UDPING_LOGGING_SERVER = UDPING_SERVER.filter((arg) => arg !== "--quiet");
const LOGGING = "udping server.ts (a log line per datagram)";
/** The runtime's floor: `receive(buf)`, `send`, nothing else (bench/bare_loop.ts). */
const BARE_DENO_SERVER = [
  Deno.execPath(),
  "run",
  "--allow-net",
  "bench/bare_loop.ts",
  "--server",
  "{port}",
];
const BARE_DENO = "bare Deno receive(buf)/send loop";

/** Requests the load generator keeps in flight in table 1: a client's
 * window, and a burst longer than the fast socket's batch of 64. */
const WINDOWS = [64, 256];

async function replyRate(tools: Natives): Promise<void> {
  const contenders: [string, string[]][] = [
    ["udping server.ts --quiet", UDPING_SERVER],
    [LOGGING, UDPING_LOGGING_SERVER],
    ["udping server.ts --quiet --fast", UDPING_FAST_SERVER],
    [BARE_DENO, BARE_DENO_SERVER],
  ];
  if (await available("python3", "python3")) {
    contenders.push(["Python 3 textbook server", [
      "python3",
      "tests/peers/udp_echo_server.py",
      "{port}",
    ]]);
  }
  if (tools.echo) {
    contenders.unshift(["C recvfrom/sendto (reference)", [...tools.echo, "127.0.0.1", "{port}"]]);
  }
  if (await available("socat", "socat")) {
    contenders.push(["socat UDP-LISTEN … PIPE", [
      "socat",
      "UDP4-LISTEN:{port},bind=127.0.0.1",
      "PIPE",
    ]]);
  }
  for (const window of WINDOWS) await replyRateAt(tools, contenders, window);
}

/** Table 1 at `window` requests in flight, and its targets. */
async function replyRateAt(
  tools: Natives,
  contenders: [string, string[]][],
  window: number,
): Promise<void> {
  const rates = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  const peak = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, command] of contenders) {
      const server = await start(command);
      const cpuBefore = await cpuSecondsOf(server.pid);
      const output = await run([
        ...tools.loadgen,
        "127.0.0.1",
        String(server.port),
        String(RATE_SECONDS),
        String(window),
        "64",
      ]);
      const cpuAfter = await cpuSecondsOf(server.pid);
      const memory = await memoryOf(server.pid);
      await server.stop();
      rates.set(name, [...(rates.get(name) ?? []), field(output, "rate")]);
      cpu.set(name, [...(cpu.get(name) ?? []), cpuAfter - cpuBefore]);
      peak.set(name, [...(peak.get(name) ?? []), memory.peak]);
    }
  }
  const reference = median(rates.get(contenders[0]![0]) ?? []);
  const pythonRounds = rates.get("Python 3 textbook server") ?? [];
  const python = median(pythonRounds);
  const udping = median(rates.get("udping server.ts --quiet") ?? []);
  table(
    `1. Server reply rate: ${
      tools.echo ? "C" : "Deno"
    } load generator, ${window} in flight, ${RATE_SECONDS} s, ${ROUNDS} rounds`,
    ["server", "replies/s", "ratio to C", "server CPU s", "peak RSS MB"],
    contenders.map(([name]) => [
      name,
      cell(rates.get(name)!),
      (median(rates.get(name)!) / reference).toFixed(2),
      cell(cpu.get(name)!, 2),
      Math.max(...peak.get(name)!).toFixed(1),
    ]),
  );
  console.log(
    `\ntarget, --allow-net only, ${window} in flight: udping ≥ Python (${
      (python / reference).toFixed(2)
    } of C): ${(udping / reference).toFixed(2)} ${verdict(udping >= python)}; ` +
      `milestone ≥ 0.55 of C: ${verdict(udping / reference >= 0.55)}`,
  );
  // The verdict, the log and the counters are what udping adds to the
  // runtime's own receive and send: its share of the bare loop's rate.
  const bare = median(rates.get(BARE_DENO) ?? []);
  const logging = median(rates.get(LOGGING) ?? []);
  console.log(
    `\ntarget, --allow-net ≥ 0.95× the bare Deno loop, ${window} in flight: ` +
      `${(udping / bare).toFixed(2)} ${verdict(udping >= 0.95 * bare)} ` +
      `(with a log line per datagram, as users start it: ${(logging / bare).toFixed(2)})`,
  );
  const fastRounds = rates.get("udping server.ts --quiet --fast") ?? [];
  const fast = median(fastRounds);
  const ahead = fastRounds.every((rate, round) => !(rate <= (pythonRounds[round] ?? 0)));
  console.log(
    `\ntarget, --fast (--allow-ffi), ${window} in flight: ahead of Python in every round ` +
      `(${fastRounds.map((rate, round) => `${rate} vs ${pythonRounds[round]}`).join(", ")}): ` +
      `${verdict(ahead)}; ≥ 1.0× C: ${(fast / reference).toFixed(2)} ${verdict(fast >= reference)}`,
  );
}

/** Median and p99 RTT in µs of a udping client run (flood: one in flight). */
async function udpingRtt(port: number, cpu: number): Promise<[number, number]> {
  const output = await run(
    [
      Deno.execPath(),
      "run",
      "--allow-net",
      "client.ts",
      "127.0.0.1",
      String(port),
      "-f",
      "-c",
      String(PINGS),
      "-q",
      "--json",
    ],
    cpu,
  );
  const { rtt } = JSON.parse(output);
  return [rtt.p50 * 1000, rtt.p99 * 1000];
}

async function cRtt(pingpong: string[], port: number, cpu: number): Promise<[number, number]> {
  const output = await run([...pingpong, "127.0.0.1", String(port), String(PINGS)], cpu);
  return [field(output, "median_us"), field(output, "p99_us")];
}

const PLACEMENTS: [string, number][] = [["same CPU", 0], ["across CPUs", 1]];

/** [median, p99] in µs of each round. */
type RttRuns = [number, number][];

/**
 * The table rows of one placement, the C reference first and then each
 * udping contender, and the verdicts on their medians against the 1.3×
 * target.
 */
function compareRtt(
  placement: string,
  reference: [string, RttRuns],
  contenders: [string, RttRuns][],
): { rows: string[][]; verdicts: string[] } {
  const base = median(reference[1].map((r) => r[0]));
  const row = (name: string, runs: RttRuns, ratioText: string) => [
    placement,
    name,
    cell(runs.map((r) => r[0]), 1),
    cell(runs.map((r) => r[1]), 1),
    ratioText,
  ];
  const ratios = contenders.map(([, runs]) => median(runs.map((r) => r[0])) / base);
  return {
    rows: [
      row(reference[0], reference[1], "1.00"),
      ...contenders.map(([name, runs], i) => row(name, runs, ratios[i]!.toFixed(2))),
    ],
    verdicts: contenders.map(([name], i) =>
      `${name}, ${placement}: ${ratios[i]!.toFixed(2)} ${verdict(ratios[i]! <= 1.3)}`
    ),
  };
}

async function clientOverhead(tools: Natives): Promise<void> {
  if (!tools.echo || !tools.pingpong) {
    return console.log("\n2. Client RTT overhead: skipped (no C compiler)");
  }
  const rows: string[][] = [];
  const verdicts: string[] = [];
  const server = await start([...tools.echo, "127.0.0.1", "{port}"], 0);
  try {
    for (const [placement, cpu] of PLACEMENTS) {
      const c: RttRuns = [];
      const ours: RttRuns = [];
      for (let round = 0; round < ROUNDS; round++) {
        c.push(await cRtt(tools.pingpong, server.port, cpu));
        ours.push(await udpingRtt(server.port, cpu));
      }
      const compared = compareRtt(placement, ["C ping-pong", c], [["udping client.ts -f", ours]]);
      rows.push(...compared.rows);
      verdicts.push(...compared.verdicts);
    }
  } finally {
    await server.stop();
  }
  table(
    `2. Client RTT overhead: against the C echo server on CPU 0, ${PINGS} pings one at a time, ${ROUNDS} rounds`,
    ["client on", "client", "median µs", "p99 µs", "ratio"],
    rows,
  );
  console.log(`\ntarget: client median ≤ 1.3× C's: ${verdicts.join("; ")}`);
}

async function serverLatency(tools: Natives): Promise<void> {
  if (!tools.echo || !tools.pingpong) {
    return console.log("\n3. Server added latency: skipped (no C compiler)");
  }
  const servers: [string, string[]][] = [
    ["C echo", [...tools.echo, "127.0.0.1", "{port}"]],
    ["udping server.ts", UDPING_SERVER],
    ["udping server.ts --fast", UDPING_FAST_SERVER],
  ];
  const rows: string[][] = [];
  const verdicts: string[] = [];
  for (const [placement, cpu] of PLACEMENTS) {
    const runs = new Map<string, RttRuns>(servers.map(([name]) => [name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, command] of servers) {
        const server = await start(command, 0);
        runs.get(name)!.push(await cRtt(tools.pingpong, server.port, cpu));
        await server.stop();
      }
    }
    const [referenceName, ...ours] = servers.map(([name]) => name) as [string, ...string[]];
    const compared = compareRtt(
      placement,
      [referenceName, runs.get(referenceName)!],
      ours.map((name) => [name, runs.get(name)!]),
    );
    rows.push(...compared.rows);
    verdicts.push(...compared.verdicts);
  }
  table(
    `3. Server added latency: C ping-pong client, server on CPU 0, ${PINGS} pings, ${ROUNDS} rounds`,
    ["client on", "server", "median µs", "p99 µs", "ratio"],
    rows,
  );
  console.log(`\ntarget: server median ≤ 1.3× C's: ${verdicts.join("; ")}`);
}

async function schedule(tools: Natives): Promise<void> {
  const server = await start(tools.echo ? [...tools.echo, "127.0.0.1", "{port}"] : UDPING_SERVER);
  const intervals: number[] = [];
  const lateness: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const output = await run([
        Deno.execPath(),
        "run",
        "--allow-net",
        "client.ts",
        "127.0.0.1",
        String(server.port),
        "-c",
        "1000",
        "-i",
        "0.01",
        "-q",
        "--json",
      ]);
      const { schedule } = JSON.parse(output);
      intervals.push(schedule.meanInterval);
      lateness.push(schedule.p99Lateness);
    }
  } finally {
    await server.stop();
  }
  const drift = Math.abs(median(intervals) - 10) / 10 * 100;
  table(
    `4. Schedule accuracy: 1,000 pings at -i 0.01, ${ROUNDS} rounds`,
    ["figure", "measured", "target", ""],
    [
      ["mean interval ms", cell(intervals, 4), "10 ± 0.1%", verdict(drift <= 0.1)],
      ["p99 send lateness ms", cell(lateness, 3), "< 1", verdict(median(lateness) < 1)],
    ],
  );
}

/** Peak RSS of a process, polled until it ends. */
async function peakWhileRunning(command: string[]): Promise<number> {
  const child = new Deno.Command(command[0]!, {
    args: command.slice(1),
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let peak = 0;
  let done = false;
  child.status.then(() => done = true);
  while (!done) {
    const memory = await memoryOf(child.pid);
    peak = Math.max(peak, memory.peak);
    await sleep(100);
  }
  return peak;
}

async function memory(tools: Natives): Promise<void> {
  const server = await start(UDPING_SERVER);
  let rows: string[][];
  try {
    const atStart = (await memoryOf(server.pid)).rss;
    await run([...tools.loadgen, "127.0.0.1", String(server.port), "60", "64", "64", "100000"]);
    const at100k = (await memoryOf(server.pid)).rss;
    await run([...tools.loadgen, "127.0.0.1", String(server.port), "120", "64", "64", "900000"]);
    const at1m = await memoryOf(server.pid);
    const growth = ((at1m.rss - at100k) / at100k) * 100;
    rows = [
      ["server RSS at start", atStart.toFixed(1), "", ""],
      ["server RSS after 100k requests", at100k.toFixed(1), "", ""],
      [
        "server RSS after 1M requests",
        at1m.rss.toFixed(1),
        "within 10% of 100k",
        `${growth.toFixed(1)}% ${verdict(growth <= 10)}`,
      ],
      ["server peak RSS", at1m.peak.toFixed(1), "≤ 45", verdict(at1m.peak <= 45)],
    ];
  } finally {
    await server.stop();
  }
  const echo = await start(tools.echo ? [...tools.echo, "127.0.0.1", "{port}"] : UDPING_SERVER);
  try {
    const client = (count: number) =>
      peakWhileRunning([
        Deno.execPath(),
        "run",
        "--allow-net",
        "client.ts",
        "127.0.0.1",
        String(echo.port),
        "-f",
        "-c",
        String(count),
        "-q",
      ]);
    const small = await client(10_000);
    const large = await client(100_000);
    const bounded = large <= small * 1.1;
    rows.push(["client peak RSS, 10,000 pings", small.toFixed(1), "", ""]);
    rows.push([
      "client peak RSS, 100,000 pings",
      large.toFixed(1),
      "≤ 10k's + 10%",
      verdict(bounded),
    ]);
  } finally {
    await echo.stop();
  }
  table("5. Memory (MB)", ["figure", "MB", "target", ""], rows);
}

if (import.meta.main) {
  const cpuInfo =
    (await run(["sh", "-c", "nproc; grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"])).trim()
      .split("\n");
  console.log(
    `udping bench: ${cpuInfo[0]} CPUs,${cpuInfo[1] ?? ""}, Deno ${Deno.version.deno}, ${
      new Date().toISOString()
    }`,
  );
  if (!TASKSET) console.log("bench: WARNING: no taskset; placements are not pinned");
  const tools = await natives();
  const tables = [replyRate, clientOverhead, serverLatency, schedule, memory];
  for (const [i, measure] of tables.entries()) {
    if (TABLES.includes(String(i + 1))) await measure(tools);
  }
  if (TABLES.includes("6")) await userRtt(tools.echo);
  if (TABLES.includes("7")) await warmUp(tools.echo);
  if (TABLES.includes("8")) await clientFloor(tools.echo);
}
