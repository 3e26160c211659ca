import { assertEquals, assertRejects } from "@std/assert";
import { ConfigError } from "../../../src/lib/errors.ts";
import { type BindDeps, isUnspecified, resolveProxyAddress } from "../../../src/proxy/bind.ts";

const incus = { socket: "/var/lib/incus/unix.socket" };
const truenas = { port: 443 };
const deps = (over: Partial<BindDeps> = {}): BindDeps & { calls: string[] } => {
  const calls: string[] = [];
  return {
    calls,
    incusGateway: (i) => {
      calls.push(`incus ${i.network ?? "(default profile)"}`);
      return Promise.resolve("10.213.0.1");
    },
    localAddressToward: (h, p) => {
      calls.push(`toward ${h}:${p}`);
      return Promise.resolve("192.168.1.50");
    },
    ...over,
  };
};

Deno.test("bind: credential_proxy_bind wins over any lookup", async () => {
  const d = deps();
  const r = await resolveProxyAddress(
    { credential_proxy_bind: "::1", credential_proxy_port: 1, incus, truenas },
    "incus",
    d,
  );
  assertEquals(r, { bind: "::1", port: 1, source: "config" });
  assertEquals(d.calls, []);
});

Deno.test("bind: defaults per backend", async () => {
  const cfg = { credential_proxy_port: 19280, incus, truenas: { ...truenas, host: "nas.lan" } };
  const d = deps();
  assertEquals((await resolveProxyAddress(cfg, "tart", d)).bind, "192.168.64.1");
  assertEquals((await resolveProxyAddress(cfg, "memory", d)).bind, "127.0.0.1");
  assertEquals((await resolveProxyAddress(cfg, "incus", d)).bind, "10.213.0.1");
  assertEquals((await resolveProxyAddress(cfg, "truenas", d)).bind, "192.168.1.50");
  const remote = { ...cfg, incus: { ...incus, remote: "https://incus.lan:8443" } };
  assertEquals((await resolveProxyAddress(remote, "incus", d)).bind, "192.168.1.50");
  assertEquals(d.calls, ["incus (default profile)", "toward nas.lan:443", "toward incus.lan:8443"]);
});

Deno.test("bind: a failed lookup is a ConfigError suggesting credential_proxy_bind", async () => {
  const d = deps({ incusGateway: () => Promise.reject(new Error("socket missing")) });
  const e = await assertRejects(
    () => resolveProxyAddress({ credential_proxy_port: 1, incus, truenas }, "incus", d),
    ConfigError,
  );
  assertEquals(e.hint?.includes("credential_proxy_bind"), true);
  await assertRejects(
    () => resolveProxyAddress({ credential_proxy_port: 1, incus, truenas }, "truenas", d),
    ConfigError,
  );
});

Deno.test("bind: unspecified addresses are recognised", () => {
  assertEquals(isUnspecified("0.0.0.0"), true);
  assertEquals(isUnspecified("::"), true);
  assertEquals(isUnspecified("[::]"), true);
  assertEquals(isUnspecified("127.0.0.1"), false);
});
