import { assert, assertEquals } from "@std/assert";
import { cidrContains, classifyIp, formatIp, parseCidr, parseIp } from "../../../src/proxy/ip.ts";

function cls(text: string): string {
  const ip = parseIp(text);
  assert(ip, `not parsed: ${text}`);
  return classifyIp(ip!);
}

Deno.test("ip: parses IPv4, IPv6 (compressed, embedded IPv4, zone, brackets)", () => {
  assertEquals(formatIp(parseIp("10.213.0.1")!), "10.213.0.1");
  assertEquals(formatIp(parseIp("[::1]")!), "::1");
  assertEquals(formatIp(parseIp("fe80::1%eth0")!), "fe80::1");
  assertEquals(formatIp(parseIp("::ffff:127.0.0.1")!), "::ffff:7f00:1");
  assertEquals(formatIp(parseIp("2001:db8:0:0:0:0:0:1")!), "2001:db8::1");
  for (
    const bad of [
      "127.1",
      "0x7f.0.0.1",
      "2130706433",
      "1.2.3.256",
      "01.2.3.4",
      "::1::2",
      "g::1",
      "example.com",
      "",
    ]
  ) {
    assertEquals(parseIp(bad), null, bad);
  }
});

Deno.test("ip: classes, including IPv4 hidden in IPv6", () => {
  assertEquals(cls("127.0.0.1"), "loopback");
  assertEquals(cls("127.200.3.4"), "loopback");
  assertEquals(cls("::1"), "loopback");
  assertEquals(cls("::ffff:127.0.0.1"), "loopback");
  assertEquals(cls("::ffff:10.0.0.1"), "private");
  assertEquals(cls("64:ff9b::a9fe:a9fe"), "link_local"); // NAT64 of 169.254.169.254
  assertEquals(cls("2002:c0a8:0101::1"), "private"); // 6to4 of 192.168.1.1
  assertEquals(cls("10.213.0.1"), "private");
  assertEquals(cls("172.31.255.255"), "private");
  assertEquals(cls("172.32.0.1"), "public");
  assertEquals(cls("192.168.64.1"), "private");
  assertEquals(cls("169.254.169.254"), "link_local");
  assertEquals(cls("fe80::1"), "link_local");
  assertEquals(cls("fd00::1"), "private");
  assertEquals(cls("100.64.0.1"), "cgnat");
  assertEquals(cls("0.0.0.0"), "unspecified");
  assertEquals(cls("::"), "unspecified");
  assertEquals(cls("224.0.0.1"), "multicast");
  assertEquals(cls("1.1.1.1"), "public");
  assertEquals(cls("2606:4700::1111"), "public");
});

Deno.test("ip: CIDR membership", () => {
  const c = parseCidr("185.199.108.0/22")!;
  assert(cidrContains(c, parseIp("185.199.111.133")!));
  assert(!cidrContains(c, parseIp("185.199.112.1")!));
  assert(cidrContains(parseCidr("10.0.0.0/8")!, parseIp("::ffff:10.1.2.3")!));
  assert(cidrContains(parseCidr("0.0.0.0/0")!, parseIp("8.8.8.8")!));
  assert(cidrContains(parseCidr("2001:db8::/32")!, parseIp("2001:db8:1::5")!));
  assertEquals(parseCidr("10.0.0.0/33"), null);
  assertEquals(parseCidr("10.0.0.0/x"), null);
});
