/**
 * udping client: pings a UDP echo service and reports round-trip times and
 * loss the way `ping` does. Also the textbook's chat client and beacon.
 *
 * ```sh
 * deno run --allow-net client.ts [host] [port] [options]
 * deno run --allow-net client.ts 127.0.0.1 12000 -c 100 -i 0.2
 * deno run --allow-net --allow-ffi client.ts ::1      # kernel timestamps
 * deno run --allow-net client.ts --chat
 * ```
 *
 * Read it top to bottom: the options, the ping loop (send what is due,
 * expire what is overdue, wait for a reply or the next deadline, classify
 * what came), the command line.
 *
 * @module
 */

import { settings } from "./settings.ts";
import { encodeRequest, SEQ_MODULUS } from "./protocol.ts";
import { classify, type Expected, type PingEvent, type PingSummary } from "./lib/client/events.ts";
import { openPingSocket, type PingSocket, targetOf } from "./lib/client/ping_socket.ts";
import { type PingOptions, planRun } from "./lib/client/ping_options.ts";
import { PingTally } from "./lib/client/tally.ts";
import { Schedule } from "./lib/client/schedule.ts";
import { dueBy } from "./lib/shared/timer.ts";
import { warmUp } from "./lib/client/warm_up.ts";
import { setImmediate as nextTurn } from "node:timers/promises";
import { checkPort, describeError, formatAddress, unbracket } from "./lib/shared/net.ts";
import { runMain, VERSION } from "./lib/shared/cli.ts";
import { parseClientCommand, type Target, USAGE } from "./lib/client/client_cli.ts";
import { preflight } from "./lib/client/preflight.ts";
import { mergeRuns, printMany, printRun, type TargetEvent } from "./lib/client/run_ping.ts";
import { runChat } from "./lib/client/chat.ts";
import { runBeacon } from "./lib/client/beacon.ts";

export type { PingEvent, PingSummary, StrayReason } from "./lib/client/events.ts";
export type { PingOptions };
export type { LossSplit, ScheduleSummary, TallySummary } from "./lib/client/tally.ts";
export type {
  HistogramRow,
  RttDistribution,
  RttSummary,
  TimelineColumn,
  VariationSummary,
} from "./lib/client/stats.ts";
export { chat, type ChatEvent, type ChatOptions, type ReplyKind } from "./lib/client/chat.ts";
export { beacon, type BeaconOptions, type BeaconSent } from "./lib/client/beacon.ts";
export type { Target, TargetEvent };

/**
 * Pings `host:port`, yielding an event for each send, reply, duplicate,
 * timeout and stray datagram as it happens, and a `summary` event last.
 * Request n goes out at start + n·interval (no drift), several in flight
 * when the interval is shorter than the timeout. Throws a `RangeError` or
 * `TypeError` for a bad option or host.
 *
 * @example
 * ```ts
 * import { ping } from "./client.ts";
 * import { serve } from "./server.ts";
 * import { equal } from "node:assert/strict";
 * await using server = await serve({ port: 0 });
 * let received = 0;
 * for await (const event of ping({ port: server.addr.port, count: 3, interval: 0.01 })) {
 *   if (event.type === "summary") received = event.summary.received;
 * }
 * equal(received, 3);
 * ```
 */
export async function* ping(options: PingOptions = {}): AsyncGenerator<PingEvent, PingSummary> {
  const { host = settings.host, port = settings.port, signal } = options;
  const target = formatAddress(unbracket(host), checkPort(port));
  const opened = await openPingSocket(options.address ?? host, port, {
    kernel: options.kernelStamps,
  });
  await using socket = opened.socket;
  const plan = planRun(options, socket.address.includes(":") ? 6 : 4);
  if (opened.notice) yield { type: "notice", text: opened.notice };
  const tally = new PingTally(plan.inFlight, plan.timeoutMs);
  const expected = {
    ...plan,
    address: socket.address,
    port: socket.port,
    tally,
    verbose: options.verbose,
  };
  await warmUp(socket, expected, signal);
  const schedule = new Schedule(plan, tally);
  while (!signal?.aborted && schedule.beforeDeadline(performance.now())) {
    const due = schedule.due();
    if (due !== undefined) {
      socket.arm(schedule.wakeAfterSend(due, performance.now()), signal);
      yield await sendRequest(socket, expected, due, target);
    }
    const now = performance.now();
    for (const seq of tally.expire(now, dueBy)) yield { type: "timeout", seq };
    if (schedule.lingered(now)) break;
    const wake = schedule.wakeAt();
    // A look that does not wait sees only what a turn of the event loop
    // let in (awaiting a send gives none); Ctrl-C comes in that way too.
    const behind = dueBy(wake);
    if (behind) await nextTurn();
    const arrival = await socket.receive(wake, signal);
    schedule.looked(behind && arrival !== undefined);
    if (arrival === undefined) continue;
    // Timeouts that fell due while we waited come first, in time order.
    for (const seq of tally.expire(performance.now(), dueBy)) yield { type: "timeout", seq };
    if (arrival.kind === "datagram") {
      yield classify(arrival.data, arrival.from, arrival.at, expected);
    } else yield unreachable(tally, arrival, target, targetOf(socket));
  }
  const time = schedule.elapsed(performance.now());
  const summary = {
    target,
    address: targetOf(socket),
    clock: socket.clock,
    ...tally.summary(),
    time,
  };
  summary.stampProblem ??= plan.noStamp ?? null;
  yield { type: "summary", summary };
  return summary;
}

/** Sends the next request of the run, due at `due`, records it, and keeps
 * its bytes for its reply to be compared with. */
async function sendRequest(
  socket: PingSocket,
  run: Expected,
  due: number,
  target: string,
): Promise<PingEvent> {
  const { tally } = run;
  const seq = (tally.transmitted + 1) % SEQ_MODULUS;
  const sent = performance.timeOrigin + performance.now();
  const bytes = encodeRequest({ seq, sent, token: run.token, size: run.size, stamp: run.stamp });
  run.latest = bytes;
  const at = performance.now();
  try {
    tally.sent(seq, at, due || at, await socket.send(bytes));
    return { type: "sent", seq, bytes: bytes.length, time: sent };
  } catch (error) {
    // An ICMP port unreachable for an earlier request, told at this send.
    const refused = error instanceof Deno.errors.ConnectionRefused;
    tally.sent(seq, at, due || at);
    tally.sendFailed(seq, refused);
    if (refused) {
      return { type: "unreachable", seq, target: targetOf(socket) };
    }
    return { type: "error", seq, target, message: describeError(error) };
  }
}

/** A refused or failed receive, charged to the latest request. */
function unreachable(
  tally: PingTally,
  arrival: { kind: "refused" } | { kind: "error"; message: string },
  target: string,
  address: string,
): PingEvent {
  const seq = tally.transmitted % SEQ_MODULUS;
  tally.sendFailed(seq, arrival.kind === "refused");
  if (arrival.kind === "refused") return { type: "unreachable", seq, target: address };
  return { type: "error", seq, target, message: arrival.message };
}

/**
 * Pings several targets at once, all on the same schedule, yielding every
 * run's events as they happen, each with its target.
 *
 * @example
 * ```ts
 * import { pingAll } from "./client.ts";
 * import { serve } from "./server.ts";
 * import { equal } from "node:assert/strict";
 * await using a = await serve({ port: 0 });
 * await using b = await serve({ port: 0 });
 * const targets = [a, b].map((server) => ({ host: "127.0.0.1", port: server.addr.port }));
 * let summaries = 0;
 * for await (const { event } of pingAll(targets, { count: 2, interval: 0.01 })) {
 *   if (event.type === "summary") summaries++;
 * }
 * equal(summaries, 2);
 * ```
 */
export function pingAll(
  targets: Target[],
  options: Omit<PingOptions, "host" | "port"> = {},
): AsyncGenerator<TargetEvent> {
  return mergeRuns(targets.map(({ host, port, address }) => ({
    target: formatAddress(host, port),
    events: ping({ ...options, host, port, address }),
  })));
}

/**
 * The command line: parses `args`, checks everything the run needs before
 * its first send (addresses, limits, permissions, the --svg file), runs the
 * chosen mode (ping, several targets, chat, beacon), prints as ping does
 * and returns the exit status. Ctrl-C ends any mode with its summary.
 *
 * @example
 * ```ts
 * import { main } from "./client.ts";
 * import { equal } from "node:assert/strict";
 * equal(await main(["--version"]), 0);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const parsed = parseClientCommand(args);
  if (parsed.mode === "help" || parsed.mode === "version") {
    console.log(parsed.mode === "help" ? USAGE : `udping client ${VERSION}`);
    return 0;
  }
  const command = await preflight(parsed);
  const controller = new AbortController();
  const stop = () => controller.abort();
  Deno.addSignalListener("SIGINT", stop);
  const { signal } = controller;
  try {
    switch (command.mode) {
      case "chat":
        return await runChat(command.chat, signal);
      case "send":
        return await runBeacon(command.beacon, signal, command.quiet);
      case "many":
        return await printMany(
          pingAll(command.targets, { ...command.ping, signal }),
          command.output,
        );
      case "ping":
        return await printRun(ping({ ...command.ping, signal }), command.output);
    }
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
  }
}

if (import.meta.main) await runMain("client.ts", () => main(Deno.args));
