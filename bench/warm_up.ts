/**
 * Table 7 of `deno task bench`, "Warm-up": do the first pings of a run
 * measure the runtime's warm-up instead of the network? Each run is a fresh
 * process, as a user's is, and nothing is pinned:
 *
 * - udping's `client.ts -c 10 -i 0.2` against the C echo server
 *   (bench/echo.c, one for all runs: it has no warm-up of its own);
 * - the textbook Python client (bench/textbook_client.py: 10 pings 0.2 s
 *   apart, `settimeout(1)`, `time.perf_counter`) against `server.ts`,
 *   logging as in the lab, started anew for each run and pinged as soon as
 *   it says it is listening;
 * - the same Python client against the C echo: the measuring client's own
 *   first-ping cost, for reference.
 *
 * RUNS runs of each, the rows alternating. A cell is the median RTT of
 * seq 1, of seq 2, and of seq 3–10 (their samples pooled); the target is
 * seq 1's and seq 2's median each ≤ 1.5× seq 3–10's.
 *
 * ```sh
 * deno run --allow-net --allow-run --allow-read --allow-write --allow-env bench/warm_up.ts [--quick]
 * ```
 *
 * Full: 20 runs a row, about two and a half minutes; `--quick`: 5.
 *
 * @module
 */

import { startServerProcess } from "../tests/helpers.ts";
import { available, median, stdoutOf, succeeds, table } from "./tools.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const QUICK = Deno.args.includes("--quick");
const RUNS = QUICK ? 5 : 20;
const COUNT = 10;
const INTERVAL_S = 0.2;
/** Seq 1's and seq 2's median RTT may be at most this many times seq 3–10's. */
const TARGET_RATIO = 1.5;
const DENO = Deno.execPath();

/** One run's RTTs in ms, index 0 for seq 1; NaN for a lost one. */
type Run = number[];

interface Row {
  name: string;
  /** Whether the row is held to the target (the reference row is not). */
  judged: boolean;
  /** One fresh run. */
  measure(): Promise<Run>;
}

/** udping's client, as a user runs it: its reply lines' `seq=N time=X ms`. */
async function udpingClient(port: number): Promise<Run> {
  const stdout = await stdoutOf([
    DENO,
    "run",
    "--allow-net",
    "client.ts",
    "127.0.0.1",
    String(port),
    "-c",
    String(COUNT),
    "-i",
    String(INTERVAL_S),
  ], ROOT);
  const rtts: Run = Array(COUNT).fill(NaN);
  for (const [, seq, time] of stdout.matchAll(/seq=(\d+) time=([\d.]+) ms/g)) {
    rtts[Number(seq) - 1] = Number(time);
  }
  return rtts;
}

/** The textbook Python client: an RTT in ms a line, or `timeout`. */
async function textbookClient(port: number): Promise<Run> {
  const stdout = await stdoutOf([
    "python3",
    "bench/textbook_client.py",
    "127.0.0.1",
    String(port),
    String(COUNT),
    String(INTERVAL_S),
  ], ROOT);
  const rtts = stdout.trim().split("\n").map(Number);
  return Array.from({ length: COUNT }, (_, i) => rtts[i] ?? NaN);
}

/** The rows that can run here: udping's client needs the C echo, the
 * server's row needs python3. */
async function rows(echoPort?: number): Promise<Row[]> {
  const list: Row[] = [];
  if (echoPort !== undefined) {
    list.push({
      name: `udping client.ts -c ${COUNT} -i ${INTERVAL_S} → C echo`,
      judged: true,
      measure: () => udpingClient(echoPort),
    });
  }
  if (await available("python3", "python3")) {
    list.push({
      name: "Python textbook client → udping server.ts (fresh)",
      judged: true,
      async measure() {
        // Pinged as soon as it says it is listening; its log is read, as a
        // terminal would show it.
        await using server = await startServerProcess();
        return await textbookClient(server.port);
      },
    });
    if (echoPort !== undefined) {
      list.push({
        name: "Python textbook client → C echo (reference)",
        judged: false,
        measure: () => textbookClient(echoPort),
      });
    }
  }
  return list;
}

/** Starts the C echo server `echo` (a command) on a port it picks, which
 * it prints first. */
async function startEcho(echo: string[]): Promise<{ port: number; stop(): Promise<void> }> {
  const child = new Deno.Command(echo[0]!, {
    args: [...echo.slice(1), "127.0.0.1", "0"],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const port = Number((await reader.read()).value?.trim());
  return {
    port,
    async stop() {
      child.kill("SIGKILL");
      await reader.cancel();
      await child.status;
    },
  };
}

/** Builds bench/echo.c when this runs alone (run.ts passes its own build). */
async function buildEcho(): Promise<string[] | undefined> {
  if (!(await available("cc", "gcc"))) return undefined;
  const out = await Deno.makeTempDir({ prefix: "udping-warm-up-" });
  const built = await succeeds("cc", ["-O2", "-o", `${out}/echo`, `${ROOT}bench/echo.c`]);
  return built ? [`${out}/echo`] : undefined;
}

/** A row of the table from its runs. */
function rowCells(row: Row, runs: Run[]): string[] {
  const first = median(runs.map((run) => run[0]!));
  const second = median(runs.map((run) => run[1]!));
  const rest = median(runs.flatMap((run) => run.slice(2)));
  const lost = runs.flat().filter(Number.isNaN).length;
  const ratios = [first / rest, second / rest];
  const pass = ratios.every((ratio) => ratio <= TARGET_RATIO);
  return [
    row.name,
    first.toFixed(3),
    second.toFixed(3),
    rest.toFixed(3),
    ratios.map((ratio) => ratio.toFixed(2)).join(" / "),
    String(lost),
    row.judged ? (pass ? "PASS" : "MISS") : "reference",
  ];
}

/**
 * Measures and prints table 7. `echo` is the C echo server's command
 * (run.ts's build); when left out, bench/echo.c is built.
 */
export async function warmUp(echo?: string[]): Promise<void> {
  const command = echo ?? await buildEcho();
  const server = command ? await startEcho(command) : undefined;
  const results = new Map<Row, Run[]>();
  try {
    const list = await rows(server?.port);
    for (let run = 0; run < RUNS; run++) {
      for (const row of list) results.set(row, [...(results.get(row) ?? []), await row.measure()]);
    }
  } finally {
    await server?.stop();
  }
  table(
    `7. Warm-up: median RTT (ms) of seq 1, seq 2 and seq 3–10 over ${RUNS} fresh runs of ` +
      `${COUNT} pings ${INTERVAL_S} s apart; target: seq 1 and seq 2 each ≤ ${TARGET_RATIO}× ` +
      "seq 3–10",
    ["client → server", "seq 1", "seq 2", "seq 3–10", "ratio 1 / 2", "lost", "target"],
    [...results].map(([row, runs]) => rowCells(row, runs)),
  );
}

if (import.meta.main) {
  console.log(`udping bench, warm-up: Deno ${Deno.version.deno}, ${new Date().toISOString()}`);
  await warmUp();
}
