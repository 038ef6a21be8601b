/**
 * Table 6 of `deno task bench`, "RTT a user sees": what `ping`-like use of
 * udping reports, beside references that show where the time goes.
 *
 * Every row pings one probe at a time on loopback at 10 ms and at 200 ms,
 * alternating with the other rows in each round, and nothing is pinned
 * (users don't pin, so the scheduler's placement is part of the figure):
 *
 * - `ping` (ICMP, answered by the kernel: no process wakes on the far side);
 * - `irtt client` → `irtt server` (Go, the tool this compares with);
 * - a bare Deno loop (bench/bare_loop.ts): the runtime's floor;
 * - a Python client reading the kernel's SO_TIMESTAMPNS receive stamp
 *   (bench/stamp_client.py): RTT without the client's wake-up;
 * - udping's client.ts with `--allow-net`, then with `--allow-ffi`;
 *
 * against the C echo server (bench/echo.c), udping's server.ts, and
 * server.ts `--fast`; plus a bare Deno echo loop as the reference for a
 * Deno server's wake-up. A cell is the median over rounds with the min–max
 * range; client CPU is the user+system time of the client process, from
 * `/usr/bin/time`. Targets follow the table as PASS/MISS, then a schedule
 * table: udping's send lateness beside irtt's timer error.
 *
 * ```sh
 * deno run --allow-net --allow-run --allow-read --allow-write --allow-env bench/rtt.ts [--quick]
 * deno run --allow-net --allow-run --allow-read --allow-write --allow-env bench/rtt.ts --floor  # table 8
 * ```
 *
 * Full: 3 rounds of 1,000 probes at 10 ms and 100 at 200 ms per row, about
 * 27 minutes; `--quick`: 1 round of 300 and 30, about 3 minutes.
 *
 * @module
 */

import { available, freePort, median, sleep, succeeds, table, waitForEcho } from "./tools.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const QUICK = Deno.args.includes("--quick");
const ROUNDS = QUICK ? 1 : 3;
/** Interval in ms and probes per run. */
const INTERVALS: [number, number][] = QUICK ? [[10, 300], [200, 30]] : [[10, 1000], [200, 100]];
const DENO = Deno.execPath();
const TIME = "/usr/bin/time";

/** A client's send lateness, µs, and its mean interval, ms. */
interface Lateness {
  meanInterval?: number;
  mean?: number;
  p99?: number;
  max?: number;
}

/** One client run: RTT percentiles in µs and the client's CPU seconds. */
interface Sample {
  p50: number;
  p90: number;
  p99: number;
  cpu: number;
  schedule?: Lateness;
  /** The clock udping's --json summary says it timed with, when it says. */
  clock?: string;
}

type Figures = Omit<Sample, "cpu">;

interface Client {
  name: string;
  /** The command line; `out` is a scratch file for output written to a file. */
  command(port: number, intervalMs: number, count: number, out: string): string[];
  read(stdout: string, out: string): Promise<Figures> | Figures;
}

interface Server {
  name: string;
  /** With `{port}` where the port goes. */
  command: string[];
  /** irtt's server does not echo plain datagrams: wait instead of probing. */
  irtt?: boolean;
}

interface Row {
  client: Client;
  server?: Server;
}

// ---------------------------------------------------------------- tools

/** Compiles bench/echo.c when this runs alone (run.ts passes its own build). */
async function buildEcho(): Promise<string[] | undefined> {
  if (!(await available("cc", "gcc"))) return undefined;
  const out = await Deno.makeTempDir({ prefix: "udping-rtt-" });
  const built = await succeeds("cc", ["-O2", "-o", `${out}/echo`, `${ROOT}bench/echo.c`]);
  return built ? [`${out}/echo`] : undefined;
}

/** Kills a child unless it has already exited, and reaps it. */
async function end(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch { /* it has already exited */ }
  await child.status;
}

/** Starts a server, unpinned, and waits until it answers. */
async function start(server: Server): Promise<{ port: number; stop(): Promise<void> }> {
  const port = freePort();
  const args = server.command.map((arg) => arg.replaceAll("{port}", String(port)));
  const child = new Deno.Command(args[0]!, {
    args: args.slice(1),
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  try {
    if (server.irtt) await sleep(300);
    else await waitForEcho(port);
  } catch (error) {
    await end(child);
    throw new Error(`${server.name}: ${error}\n${(await stderr).trim()}`);
  }
  return {
    port,
    stop: () => end(child),
  };
}

/** Runs a client, unpinned, under `/usr/bin/time`: its stdout and CPU seconds. */
async function timed(command: string[]): Promise<{ stdout: string; cpu: number }> {
  const times = await Deno.makeTempFile({ prefix: "udping-rtt-time-" });
  const output = await new Deno.Command(TIME, {
    args: ["-f", "%U %S", "-o", times, ...command],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  // On failure, time writes "Command exited with non-zero status N" first.
  const last = (await Deno.readTextFile(times)).trim().split("\n").at(-1) ?? "";
  await Deno.remove(times);
  const [user, system] = last.split(" ").map(Number);
  if (!output.success) console.error(`bench: ${command.join(" ")} failed`);
  return {
    stdout: new TextDecoder().decode(output.stdout),
    cpu: output.success ? user! + system! : NaN,
  };
}

// ---------------------------------------------------------- the clients

/** Nearest-rank percentiles, as lib/client/stats.ts computes them. */
function percentiles(rtts: number[]): Figures {
  const sorted = rtts.filter((rtt) => Number.isFinite(rtt)).sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
  return { p50: rank(50), p90: rank(90), p99: rank(99) };
}

/** One RTT in µs a line, as bare_loop.ts and stamp_client.py print them. */
const perLine = (stdout: string) => percentiles(stdout.trim().split("\n").map(Number));

const PING: Client = {
  name: "ping (ICMP, kernel echo)",
  command: (
    _port,
    ms,
    count,
  ) => ["ping", "-n", "-c", `${count}`, "-i", `${ms / 1000}`, "127.0.0.1"],
  read: (stdout) =>
    percentiles([...stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000)),
};

const IRTT: Client = {
  name: "irtt client",
  command: (port, ms, count, out) => [
    "irtt",
    "client",
    "-i",
    `${ms}ms`,
    "-d",
    `${ms * count}ms`,
    "-Q",
    "-o",
    `${out}.json`,
    `127.0.0.1:${port}`,
  ],
  read: (_stdout, out) => readIrtt(`${out}.json`),
};

/** RTTs from `round_trips[].delay.rtt` (ns), lateness from `stats.timer_error`. */
async function readIrtt(file: string): Promise<Figures> {
  const json = JSON.parse(await Deno.readTextFile(file));
  await Deno.remove(file);
  interface RoundTrip {
    lost: string;
    delay: { rtt?: number };
    timestamps: { client: { send: { monotonic: number } } };
  }
  const trips: RoundTrip[] = json.round_trips ?? [];
  const sends = trips.map((trip) => trip.timestamps.client.send.monotonic);
  const span = (sends.at(-1)! - sends[0]!) / (sends.length - 1);
  return {
    ...percentiles(
      trips.filter((trip) => trip.lost === "false").map((trip) => trip.delay.rtt! / 1000),
    ),
    schedule: {
      meanInterval: span / 1e6,
      mean: json.stats.timer_error.mean / 1000,
      max: json.stats.timer_error.max / 1000,
    },
  };
}

const BARE: Client = {
  name: "bare Deno loop",
  command: (port, ms, count) => [
    DENO,
    "run",
    "--allow-net",
    "bench/bare_loop.ts",
    "127.0.0.1",
    `${port}`,
    `${count}`,
    `${ms}`,
  ],
  read: perLine,
};

const STAMPED: Client = {
  name: "Python SO_TIMESTAMPNS",
  command: (port, ms, count) => [
    "python3",
    "bench/stamp_client.py",
    "127.0.0.1",
    `${port}`,
    `${count}`,
    `${ms}`,
  ],
  read: perLine,
};

/** udping's client.ts with `permissions`; figures from its `--json` summary. */
const udping = (name: string, permissions: string[]): Client => ({
  name,
  command: (port, ms, count) => [
    DENO,
    "run",
    ...permissions,
    "client.ts",
    "127.0.0.1",
    `${port}`,
    "-c",
    `${count}`,
    "-i",
    `${ms / 1000}`,
    "-q",
    "--json",
  ],
  read: (stdout) => {
    const { rtt, schedule, clock } = JSON.parse(stdout);
    return {
      clock,
      p50: rtt.p50 * 1000,
      p90: rtt.p90 * 1000,
      p99: rtt.p99 * 1000,
      schedule: {
        meanInterval: schedule.meanInterval,
        mean: schedule.meanLateness === undefined ? undefined : schedule.meanLateness * 1000,
        p99: schedule.p99Lateness * 1000,
        max: schedule.worstLateness * 1000,
      },
    };
  },
});

const UDPING_NET = udping("udping --allow-net", ["--allow-net"]);
const UDPING_FFI = udping("udping --allow-ffi", ["--allow-net", "--allow-ffi"]);

// ---------------------------------------------------------- the servers

const udpingServer = (name: string, permissions: string[], extra: string[] = []): Server => ({
  name,
  command: [DENO, "run", ...permissions, "server.ts", "--quiet", "--rate", "0", ...extra]
    .concat(["--port", "{port}"]),
});

const UDPING_SERVER = udpingServer("udping server", ["--allow-net"]);
const FAST_SERVER = udpingServer("udping server --fast", ["--allow-net", "--allow-ffi"], [
  "--fast",
]);
const BARE_SERVER: Server = {
  name: "bare Deno echo",
  command: [DENO, "run", "--allow-net", "bench/bare_loop.ts", "--server", "{port}"],
};
const BARE_FFI_SERVER: Server = {
  name: "bare Deno FFI echo",
  command: [DENO, "run", "--allow-ffi", "bench/bare_loop.ts", "--ffi-server", "{port}"],
};
const IRTT_SERVER: Server = {
  name: "irtt server",
  command: ["irtt", "server", "-b", "127.0.0.1:{port}"],
  irtt: true,
};
const C_ECHO = "C echo";

/** Every row whose tools are here, grouped by server. */
async function rows(echo: string[] | undefined): Promise<Row[]> {
  const list: Row[] = [];
  if (await available("ping", "iputils-ping")) list.push({ client: PING });
  if (await available("irtt", "irtt")) list.push({ client: IRTT, server: IRTT_SERVER });
  const python = await available("python3", "python3");
  const clients = [BARE, ...(python ? [STAMPED] : []), UDPING_NET, UDPING_FFI];
  const servers: Server[] = [UDPING_SERVER, FAST_SERVER];
  if (echo) servers.unshift({ name: C_ECHO, command: [...echo, "127.0.0.1", "{port}"] });
  for (const server of servers) {
    for (const client of clients) list.push({ client, server });
  }
  list.push({ client: python ? STAMPED : BARE, server: BARE_SERVER });
  if (python) list.push({ client: STAMPED, server: BARE_FFI_SERVER });
  return list;
}

// ------------------------------------------------------------- the runs

const rowName = (row: Row) =>
  row.server ? `${row.client.name} → ${row.server.name}` : row.client.name;
const key = (ms: number, client: Client, server?: Server) =>
  `${ms} ${client.name} → ${server?.name ?? ""}`;

async function measure(row: Row, ms: number, count: number): Promise<Sample> {
  let server;
  try {
    server = row.server ? await start(row.server) : undefined;
  } catch (error) {
    console.error(`bench: ${rowName(row)} left out of this round: ${error}`);
    return { p50: NaN, p90: NaN, p99: NaN, cpu: NaN };
  }
  const out = await Deno.makeTempFile({ prefix: "udping-rtt-" });
  try {
    const { stdout, cpu } = await timed(row.client.command(server?.port ?? 0, ms, count, out));
    try {
      return { ...(await row.client.read(stdout, out)), cpu };
    } catch (error) {
      console.error(`bench: cannot read ${rowName(row)}: ${error}`);
      return { p50: NaN, p90: NaN, p99: NaN, cpu };
    }
  } finally {
    await server?.stop();
    await Deno.remove(out).catch(() => {});
  }
}

/** Every row at every interval, rows alternating within each round. */
async function measureAll(list: Row[]): Promise<Map<string, Sample[]>> {
  const results = new Map<string, Sample[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [ms, count] of INTERVALS) {
      for (const row of list) {
        const k = key(ms, row.client, row.server);
        results.set(k, [...(results.get(k) ?? []), await measure(row, ms, count)]);
      }
    }
  }
  return results;
}

// ---------------------------------------------------------------- output

const range = (values: number[], digits: number) =>
  values.length > 1
    ? ` (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`
    : "";
const cell = (values: number[], digits = 0) =>
  values.every((v) => v === undefined || Number.isNaN(v))
    ? "—"
    : `${median(values).toFixed(digits)}${range(values, digits)}`;
const verdict = (pass: boolean, ...figures: number[]) =>
  figures.some(Number.isNaN) ? "n/a" : pass ? "PASS" : "MISS";

function rttTable(list: Row[], results: Map<string, Sample[]>): void {
  const body: string[][] = [];
  for (const [ms] of INTERVALS) {
    for (const row of list) {
      const samples = results.get(key(ms, row.client, row.server)) ?? [];
      const clocks = [...new Set(samples.flatMap((s) => s.clock ?? []))];
      body.push([
        `${ms} ms`,
        rowName(row) + (clocks.length ? ` (clock: ${clocks.join(", ")})` : ""),
        cell(samples.map((s) => s.p50)),
        cell(samples.map((s) => s.p90)),
        cell(samples.map((s) => s.p99)),
        cell(samples.map((s) => s.cpu), 2),
      ]);
    }
  }
  const counts = INTERVALS.map(([ms, count]) => `${count} probes at ${ms} ms`).join(", ");
  table(
    `6. RTT a user sees: loopback, one probe at a time, ${counts}, ${ROUNDS} round(s), ` +
      "nothing pinned",
    ["interval", "client → server", "p50 µs", "p90 µs", "p99 µs", "client CPU s"],
    body,
  );
}

/** Median of one figure of one row at one interval. */
function figureOf(results: Map<string, Sample[]>) {
  return (ms: number, client: Client, server: Server | undefined, figure: "p50" | "cpu") =>
    median((results.get(key(ms, client, server)) ?? []).map((sample) => sample[figure]));
}

/** "a ≤ b" with both figures and the verdict. */
function target(text: string, value: number, limit: number, digits = 0): string {
  return `target: ${text}: ${value.toFixed(digits)} ≤ ${limit.toFixed(digits)} ` +
    verdict(value <= limit, value, limit);
}

function targets(list: Row[], results: Map<string, Sample[]>): void {
  const of = figureOf(results);
  const echo = list.find((row) => row.server?.name === C_ECHO)?.server;
  const lines: string[] = [];
  for (const [ms] of INTERVALS) {
    const at = `against C echo, ${ms} ms`;
    const net = of(ms, UDPING_NET, echo, "p50");
    const ffi = of(ms, UDPING_FFI, echo, "p50");
    lines.push(
      target(
        `udping --allow-net p50 ≤ 1.1× bare Deno loop's, ${at}`,
        net,
        1.1 * of(ms, BARE, echo, "p50"),
      ),
    );
    lines.push(
      target(
        `udping --allow-ffi p50 ≤ 1.1× Python SO_TIMESTAMPNS's, ${at}`,
        ffi,
        1.1 * of(ms, STAMPED, echo, "p50"),
      ),
    );
  }
  const [ms, count] = INTERVALS[0]!;
  const irtt = of(ms, IRTT, IRTT_SERVER, "cpu");
  for (const client of [UDPING_NET, UDPING_FFI]) {
    lines.push(
      target(
        `client CPU s for ${count} probes at ${ms} ms, ${client.name} ≤ irtt's`,
        of(ms, client, echo, "cpu"),
        irtt,
        2,
      ),
    );
  }
  for (const [ms] of INTERVALS) lines.push(...serverTargets(of, ms, echo));
  console.log(`\n${lines.join("\n")}`);
}

/** The server's share of the RTT, seen by the Python SO_TIMESTAMPNS client. */
function serverTargets(of: ReturnType<typeof figureOf>, ms: number, echo?: Server): string[] {
  const c = of(ms, STAMPED, echo, "p50");
  const share = (server: Server) => of(ms, STAMPED, server, "p50") - c;
  const at = `Python SO_TIMESTAMPNS client, ${ms} ms`;
  return [
    target(
      `server share (p50 − C echo's), udping server ≤ bare Deno echo's, ${at}`,
      share(UDPING_SERVER),
      share(BARE_SERVER),
    ),
    target(
      `udping server --fast p50 ≤ 1.1× C echo's, ${at}`,
      of(ms, STAMPED, FAST_SERVER, "p50"),
      1.1 * c,
    ),
    // What the runtime itself costs a server that uses FFI: the floor under --fast.
    `reference: bare Deno FFI echo p50 ${of(ms, STAMPED, BARE_FFI_SERVER, "p50").toFixed(0)} = ${
      (of(ms, STAMPED, BARE_FFI_SERVER, "p50") / c).toFixed(2)
    }× C echo's, ${at}`,
  ];
}

function scheduleTable(list: Row[], results: Map<string, Sample[]>): void {
  const echo = list.find((row) => row.server?.name === C_ECHO)?.server;
  const body: string[][] = [];
  for (const [ms] of INTERVALS) {
    for (
      const [client, server] of [[UDPING_NET, echo], [UDPING_FFI, echo], [
        IRTT,
        IRTT_SERVER,
      ]] as const
    ) {
      const schedules = (results.get(key(ms, client, server)) ?? []).map((s) => s.schedule ?? {});
      if (!schedules.length) continue;
      const column = (name: keyof Lateness, digits = 0) =>
        cell(schedules.map((s) => s[name] ?? NaN), digits);
      body.push([
        `${ms} ms`,
        client.name,
        column("meanInterval", 3),
        column("mean"),
        column("p99"),
        column("max"),
      ]);
    }
  }
  table(
    "6b. Send schedule: udping's send lateness (--json `schedule`) beside irtt's timer error " +
      "(`stats.timer_error`)",
    ["interval", "client", "mean interval ms", "mean late µs", "p99 late µs", "max late µs"],
    body,
  );
}

/**
 * Measures and prints table 6 and its targets. `echo` is the C echo
 * server's command (run.ts's build); when left out, bench/echo.c is built.
 */
export async function userRtt(echo?: string[]): Promise<void> {
  if (!(await available(TIME, "time"))) {
    return console.log("\n6. RTT a user sees: skipped (no /usr/bin/time for client CPU)");
  }
  const list = await rows(echo ?? await buildEcho());
  const results = await measureAll(list);
  rttTable(list, results);
  targets(list, results);
  scheduleTable(list, results);
}

/**
 * Table 8, the client at the runtime's floor and at its CPU: udping's
 * client with `--allow-net` and with `--allow-ffi` beside the bare Deno
 * loop, all three against the C echo server, alternating in each round as
 * table 6 does. One row per goal, each a ratio of two figures measured in
 * the same run. `echo` is the C echo server's command (run.ts's build);
 * when left out, bench/echo.c is built.
 */
export async function clientFloor(echo?: string[]): Promise<void> {
  const command = echo ?? await buildEcho();
  if (!command || !(await available(TIME, "time"))) {
    return console.log(
      "\n8. Client at the runtime's floor: skipped (no C compiler or /usr/bin/time)",
    );
  }
  const server: Server = { name: C_ECHO, command: [...command, "127.0.0.1", "{port}"] };
  const list = [BARE, UDPING_NET, UDPING_FFI].map((client) => ({ client, server }));
  const results = await measureAll(list);
  const runs = (ms: number, client: Client, figure: "p50" | "cpu") =>
    (results.get(key(ms, client, server)) ?? []).map((sample) => sample[figure]);
  const goal = (
    name: string,
    [ms, ours, reference, figure]: [number, Client, Client, "p50" | "cpu"],
    limit: number,
  ): string[] => {
    const digits = figure === "cpu" ? 2 : 0;
    const ratio = median(runs(ms, ours, figure)) / median(runs(ms, reference, figure));
    return [
      name,
      cell(runs(ms, ours, figure), digits),
      cell(runs(ms, reference, figure), digits),
      ratio.toFixed(2),
      `≤ ${limit.toFixed(2)}`,
      verdict(ratio <= limit, ratio),
    ];
  };
  const [[fast, count], [slow]] = INTERVALS as [[number, number], [number, number]];
  table(
    `8. Client at the runtime's floor and at its CPU: against the C echo, ${count} probes at ` +
      `${fast} ms and ${INTERVALS[1]![1]} at ${slow} ms, ${ROUNDS} round(s), nothing pinned`,
    ["goal", "udping", "reference", "ratio", "target", ""],
    [
      goal(
        `--allow-net p50 µs vs bare Deno loop's, ${fast} ms`,
        [fast, UDPING_NET, BARE, "p50"],
        1.1,
      ),
      goal(
        `--allow-net p50 µs vs bare Deno loop's, ${slow} ms`,
        [slow, UDPING_NET, BARE, "p50"],
        1.1,
      ),
      goal(
        `--allow-net CPU s vs bare Deno loop's, ${count} probes at ${fast} ms`,
        [fast, UDPING_NET, BARE, "cpu"],
        1.2,
      ),
      goal(
        `--allow-ffi CPU s vs --allow-net's, ${count} probes at ${fast} ms`,
        [fast, UDPING_FFI, UDPING_NET, "cpu"],
        1,
      ),
    ],
  );
}

if (import.meta.main) {
  console.log(
    `udping bench, RTT a user sees: Deno ${Deno.version.deno}, ${new Date().toISOString()}`,
  );
  if (Deno.args.includes("--floor")) await clientFloor();
  else await userRtt();
}
