/**
 * lib/client/client_cli.ts: the client's command line.
 */

import { assertEquals, assertThrows } from "./assert.ts";
import { parseTargets } from "../lib/client/client_cli.ts";

Deno.test("parseTargets() reads host port, host:port lists and [v6]:port", () => {
  assertEquals(parseTargets([]), [{ host: "127.0.0.1", port: 12000 }]);
  assertEquals(parseTargets(["::1", "7"]), [{ host: "::1", port: 7 }]);
  assertEquals(parseTargets(["a:1", "[::1]:2", "10.0.0.1:3"]), [
    { host: "a", port: 1 },
    { host: "::1", port: 2 },
    { host: "10.0.0.1", port: 3 },
  ]);
  assertThrows(() => parseTargets(["a:1", "b"]), TypeError);
  assertThrows(() => parseTargets(["a:70000"]), RangeError);
  assertThrows(() => parseTargets(["h", "1", "2"]), TypeError);
});

Deno.test("parseTargets() takes the port from --port, once, and says when host and port look swapped", () => {
  assertEquals(parseTargets(["h"], "7"), [{ host: "h", port: 7 }]);
  assertEquals(parseTargets([], "7"), [{ host: "127.0.0.1", port: 7 }]);
  assertThrows(() => parseTargets(["h", "1"], "2"), /^TypeError: give the port once/);
  assertThrows(() => parseTargets(["h:1"], "2"), /^TypeError: give the port once/);
  assertThrows(() => parseTargets(["h"], "x", "--port"), /^RangeError: --port must be/);
  assertThrows(
    () => parseTargets(["12000", "localhost"]),
    /^TypeError: host and port look swapped: write client\.ts localhost 12000$/,
  );
  assertThrows(() => parseTargets(["12000"]), /^TypeError: '12000' looks like a port/);
});
