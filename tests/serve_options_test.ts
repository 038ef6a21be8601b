/**
 * lib/server/serve_options.ts: the checks of the server's options, its banner and its summary.
 */

import { assertEquals } from "./assert.ts";
import { serverBanner, serverSummary } from "../lib/server/serve_options.ts";
import { newServerStats } from "../lib/server/verdict.ts";

Deno.test("serverBanner() lists the mode and each setting with no stray comma", () => {
  const addr = { transport: "udp" as const, hostname: "127.0.0.1", port: 12000 };
  const where = "udping server listening on 127.0.0.1:12000 (udp)";
  assertEquals(serverBanner({ mode: "silent" }, addr).line, `${where}, mode silent`);
  assertEquals(
    serverBanner({ mode: "silent", heartbeat: 3 }, addr).line,
    `${where}, mode heartbeat, silence after 3 s`,
  );
  assertEquals(
    serverBanner({ mode: "echo", delay: 10, jitter: 5 }, addr).line,
    `${where}, mode echo, delay 10 ms, jitter ±5 ms, at most 1000 replies/s per client`,
  );
});

Deno.test("serverSummary()'s first line adds up to what was received, whatever became of it", () => {
  const stats = {
    ...newServerStats(),
    received: 28,
    replied: 10,
    dropped: 3,
    limited: 4,
    ignored: 2,
    refused: 1,
    loops: 1,
    failed: 1,
    overflow: 5,
    abandoned: 3,
    clients: 3,
  };
  const lines = serverSummary({ transport: "udp", hostname: "::1", port: 12000 }, stats);
  const figures = lines[2]!.split(", ").slice(1, -1).map((part) => Number(part.split(" ")[0]));
  assertEquals(figures.reduce((sum, n) => sum + n), 28, lines[2]);
  assertEquals(lines[2]!.split(", ").at(-1), "3 clients");
  assertEquals(lines.at(-1), "of the ignored: 1 refused sources, 1 loops");
});
