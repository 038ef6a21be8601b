/**
 * lib/shared/net.ts: addresses, as both scripts read and compare them.
 */

import { assert, assertEquals } from "./assert.ts";
import { ipFamily, sameAddress } from "../lib/shared/net.ts";

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
