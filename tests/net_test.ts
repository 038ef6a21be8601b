/**
 * lib/shared/net.ts: addresses, as both scripts read and compare them.
 */

import { assert, assertEquals } from "./assert.ts";
import { clientKey, ipFamily, sameAddress } from "../lib/shared/net.ts";

Deno.test("ipFamily() and sameAddress() know IPv4 and IPv6 literals without node:net", () => {
  const cases: [string, number][] = [
    ["127.0.0.1", 4],
    ["255.255.255.255", 4],
    ["256.1.1.1", 0],
    ["01.2.3.4", 0],
    ["1.2.3", 0],
    ["::1", 6],
    ["0:0:0:0:0:0:0:1", 6],
    ["::ffff:1.2.3.4", 6],
    ["::zz", 0],
    ["localhost", 0],
  ];
  for (const [address, family] of cases) assertEquals(ipFamily(address), family, address);
  assert(sameAddress("::1", "0:0:0:0:0:0:0:1"));
  assert(!sameAddress("127.0.0.1", "127.0.0.2"));
});

Deno.test("clientKey() gives each address and port its own key, the same each time it is asked", () => {
  // It remembers the last client it keyed: asking in turns must not mix them up.
  const sources: [string, number][] = [
    ["10.0.0.1", 40000],
    ["10.0.0.1", 40001],
    ["10.0.0.2", 40000],
    ["::1", 40000],
    ["::2", 40000],
    ["::1", 40001],
  ];
  const first = sources.map(([hostname, port]) => clientKey(hostname, port));
  assertEquals(new Set(first).size, sources.length);
  for (let round = 0; round < 3; round++) {
    for (const [at, [hostname, port]] of sources.entries()) {
      assertEquals(clientKey(hostname, port), first[at]);
      assertEquals(clientKey(hostname, port), first[at]);
    }
  }
  // An address as typed: the same text always gives the same key.
  assertEquals(clientKey(["10.0.0", "1"].join("."), 40000), first[0]);
});
