/**
 * `deno task compile`: builds single-file executables `udping-server` and
 * `udping-client` into `bin/` with `deno compile`, each allowed the network
 * and nothing else.
 *
 * ```sh
 * deno task compile                                 # for this machine
 * deno task compile --target aarch64-apple-darwin   # for another platform
 * deno task compile --target all                    # for every Deno target
 * ```
 *
 * `deno compile` downloads the runtime it embeds (`denort`) for each target
 * from dl.deno.land; where that host cannot be reached, point `DENORT_BIN`
 * at a denort binary for the target.
 *
 * @module
 */

const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

const ROOT = new URL("..", import.meta.url).pathname;
const targetFlag = Deno.args.indexOf("--target");
const asked = targetFlag >= 0 ? Deno.args[targetFlag + 1] : undefined;
if (asked !== undefined && asked !== "all" && !TARGETS.includes(asked)) {
  console.error(`compile: unknown target '${asked}'; one of: all, ${TARGETS.join(", ")}`);
  Deno.exit(2);
}
const targets: (string | undefined)[] = asked === "all" ? TARGETS : [asked];

let failed = false;
for (const target of targets) {
  for (const [name, script] of [["udping-server", "server.ts"], ["udping-client", "client.ts"]]) {
    const suffix = target ? `-${target}` : "";
    const output = `${ROOT}bin/${name}${suffix}${target?.includes("windows") ? ".exe" : ""}`;
    const args = ["compile", "--allow-net", "--unstable-net", "--no-check", "-o", output];
    if (target) args.push("--target", target);
    args.push(`${ROOT}${script}`);
    const result = await new Deno.Command(Deno.execPath(), {
      args,
      stdout: "inherit",
      stderr: "piped",
    })
      .output();
    if (result.success) {
      console.log(`compile: built ${output}`);
      continue;
    }
    failed = true;
    const reason = new TextDecoder().decode(result.stderr);
    const offline = /dl\.deno\.land|dns error|error sending request/.test(reason);
    console.error(
      offline
        ? `compile: ${name}${suffix}: deno compile could not download the runtime it embeds ` +
          "(dl.deno.land is out of reach); set DENORT_BIN to a denort binary for the target"
        : `compile: ${name}${suffix}: ${
          reason.split("\n").find((line) => line.trim()) ?? "failed"
        }`,
    );
  }
}
Deno.exit(failed ? 1 : 0);
