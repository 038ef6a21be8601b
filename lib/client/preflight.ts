/**
 * Everything a client run needs, checked before its first send: every
 * target resolved (of the family `-4`/`-6` asks for), the mode's options
 * checked by its planner (every run's plan against its target's family), the permissions asked for, and the
 * `--svg` file. A mistake in any of them is one line and exit 2 with
 * nothing sent, and a permission prompt never falls inside a measured
 * round trip.
 *
 * @module
 */

import { ensurePermission } from "../shared/cli.ts";
import type { RunCommand, Target, Typed } from "./client_cli.ts";
import {
  describeError,
  formatAddress,
  needsLookup,
  resolveHost,
  unbracket,
} from "../shared/net.ts";
import { type Labels, type PingOptions, planBeacon, planChat, planRun } from "./ping_options.ts";

/**
 * Checks and resolves a parsed command; returns it with every target's
 * address filled in. Throws a `TypeError`, `RangeError` or a runtime error
 * (unknown host, permission denied) with one line.
 *
 * @example
 * ```ts
 * import { preflight } from "./preflight.ts";
 * import { parseClientCommand, type RunCommand } from "./client_cli.ts";
 * import { rejects } from "node:assert/strict";
 * const command = parseClientCommand(["127.0.0.1:9", "[::1]:9", "-s", "65520"]) as RunCommand;
 * await rejects(preflight(command), /^RangeError: 127\.0\.0\.1:9: -s must be at most 65507 bytes over IPv4/);
 * ```
 */
export async function preflight(command: RunCommand): Promise<RunCommand> {
  const targets: Target[] = [];
  for (const target of command.targets) {
    targets.push({ ...target, address: await resolve(target.host, command.family) });
  }
  // The checks the library makes as it starts, each flag named as typed.
  if (command.mode === "ping" || command.mode === "many") {
    for (const target of targets) checkPlan(command, target);
  }
  if (command.mode === "chat") planChat(command.chat, labelsOf(command.typed));
  if (command.mode === "send") planBeacon(command.beacon, labelsOf(command.typed));
  for (const target of targets) await askToSend(target);
  const [{ address = "", port }] = targets as [Target];
  switch (command.mode) {
    case "ping":
      await checkSvg(command.output.svg, command.typed.svg);
      return {
        ...command,
        targets,
        ping: { ...command.ping, address },
        output: { ...command.output, address: unbracket(address) },
      };
    case "many":
      return { ...command, targets };
    case "chat":
      return { ...command, targets, chat: { ...command.chat, host: address, port } };
    case "send":
      return { ...command, targets, beacon: { ...command.beacon, host: address, port } };
  }
}

/** A host's address; a name is looked up only once the lookup is allowed. */
async function resolve(host: string, family?: 4 | 6): Promise<string> {
  if (needsLookup(host)) {
    await ensurePermission(
      { name: "net", host: unbracket(host) },
      `network permission denied: the client needs to look up '${host}' (run with --allow-net)`,
    );
  }
  return (await resolveHost(host, family)).address;
}

/** Checks one target's run as `ping()` will plan it, naming each flag as
 * typed; with several targets, the message names the target too. */
function checkPlan(command: RunCommand & { ping: PingOptions }, target: Target): void {
  try {
    planRun(command.ping, target.address!.includes(":") ? 6 : 4, labelsOf(command.typed));
  } catch (error) {
    if (command.mode !== "many" || !(error instanceof RangeError)) throw error;
    throw new RangeError(`${formatAddress(target.host, target.port)}: ${error.message}`);
  }
}

/** The options' names in messages: each flag as typed. */
function labelsOf(typed: Typed): Labels {
  const { count, interval, timeout, size, deadline, retries } = typed;
  return { count, interval, timeout, size, deadline, retries };
}

/** Asks for the permissions the client's socket needs: to bind an
 * ephemeral port, and to send to the target. */
async function askToSend({ address = "", port }: Target): Promise<void> {
  const bind = address.includes(":") ? "[::]:0" : "0.0.0.0:0";
  const needs = [
    [bind, `a socket on ${bind}`],
    [formatAddress(address, port), `to send to ${formatAddress(address, port)}`],
  ];
  for (const [host, what] of needs) {
    await ensurePermission(
      { name: "net", host },
      `network permission denied: the client needs ${what} (run with --allow-net)`,
    );
  }
}

/**
 * Checks that the `--svg` file (`flag` as typed) can be written: a name,
 * the permission, a folder that exists, not a directory. It leaves no
 * file behind: one it had to create is removed.
 */
async function checkSvg(path: string | undefined, flag = "--svg"): Promise<void> {
  if (path === undefined) return;
  if (path === "") throw new TypeError(`${flag} needs a file name`);
  await ensurePermission(
    { name: "write", path },
    `${flag} needs --allow-write (deno run --allow-net --allow-write client.ts ... ${flag} ${path})`,
  );
  try {
    Deno.openSync(path, { write: true, createNew: true }).close();
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw svgError(flag, path, error);
    try {
      Deno.openSync(path, { write: true }).close();
    } catch (again) {
      throw svgError(flag, path, again);
    }
  }
}

/** Why the `--svg` file cannot be written, in one line. */
function svgError(flag: string, path: string, error: unknown): Error {
  if (error instanceof Deno.errors.NotFound) {
    return new Deno.errors.NotFound(`${flag} '${path}': its folder does not exist`);
  }
  if (error instanceof Deno.errors.IsADirectory) {
    return new TypeError(`${flag} '${path}' is a directory: give a file name`);
  }
  return new Error(`${flag} '${path}': ${describeError(error)}`);
}
