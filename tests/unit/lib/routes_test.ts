import { assertEquals } from "@std/assert";
import {
  BRIDGE_CANDIDATES,
  chooseSubnet,
  formatNet,
  overlaps,
  parseCidr,
  parseProcNetRoute,
} from "../../../src/lib/routes.ts";

const PROC = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
tkbr0\t0000D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wg0\t0000D90A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
garbage line
`;

Deno.test("routes: /proc/net/route's little-endian hex becomes networks", () => {
  assertEquals(parseProcNetRoute(PROC).map(formatNet), [
    "0.0.0.0/0",
    "10.213.0.0/24",
    "192.0.2.0/24",
    "10.217.0.0/16",
  ]);
});

Deno.test("routes: CIDR parsing and overlap", () => {
  assertEquals(formatNet(parseCidr("10.213.0.1/24")!), "10.213.0.0/24");
  for (const bad of ["10.0.0.1", "300.1.1.1/24", "1.2.3.4/33", "a.b.c.d/8", "", "1.2.3.4/24 x"]) {
    assertEquals(parseCidr(bad), null, bad);
  }
  assertEquals(overlaps(parseCidr("10.0.0.0/8")!, parseCidr("10.217.40.1/24")!), true);
  assertEquals(overlaps(parseCidr("10.217.40.0/24")!, parseCidr("10.217.41.0/24")!), false);
});

Deno.test("routes: the chosen subnet avoids every route but the default one", () => {
  const taken = parseProcNetRoute(PROC); // 10.217.0.0/16 covers the first candidate
  assertEquals(chooseSubnet(BRIDGE_CANDIDATES, taken), BRIDGE_CANDIDATES[1]);
  assertEquals(chooseSubnet(BRIDGE_CANDIDATES, [parseCidr("0.0.0.0/0")!]), BRIDGE_CANDIDATES[0]);
  const all = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"].map((c) => parseCidr(c)!);
  assertEquals(chooseSubnet(BRIDGE_CANDIDATES, all), null);
  // Every candidate is private and a /24 with the gateway as its first address.
  for (const c of BRIDGE_CANDIDATES) {
    assertEquals(c.endsWith(".1/24"), true, c);
    assertEquals(all.some((p) => overlaps(p, parseCidr(c)!)), true, c);
  }
});
