/** `doctor`'s TrueNAS checks against the fake TrueNAS (in-memory world). */
import { assertEquals, assertMatch } from "@std/assert";
import { ConfigSchema } from "../../../../src/config/schema.ts";
import { truenasChecks } from "../../../../src/doctor/truenas.ts";
import { FakeTruenas, type FakeTruenasOptions } from "../../../fixtures/truenas/server.ts";
import { MemoryWorld } from "../../../fixtures/truenas/world.ts";
import { API_KEY } from "./harness.ts";

async function checks(server: Partial<FakeTruenasOptions>, truenas: Record<string, unknown> = {}) {
  const fake = new FakeTruenas({ world: new MemoryWorld(), apiKey: API_KEY, ...server });
  await fake.start();
  try {
    const config = ConfigSchema.parse({
      backend: "truenas",
      truenas: { host: "127.0.0.1", port: fake.port, api_key: API_KEY, ...truenas },
    });
    const results = await truenasChecks(config, { scheme: "ws" });
    return results.map((r) => [r.name, r.ok, r.message] as const);
  } finally {
    await fake.stop();
  }
}

Deno.test("truenas doctor: reachable, authenticated, version, pool, network", async () => {
  const r = await checks({});
  assertEquals(r.map(([n, ok]) => [n, ok]), [
    ["truenas api", true],
    ["truenas auth", true],
    ["truenas version", true],
    ["truenas pool", true],
    ["truenas network", true],
  ]);
  assertEquals(r[2][2], "TrueNAS-25.04.2.4 (snapshots: zfs.snapshot.*)");
  assertEquals(r[3][2], "pool tank, dataset tank/ix-virt");
  assertEquals(r[4][2], "instances get a MACVLAN NIC on eno1");
});

Deno.test("truenas doctor: a wrong key fails the auth check, without the key", async () => {
  const r = await checks({}, { api_key: "1-wrong-key-abcdefgh" });
  assertEquals(r.map(([n, ok]) => [n, ok]), [["truenas api", true], ["truenas auth", false]]);
  assertMatch(r[1][2], /refused the API key of user root \(AUTH_ERR\)$/);
});

Deno.test("truenas doctor: an old server fails the version check", async () => {
  const r = await checks({ version: "TrueNAS-SCALE-24.04.2" });
  assertEquals(r.at(-1)![0], "truenas version");
  assertEquals(r.at(-1)![1], false);
});

Deno.test("truenas doctor: nothing listening fails the api check at once; no host is a config error", async () => {
  const config = ConfigSchema.parse({ backend: "truenas", truenas: { api_key: API_KEY } });
  const r = await truenasChecks(config);
  assertEquals(r.map((x) => [x.name, x.ok, x.message]), [[
    "truenas config",
    false,
    "truenas.host is not set",
  ]]);
  const { freePort } = await import("../../../testing/free_port.ts");
  const port = await freePort();
  const closed = ConfigSchema.parse({
    backend: "truenas",
    truenas: { host: "127.0.0.1", port, api_key: API_KEY },
  });
  const c = await truenasChecks(closed, { scheme: "ws" });
  assertEquals(c.map((x) => [x.name, x.ok]), [["truenas api", false]]);
  assertMatch(c[0].message, new RegExp(`^TrueNAS 127\\.0\\.0\\.1:${port}: connecting: `));
});
