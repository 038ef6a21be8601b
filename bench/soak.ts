/**
 * Soak: runs udping's server under load for a while and watches its memory.
 * Loopback only; every process stops by itself.
 *
 * ```sh
 * deno task soak                  # 3 flood pingers, 60 s
 * deno task soak 10               # the same, 10 s
 * deno task soak --mix            # the mixed flood, 11 min (1 warm-up + 10 measured)
 * deno task soak --mix --minutes 6
 * ```
 *
 * The default soak runs the server with `--rate 0`: a flood pinger sends far
 * more than the default 1,000 replies/s per address, and every pinger here
 * has the same address. The target is zero loss and under 10% server RSS
 * growth after a warm-up.
 *
 * `--mix` runs the server as a lab would leave it (default options, so the
 * rate limit and the loop guard are in the path) under three floods at once:
 *
 * - one `client.ts -f` pinger, as fast as its replies come;
 * - 3,000 datagrams/s, each with a fresh random token and a stamp request,
 *   one in ten malformed, from 8 ordinary sockets (`bench/mix_flood.py tokens`);
 * - 3,000 datagrams/s from 900,000 forged sources 127.a.b.c:port, port
 *   1024 and up, taken in turn (`bench/mix_flood.py forged`, a raw socket).
 *
 * Forging a source needs root, so `--mix` re-runs itself inside a private
 * network namespace (`unshare -n`) that holds only loopback: nothing it
 * sends can leave the machine. Without `unshare` or `python3` it says why
 * and exits 0. It samples the server's VmRSS every second, prints a sample
 * every 30 s and the low and high point of each minute, and ends with the
 * growth from the end of minute 1 to the end of the run (target < 20%), the
 * highest RSS after minute 1 (target ≤ 100 MB) and a text plot of RSS every
 * 30 s.
 *
 * `--minutes N` (default 11, at least 2), `--rate N` (the server's
 * `--rate`), `--v8-flags=FLAGS` (the server's V8 flags, e.g.
 * `--v8-flags=--max-semi-space-size=1`).
 *
 * @module
 */

import { cpuSecondsOf, memoryOf } from "./procfs.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SELF = new URL(import.meta.url).pathname;
const FLOOD = new URL("./mix_flood.py", import.meta.url).pathname;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (value: number) => `${value.toFixed(1)} MB`;

function spawn(script: string, args: string[], v8Flags?: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", ...(v8Flags ? [`--v8-flags=${v8Flags}`] : []), script, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/** Starts server.ts with `args` and returns it, its port and the rest of its output. */
async function startServer(args: string[], v8Flags?: string) {
  const server = spawn("server.ts", ["--port", "0", "--quiet", ...args], v8Flags);
  const output = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value: banner = "" } = await output.read();
  const port = /listening on .*:(\d+) /.exec(banner)?.[1];
  if (port === undefined) throw new Error(`server did not start: ${banner}`);
  const rest = async () => {
    let text = "";
    for (let chunk = await output.read(); !chunk.done; chunk = await output.read()) {
      text += chunk.value;
    }
    return text;
  };
  return { server, port, banner: banner.trim(), rest };
}

// ------------------------------------------------------------ classic soak

async function classic(seconds: number): Promise<void> {
  const PINGERS = 3;
  const warmUp = Math.min(10, seconds / 4);
  const { server, port, rest } = await startServer(["--rate", "0"]);
  const serverStart = await memoryOf(server.pid);

  const pingers = Array.from(
    { length: PINGERS },
    () => spawn("client.ts", ["127.0.0.1", port, "-f", "-w", String(seconds), "-q", "--json"]),
  );
  await sleep(1000);
  const clientStart = await memoryOf(pingers[0]!.pid);
  await sleep((warmUp - 1) * 1000);
  const serverWarm = await memoryOf(server.pid);
  await sleep((seconds - warmUp - 0.5) * 1000);
  const serverEnd = await memoryOf(server.pid);
  const clientEnd = await memoryOf(pingers[0]!.pid);

  let sent = 0;
  let received = 0;
  let outstanding = 0;
  for (const pinger of pingers) {
    const output = await pinger.output();
    const summary = JSON.parse(new TextDecoder().decode(output.stdout));
    sent += summary.transmitted;
    received += summary.received;
    outstanding += summary.outstanding;
  }
  server.kill("SIGTERM");
  const summary = await rest();
  await server.status;

  const lost = sent - received - outstanding;
  const growth = ((serverEnd.rss - serverWarm.rss) / serverWarm.rss) * 100;
  console.log(
    `soak: ${PINGERS} flood pingers for ${seconds} s against server.ts --rate 0, loopback`,
  );
  console.log(`  requests sent          ${sent} (${Math.round(sent / seconds)}/s)`);
  console.log(`  replies received       ${received}`);
  console.log(
    `  lost                   ${lost}   (target 0; ${outstanding} still in flight at the deadline not counted)`,
  );
  console.log(
    `  server RSS             start ${mb(serverStart.rss)}, after ${warmUp} s ${
      mb(serverWarm.rss)
    }, end ${mb(serverEnd.rss)}, peak ${mb(serverEnd.peak)}`,
  );
  console.log(`  server RSS growth      ${growth.toFixed(1)}% after warm-up (target < 10%)`);
  console.log(`  client RSS             start ${mb(clientStart.rss)}, end ${mb(clientEnd.rss)}`);
  console.log(`  server summary         ${summary.trim().split("\n").at(-1)}`);
}

// ------------------------------------------------------------ mixed flood

/** Per flood, datagrams a second (the -f pinger goes as fast as its replies come). */
const MIX_RATE = 3000;
/** Distinct forged sources (address and port). */
const FORGED_SOURCES = 900_000;
/** Growth of RSS from the end of minute 1 to the end of the run, the target. */
const GROWTH_TARGET = 20;
/** The server's RSS after minute 1, at most, in MB: the other target. */
const RSS_TARGET_MB = 100;
/** The floods run this much past the last sample, so that it is taken under load. */
const FLOOD_OVERRUN_S = 2;

interface MixOptions {
  minutes: number;
  rate: string | undefined;
  v8Flags: string | undefined;
  inNamespace: boolean;
}

function parseMix(args: string[]): MixOptions {
  const options: MixOptions = {
    minutes: 11,
    rate: undefined,
    v8Flags: undefined,
    inNamespace: false,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = () => {
      const text = args[++i];
      if (text === undefined) throw new TypeError(`${arg} needs a value`);
      return text;
    };
    if (arg === "--mix") continue;
    else if (arg === "--in-namespace") options.inNamespace = true;
    else if (arg === "--minutes") options.minutes = Number(value());
    else if (arg === "--rate") options.rate = value();
    else if (arg.startsWith("--v8-flags=")) options.v8Flags = arg.slice("--v8-flags=".length);
    else throw new TypeError(`unknown option '${arg}'`);
  }
  if (!Number.isInteger(options.minutes) || options.minutes < 2 || options.minutes > 120) {
    throw new RangeError("--minutes must be a whole number from 2 to 120");
  }
  if (options.rate !== undefined && !(Number(options.rate) >= 0)) {
    throw new RangeError("--rate must be a number of at least 0");
  }
  return options;
}

/** Runs `command args`; its success and its output, or the error text. */
async function tryRun(command: string, args: string[]): Promise<{ ok: boolean; text: string }> {
  try {
    const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
      .output();
    const text = new TextDecoder().decode(output.success ? output.stdout : output.stderr).trim();
    return { ok: output.success, text };
  } catch (error) {
    return { ok: false, text: error instanceof Error ? error.message : String(error) };
  }
}

/** Outside the namespace: checks what the mix needs and re-runs it inside `unshare -n`. */
async function mixOutside(args: string[]): Promise<number> {
  const skip = (reason: string) => {
    console.log(`soak --mix: skipped: ${reason}`);
    return 0;
  };
  if (Deno.build.os !== "linux") return skip("forging source addresses needs Linux");
  const unshare = await tryRun("unshare", ["-n", "true"]);
  if (!unshare.ok) {
    return skip(
      `cannot make a private network namespace (unshare -n: ${unshare.text || "failed"}); ` +
        "run it as root",
    );
  }
  const python = await tryRun("python3", ["--version"]);
  if (!python.ok) return skip(`python3 runs the floods and was not found (${python.text})`);
  const child = new Deno.Command("unshare", {
    args: [
      "-n",
      "--",
      Deno.execPath(),
      "run",
      "--allow-net",
      "--allow-run",
      "--allow-read",
      SELF,
      ...args,
      "--in-namespace",
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return (await child.status).code;
}

/** VmRSS, RssAnon and RssFile of a process, in MB (0 once it is gone). */
async function rssOf(pid: number): Promise<{ rss: number; anon: number; file: number }> {
  const output = await new Deno.Command("cat", {
    args: [`/proc/${pid}/status`],
    stdout: "piped",
    stderr: "null",
  }).output();
  const status = new TextDecoder().decode(output.stdout);
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) / 1024;
  return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile") };
}

/** The namespace's UDP counters (/proc/net/snmp), by name. */
async function udpCounters(): Promise<Record<string, number>> {
  const { text } = await tryRun("cat", ["/proc/net/snmp"]);
  const [names, values] = text.split("\n").filter((line) => line.startsWith("Udp:"));
  const counters: Record<string, number> = {};
  const list = values?.split(/\s+/) ?? [];
  names?.split(/\s+/).forEach((name, i) => counters[name] = Number(list[i]));
  return counters;
}

const clock = (second: number) =>
  `${Math.floor(second / 60)}:${String(second % 60).padStart(2, "0")}`;

/** Inside the namespace: the server, the three floods, the samples. */
async function mixInside(options: MixOptions): Promise<number> {
  const { minutes } = options;
  const total = minutes * 60;
  const lo = await tryRun("python3", [FLOOD, "lo-up"]);
  if (!lo.ok) throw new Error(`cannot bring loopback up in the namespace: ${lo.text}`);

  const serverArgs = options.rate === undefined ? [] : ["--rate", options.rate];
  const { server, port, banner, rest } = await startServer(serverArgs, options.v8Flags);
  const children: Deno.ChildProcess[] = [server];
  const stop = () => {
    for (const child of children) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
    }
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);

  const start = await rssOf(server.pid);
  const udpStart = await udpCounters();
  const floodSeconds = String(total + FLOOD_OVERRUN_S);
  const python = (kind: string, extra: string[] = []) =>
    new Deno.Command("python3", {
      args: [FLOOD, kind, "127.0.0.1", port, floodSeconds, String(MIX_RATE), ...extra],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  const pinger = spawn("client.ts", ["127.0.0.1", port, "-f", "-w", floodSeconds, "-q", "--json"]);
  const tokens = python("tokens");
  const forged = python("forged", [String(FORGED_SOURCES)]);
  children.push(pinger, tokens, forged);
  const t0 = performance.now();

  console.log(
    `soak --mix: ${minutes} min (1 warm-up + ${minutes - 1} measured), private network namespace`,
  );
  console.log(`  server   ${banner}${options.v8Flags ? `, V8 flags ${options.v8Flags}` : ""}`);
  console.log(
    `  floods   client.ts -f; ${MIX_RATE}/s fresh tokens with stamps, 10% malformed; ` +
      `${MIX_RATE}/s from ${FORGED_SOURCES.toLocaleString("en")} forged sources in 127.0.0.0/8`,
  );
  console.log(`  start    RSS ${mb(start.rss)} (anon ${mb(start.anon)}, file ${mb(start.file)})`);
  console.log("  time    RSS MB  anon MB  file MB  server CPU");

  const atMinute: number[] = [];
  const everyHalfMinute: number[] = [];
  let highAfterMinute1 = 0;
  const lows: number[] = [];
  let low = Infinity;
  let high = 0;
  let lastCpu = await cpuSecondsOf(server.pid);
  let lastCpuAt = 0;
  for (let second = 1; second <= total; second++) {
    const wait = t0 + second * 1000 - performance.now();
    if (wait > 0) await sleep(wait);
    const sample = await rssOf(server.pid);
    if (sample.rss === 0) throw new Error(`the server stopped at ${clock(second)}`);
    low = Math.min(low, sample.rss);
    high = Math.max(high, sample.rss);
    if (second > 60) highAfterMinute1 = Math.max(highAfterMinute1, sample.rss);
    if (second % 30 === 0) {
      everyHalfMinute.push(sample.rss);
      const cpu = await cpuSecondsOf(server.pid);
      const share = ((cpu - lastCpu) / (second - lastCpuAt)) * 100;
      [lastCpu, lastCpuAt] = [cpu, second];
      console.log(
        `  ${clock(second).padStart(5)}  ${sample.rss.toFixed(1).padStart(6)}  ${
          sample.anon.toFixed(1).padStart(7)
        }  ${sample.file.toFixed(1).padStart(7)}  ${share.toFixed(0).padStart(5)}%`,
      );
    }
    if (second % 60 === 0) {
      atMinute.push(sample.rss);
      lows.push(low);
      console.log(`  minute ${second / 60}: low ${mb(low)}, high ${mb(high)}`);
      low = Infinity;
      high = 0;
    }
  }

  const results = await Promise.all([pinger, tokens, forged].map(async (child) => {
    const output = await child.output();
    const text = new TextDecoder().decode(output.stdout).trim();
    try {
      // The pinger prints one JSON document over many lines, a flood one line.
      return JSON.parse(text.startsWith("{\n") ? text : text.split("\n").at(-1) ?? "");
    } catch {
      return { error: text || `exit ${output.code}` };
    }
  }));
  const peak = (await memoryOf(server.pid)).peak;
  const udpEnd = await udpCounters();
  const udp = (name: string) => (udpEnd[name] ?? NaN) - (udpStart[name] ?? NaN);
  server.kill("SIGTERM");
  const summary = (await rest()).trim().split("\n").filter((line) => !line.startsWith("---"));
  await server.status;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);

  const [ping, fresh, forgery] = results;
  const rate = (count: number) => `${Math.round(count / (total + FLOOD_OVERRUN_S))}/s`;
  console.log(
    `  pinger   ${ping.transmitted} sent (${
      rate(ping.transmitted ?? 0)
    }), ${ping.received} replies`,
  );
  console.log(
    `  tokens   ${fresh.sent} sent (${rate(fresh.sent ?? 0)}), ${fresh.received} replies, ${
      fresh.errors ?? "?"
    } errors`,
  );
  console.log(
    `  forged   ${forgery.sent} sent (${rate(forgery.sent ?? 0)}), ${forgery.errors ?? "?"} errors`,
  );
  console.log(
    `  kernel   ${udp("RcvbufErrors")} datagrams dropped for a full receive buffer, ` +
      `${udp("NoPorts")} to no socket (the replies to forged sources)`,
  );
  console.log(`  server   peak RSS ${mb(peak)}`);
  for (const line of summary) console.log(`           ${line}`);
  console.log(rssPlot(everyHalfMinute));
  const first = atMinute[0]!;
  const last = atMinute.at(-1)!;
  const growth = ((last - first) / first) * 100;
  // Minute 1's low is the idle server before the floods: the lows are
  // compared from minute 2, the first minute wholly under load.
  const lowGrowth = ((lows.at(-1)! - lows[1]!) / lows[1]!) * 100;
  console.log(
    `  lows     ${lows.map((value) => value.toFixed(1)).join(" → ")} MB (growth ${
      lowGrowth.toFixed(1)
    }% from minute 2)`,
  );
  console.log(
    `RSS after minute 1: ${first.toFixed(1)} MB, after minute ${minutes}: ${
      last.toFixed(1)
    } MB, growth ${growth.toFixed(1)}% (target < ${GROWTH_TARGET}%): ${
      growth < GROWTH_TARGET ? "PASS" : "MISS"
    }`,
  );
  console.log(
    `RSS high after minute 1: ${highAfterMinute1.toFixed(1)} MB (target ≤ ${RSS_TARGET_MB} MB): ${
      highAfterMinute1 <= RSS_TARGET_MB ? "PASS" : "MISS"
    }`,
  );
  return 0;
}

/** MB a character of the plot stands for. */
const PLOT_MB_PER_CHAR = 4;

/** RSS over time as text: one bar per sample (every 30 s), with the
 * target marked. */
function rssPlot(samples: number[]): string {
  const target = Math.round(RSS_TARGET_MB / PLOT_MB_PER_CHAR);
  const lines = samples.map((rss, i) => {
    const bar = "#".repeat(Math.round(rss / PLOT_MB_PER_CHAR)).padEnd(target, " ");
    const marked = bar.slice(0, target) + "|" + bar.slice(target);
    return `  ${clock((i + 1) * 30).padStart(5)}  ${marked}  ${rss.toFixed(1)} MB`;
  });
  return [
    `  RSS over time (# = ${PLOT_MB_PER_CHAR} MB, | = ${RSS_TARGET_MB} MB, the target):`,
    ...lines,
  ].join("\n");
}

// ------------------------------------------------------------ the command line

if (Deno.args.includes("--mix")) {
  let options: MixOptions;
  try {
    options = parseMix(Deno.args);
  } catch (error) {
    console.error(`soak: ${error instanceof Error ? error.message : error}`);
    Deno.exit(2);
  }
  const args = Deno.args.filter((arg) => arg !== "--in-namespace");
  Deno.exit(options.inNamespace ? await mixInside(options) : await mixOutside(args));
}
const seconds = Number(Deno.args[0] ?? 60);
if (!(seconds >= 5)) {
  console.error("soak: give the duration in seconds, at least 5 (or --mix, see the header)");
  Deno.exit(2);
}
await classic(seconds);
