/**
 * The single-file executables: built with `deno compile` and pinged. Where
 * `deno compile` cannot get the runtime it embeds (it downloads `denort`
 * from dl.deno.land, which this workplace's network refuses) and no
 * DENORT_BIN is given, the test is reported as ignored.
 */

import { assertEquals, assertMatch } from "./assert.ts";
import { ROOT } from "./helpers.ts";
import { collect, summaryOf } from "./helpers.ts";
import { ping } from "../client.ts";

async function canCompile(): Promise<boolean> {
  if (Deno.env.get("DENORT_BIN")) return true;
  try {
    await Deno.resolveDns("dl.deno.land", "A");
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "deno task compile builds udping-server that serves with the network permission only",
  ignore: !(await canCompile()),
  async fn() {
    const build = await new Deno.Command(Deno.execPath(), {
      args: ["task", "compile"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(build.code, 0, new TextDecoder().decode(build.stderr));
    const server = new Deno.Command(`${ROOT}bin/udping-server`, {
      args: ["--port", "0", "--quiet"],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      const { value = "" } = await reader.read();
      const port = Number(/:(\d+) \(udp\)/.exec(value)?.[1]);
      const summary = summaryOf(await collect(ping({ port, count: 2, interval: 0.01 })));
      assertEquals(summary.received, 2);
      const version = await new Deno.Command(`${ROOT}bin/udping-client`, { args: ["--version"] })
        .output();
      assertMatch(new TextDecoder().decode(version.stdout), /^udping client \d+\.\d+\.\d+\n$/);
    } finally {
      server.kill("SIGTERM");
      await reader.cancel();
      await server.status;
    }
  },
});
