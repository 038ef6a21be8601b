/**
 * The classic UDP Pinger lab in one command: starts an uppercasing server
 * that drops about 30% of requests on 127.0.0.1, pings it 10 times as
 * `client.ts` would, prints ping's lines and summary, and stops the server.
 *
 * ```sh
 * deno task demo
 * ```
 *
 * It is also the shortest example of driving both modules from a program.
 *
 * @module
 */

import { serve } from "./server.ts";
import { main as clientMain } from "./client.ts";
import { runMain } from "./lib/shared/cli.ts";
import { parseClientCommand } from "./lib/client/client_cli.ts";

if (import.meta.main) {
  await runMain("demo.ts", async () => {
    // Port 0: a free port, so the demo never clashes with a running server.
    const server = await serve({ host: "127.0.0.1", port: 0, mode: "upper", loss: 0.3 });
    const { port } = server.addr;
    const args = ["127.0.0.1", String(port), ...Deno.args];
    // The banner says what the client will do, flags included.
    const command = parseClientCommand(args);
    const { count, interval } = "output" in command
      ? command.output.options
      : { count: null, interval: 1 };
    console.log(
      `demo: an uppercasing server on 127.0.0.1:${port} drops ~30% of requests; ` +
        `pinging it ${
          count === null ? "until the deadline" : `${count} times`
        }, one per ${interval} s\n`,
    );
    try {
      return await clientMain(args);
    } finally {
      await server.close();
      console.log(
        `\ndemo: the server received ${server.stats.received}, dropped ${server.stats.dropped}, ` +
          `replied ${server.stats.replied}`,
      );
    }
  });
}
