/**
 * lib/server/server_stats.ts: the counters a server keeps and its summary.
 */

import { assertEquals } from "./assert.ts";
import { newServerStats, serverSummary } from "../lib/server/server_stats.ts";

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
