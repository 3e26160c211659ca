import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { ConfigError } from "../../../src/lib/errors.ts";
import { AGENT_PRESET_DOMAINS, EgressPolicy, type Resolver } from "../../../src/proxy/egress.ts";

/** A resolver from a table; records what was asked. */
function table(entries: Record<string, string[]>): Resolver & { asked: string[] } {
  const asked: string[] = [];
  const fn = (host: string) => {
    asked.push(host);
    return host in entries ? Promise.resolve(entries[host]) : Promise.reject(new Error("NXDOMAIN"));
  };
  return Object.assign(fn, { asked });
}

Deno.test("egress: the agent preset allows its domains (pixels-features.md §6)", async () => {
  const p = new EgressPolicy("agent", []);
  const dns = table({
    "api.anthropic.com": ["160.79.104.10"],
    "registry.npmjs.org": ["104.16.1.1"],
  });
  assertEquals(AGENT_PRESET_DOMAINS.length, 24);
  const d = await p.decide("api.anthropic.com", 443, dns);
  assertEquals(d, { allowed: true, address: "160.79.104.10", family: 4 });
  assert((await p.decide("REGISTRY.npmjs.org.", 443, dns)).allowed);
});

Deno.test("egress: a host off the list is refused", async () => {
  const p = new EgressPolicy("allowlist", ["github.com"]);
  const dns = table({ "evil.example": ["93.184.216.34"] });
  const d = await p.decide("evil.example", 443, dns);
  assertEquals(d.allowed, false);
  assertEquals(dns.asked, [], "no DNS lookup for a name that cannot be allowed");
  if (!d.allowed) assert(d.reason.includes("not on the egress allowlist"));
});

Deno.test("egress: agent preset CIDRs allow hosts that resolve into them", async () => {
  const p = new EgressPolicy("agent", []);
  const dns = table({
    "storage.googleapis.com": ["142.250.74.59"],
    "other.example": ["93.184.216.34"],
  });
  assert((await p.decide("storage.googleapis.com", 443, dns)).allowed);
  assertEquals((await p.decide("other.example", 443, dns)).allowed, false);
});

Deno.test("egress: loopback, private and link-local targets are refused in every mode", async () => {
  for (const mode of ["agent", "allowlist", "unrestricted"] as const) {
    const p = new EgressPolicy(mode, []);
    for (
      const target of [
        "127.0.0.1",
        "::1",
        "10.213.0.1",
        "169.254.169.254",
        "[::ffff:127.0.0.1]",
        "0.0.0.0",
      ]
    ) {
      const d = await p.decide(target, 22, table({}));
      assertEquals(d.allowed, false, `${mode} ${target}`);
    }
  }
});

Deno.test("egress: an allowed name that resolves to loopback is refused (rebinding)", async () => {
  const p = new EgressPolicy("agent", []);
  const d = await p.decide("github.com", 443, table({ "github.com": ["127.0.0.1"] }));
  assertEquals(d.allowed, false);
  if (!d.allowed) assert(d.reason.includes("127.0.0.1 (loopback)"), d.reason);
  const u = new EgressPolicy("unrestricted", []);
  assertEquals(
    (await u.decide("localhost", 80, table({ localhost: ["127.0.0.1", "::1"] }))).allowed,
    false,
  );
});

Deno.test("egress: explicit egress_allow entries unlock private targets", async () => {
  const p = new EgressPolicy("agent", ["10.213.0.0/24", "127.0.0.1:8080", "db.internal"]);
  assert((await p.decide("10.213.0.7", 5432, table({}))).allowed);
  assert((await p.decide("127.0.0.1", 8080, table({}))).allowed);
  assertEquals((await p.decide("127.0.0.1", 8081, table({}))).allowed, false, "port-bound");
  const d = await p.decide("db.internal", 5432, table({ "db.internal": ["192.168.1.20"] }));
  assertEquals(d, { allowed: true, address: "192.168.1.20", family: 4 });
  // A preset name named again explicitly (a mirror that resolves to a private or reserved
  // address): the explicit entry decides, not the preset's.
  const mirror = table({ "deb.debian.org": ["203.0.113.80"] });
  assertEquals(
    (await new EgressPolicy("agent", []).decide("deb.debian.org", 80, mirror)).allowed,
    false,
  );
  const named = new EgressPolicy("agent", ["deb.debian.org"]);
  assertEquals(await named.decide("deb.debian.org", 80, mirror), {
    allowed: true,
    address: "203.0.113.80",
    family: 4,
  });
});

Deno.test("egress: wildcards, apex and port forms", async () => {
  const p = new EgressPolicy("allowlist", ["*.example.org", ".example.net", "example.com:8443"]);
  const dns = table({
    "a.example.org": ["1.2.3.4"],
    "example.org": ["1.2.3.4"],
    "example.net": ["1.2.3.5"],
    "x.y.example.net": ["1.2.3.6"],
    "example.com": ["1.2.3.7"],
  });
  assert((await p.decide("a.example.org", 443, dns)).allowed);
  assertEquals((await p.decide("example.org", 443, dns)).allowed, false);
  assert((await p.decide("example.net", 443, dns)).allowed);
  assert((await p.decide("x.y.example.net", 443, dns)).allowed);
  assert((await p.decide("example.com", 8443, dns)).allowed);
  assertEquals((await p.decide("example.com", 443, dns)).allowed, false);
});

Deno.test("egress: unrestricted allows any public address; unresolvable names are refused", async () => {
  const p = new EgressPolicy("unrestricted", []);
  assert(
    (await p.decide("anything.example", 443, table({ "anything.example": ["8.8.8.8"] }))).allowed,
  );
  assertEquals((await p.decide("nx.example", 443, table({}))).allowed, false);
});

Deno.test("egress: a bad egress_allow entry is a ConfigError naming it", () => {
  for (const bad of ["", "exa mple.com", "10.0.0.0/99", "*.1.2.3.4", "host:99999", "http://x"]) {
    const e = assertThrows(() => new EgressPolicy("agent", [bad]), ConfigError);
    assert(e.message.includes(`'${bad}'`), e.message);
  }
});

Deno.test("egress: resolver failures do not throw", async () => {
  const p = new EgressPolicy("unrestricted", []);
  const d = await p.decide("x.example", 443, () => Promise.reject(new Error("boom")));
  assertEquals(d.allowed, false);
  await assertRejects(() => Promise.reject(new Error("sanity")));
});
