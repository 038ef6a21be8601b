/**
 * Soak: runs udping's server and drives it with several flood pingers in
 * parallel for a while (60 s by default), then prints what was sent, what
 * came back, and the memory of both sides at the start and at the end.
 * Loopback only; every process stops by itself.
 *
 * ```sh
 * deno task soak          # 60 s
 * deno task soak 10       # 10 s
 * ```
 *
 * The server runs with `--rate 0`: a flood pinger sends far more than the
 * default 1,000 replies/s per address, and every pinger here has the same
 * address. The target is zero loss and under 10% server RSS growth after a
 * warm-up.
 *
 * @module
 */

import { memoryOf } from "./procfs.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const PINGERS = 3;
const seconds = Number(Deno.args[0] ?? 60);
if (!(seconds >= 5)) {
  console.error("soak: give the duration in seconds, at least 5");
  Deno.exit(2);
}
const warmUp = Math.min(10, seconds / 4);

function spawn(script: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", script, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

const server = spawn("server.ts", ["--port", "0", "--quiet", "--rate", "0"]);
const serverOut = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
const { value: banner = "" } = await serverOut.read();
const port = /listening on .*:(\d+) /.exec(banner)?.[1];
if (port === undefined) throw new Error(`server did not start: ${banner}`);
const serverStart = await memoryOf(server.pid);

const pingers = Array.from(
  { length: PINGERS },
  () => spawn("client.ts", ["127.0.0.1", port, "-f", "-w", String(seconds), "-q", "--json"]),
);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
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
let rest = "";
for (let chunk = await serverOut.read(); !chunk.done; chunk = await serverOut.read()) {
  rest += chunk.value;
}
await server.status;

const lost = sent - received - outstanding;
const growth = ((serverEnd.rss - serverWarm.rss) / serverWarm.rss) * 100;
const mb = (value: number) => `${value.toFixed(1)} MB`;
console.log(`soak: ${PINGERS} flood pingers for ${seconds} s against server.ts --rate 0, loopback`);
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
console.log(`  server summary         ${rest.trim().split("\n").at(-1)}`);
