/**
 * lib/server/serve_options.ts: the checks of the server's options and its banner.
 */

import { assertEquals } from "./assert.ts";
import { serverBanner } from "../lib/server/serve_options.ts";

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
