/**
 * The fallback load generator, for a machine without a C compiler: keeps
 * WINDOW requests in flight against HOST PORT for SECONDS (or until MAX
 * replies) and prints "replies=N seconds=S rate=R lost=L" like
 * bench/loadgen.c. Being Deno itself, it may be the bottleneck.
 *
 * usage: deno run --allow-net bench/loadgen.ts HOST PORT SECONDS [WINDOW] [SIZE] [MAX]
 *
 * @module
 */

import { Receiver } from "../lib/shared/socket.ts";

const [
  host = "127.0.0.1",
  portText = "12000",
  secondsText = "3",
  windowText = "64",
  sizeText = "64",
  maxText = "0",
] = Deno.args;
const target: Deno.NetAddr = { transport: "udp", hostname: host, port: Number(portText) };
const socket = Deno.listenDatagram({
  transport: "udp",
  hostname: host.includes(":") ? "::" : "0.0.0.0",
  port: 0,
});
const receiver = new Receiver(socket);
let seq = 0;
/** The next request: its own seq, so that no two are the same bytes (a
 * udping server takes the same bytes coming back at once for a loop). */
const request = () =>
  new TextEncoder().encode(`PING ${++seq % 2 ** 32} 0.000 0000BEEF `.padEnd(Number(sizeText), "A"));
const max = Number(maxText);
const start = performance.now();
const end = start + Number(secondsText) * 1000;
let replies = 0;
let lost = 0;
const fill = async () => {
  for (let i = 0; i < Number(windowText); i++) await socket.send(request(), target);
};
await fill();
while (performance.now() < end && (max === 0 || replies < max)) {
  const reply = await receiver.next(Math.min(end, performance.now() + 200));
  if (reply) {
    replies++;
    await socket.send(request(), target);
  } else if (performance.now() < end) {
    lost += Number(windowText);
    await fill();
  }
}
const seconds = (performance.now() - start) / 1000;
console.log(
  `replies=${replies} seconds=${seconds.toFixed(3)} rate=${
    Math.round(replies / seconds)
  } lost=${lost}`,
);
receiver.close();
socket.close();
