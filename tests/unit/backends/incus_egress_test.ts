/**
 * The host nftables script of Incus egress enforcement: what it lets through, alternating
 * chains replaced in one transaction, names that cannot collide or inject, and refusals.
 * (Packets against it: tests/integration/egress_incus_test.ts.)
 */
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  chainPrefix,
  chainStem,
  HostNft,
  parseStoredPolicy,
  restrictScript,
  unrestrictScript,
} from "../../../src/backends/incus/egress.ts";
import { RuntimeError, UnsupportedError } from "../../../src/lib/errors.ts";

const base = {
  table: "tachikoma_egress",
  instance: "tk-app-main",
  nics: [{ nic: "eth0", device: "veth1234abcd" }],
  proxy: { host: "10.213.0.1", port: 8080 },
  existing: [] as string[],
};

Deno.test("incus egress: the restricting script lets through ARP, DHCP and the proxy only", () => {
  const script = restrictScript(base);
  const stem = chainStem("tk-app-main", "eth0");
  assertStringIncludes(script, `add chain netdev tachikoma_egress ${stem}_a {`);
  assertStringIncludes(script, 'hook ingress device "veth1234abcd" priority -500; policy drop;');
  assertStringIncludes(script, "ether type arp accept");
  assertStringIncludes(script, "udp sport 68 udp dport 67 accept");
  assertStringIncludes(script, "ip daddr 10.213.0.1 tcp dport 8080 accept");
  assertStringIncludes(script, "tcp sport 22 tcp flags & (syn | ack) != syn accept");
  assertEquals(script.split("\n").filter((l) => l.includes("accept")).length, 4);
  assert(!script.includes("delete"));
  // No proxy: only ARP and DHCP.
  const closed = restrictScript({ ...base, proxy: null });
  assertEquals(closed.split("\n").filter((l) => l.includes("accept")).length, 2);
});

Deno.test("incus egress: a change adds the other chain and deletes the old one in one script", () => {
  const stem = chainStem("tk-app-main", "eth0");
  const script = restrictScript({ ...base, existing: [`${stem}_a`] });
  const lines = script.trim().split("\n");
  assert(
    lines.findIndex((l) => l.includes(`${stem}_b {`)) <
      lines.findIndex((l) => l === `delete chain netdev tachikoma_egress ${stem}_a`),
  );
  assertEquals(
    unrestrictScript("tachikoma_egress", [`${stem}_a`]),
    `delete chain netdev tachikoma_egress ${stem}_a\n`,
  );
  assertEquals(unrestrictScript("tachikoma_egress", []), "");
});

Deno.test("incus egress: names never collide or inject; bad input is refused", () => {
  // Incus names map to hex: "a-b" and "a" never share a prefix.
  assert(!chainPrefix("a-b").startsWith(chainPrefix("a")));
  assert(!chainStem("a", "eth0").startsWith(chainPrefix("a-")));
  for (const device of ['veth"; flush ruleset; "', "veth 1", "a".repeat(16), ""]) {
    assertThrows(
      () => restrictScript({ ...base, nics: [{ nic: "eth0", device }] }),
      RuntimeError,
    );
  }
  assertThrows(() => restrictScript({ ...base, table: "t; flush ruleset" }), RuntimeError);
  for (const host of ["0.0.0.0x", "::1", "gateway", "10.213.0.1; flush"]) {
    assertThrows(() => restrictScript({ ...base, proxy: { host, port: 1 } }), UnsupportedError);
  }
  assertThrows(() => restrictScript({ ...base, proxy: { host: "10.0.0.1", port: 0 } }));
});

Deno.test("incus egress: the stored policy round-trips; anything else reads as none stored", () => {
  const policy = { mode: "allowlist" as const, allow: ["a.example"], proxy: base.proxy };
  assertEquals(parseStoredPolicy(JSON.stringify(policy)), policy);
  assertEquals(parseStoredPolicy(JSON.stringify({ mode: "agent", allow: [] })), {
    mode: "agent",
    allow: [],
  });
  for (const bad of [undefined, "", "{", '{"mode":"open"}', "[]", "null"]) {
    assertEquals(parseStoredPolicy(bad), null);
  }
});

Deno.test("incus egress: nft without root is UnsupportedError with the way out; a missing table is no chains", async () => {
  const calls: string[][] = [];
  let answer = { code: 1, stdout: "", stderr: "Error: Operation not permitted\n", timedOut: false };
  const runner = {
    run(_cmd: string, args: string[]) {
      calls.push(args);
      return Promise.resolve(answer);
    },
  };
  const nft = new HostNft(runner, "tachikoma_egress");
  const e = await assertRejects(() => nft.chains("x"), UnsupportedError);
  assertStringIncludes(e.message, "needs root");
  answer = {
    code: 1,
    stdout: "",
    stderr: "Error: No such file or directory\nlist table netdev tachikoma_egress\n",
    timedOut: false,
  };
  assertEquals(await nft.chains("x"), []);
  await nft.unrestrict("x");
  assertEquals(calls.every((a) => a[0] === "-j"), true, "nothing to delete: no nft -f");
  const stem = chainStem("x", "eth0");
  answer = {
    code: 0,
    stdout: JSON.stringify({
      nftables: [{ chain: { name: `${stem}_a` } }, { chain: { name: chainStem("y", "eth0") } }],
    }),
    stderr: "",
    timedOut: false,
  };
  assertEquals(await nft.chains("x"), [`${stem}_a`]);
});
