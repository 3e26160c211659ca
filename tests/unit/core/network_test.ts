/**
 * A sandbox's egress policy over the memory backend: spawn records it (config or --egress),
 * network show/set/allow/deny change the state record and the engine, bad input changes
 * nothing, and the egress log is read (and followed) from the proxy's per-sandbox file.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  allowHost,
  denyHost,
  networkLog,
  setNetworkMode,
  showNetwork,
} from "../../../src/core/network.ts";
import { NotFoundError, UsageError } from "../../../src/lib/errors.ts";
import { FileEgressLog } from "../../../src/proxy/egress_log.ts";
import type { EgressLogEntry } from "../../../src/proxy/egress_log.ts";
import { harness } from "./helpers.ts";
import { FakeClock } from "../../testing/fake_clock.ts";

Deno.test("spawn keeps the config's policy in the record; --egress overrides the mode", async () => {
  await using h = await harness({
    config: { egress: "allowlist", egress_allow: ["Example.COM", "10.0.0.0/8"] },
  });
  const a = await h.service.spawn({ branch: "a" });
  assertEquals(a.record.egress, { mode: "allowlist", allow: ["example.com", "10.0.0.0/8"] });
  // The engine got it too (the memory engine records it).
  assertEquals((await h.backend.getEgress(a.name)).mode, "allowlist");
  const b = await h.service.spawn({ branch: "b", egress: "none" });
  assertEquals(b.record.egress?.mode, "none");
  assertEquals((await h.backend.getEgress(b.name)).mode, "none");
  // A later spawn without --egress keeps the sandbox's own mode.
  const again = await h.service.spawn({ branch: "b" });
  assertEquals(again.record.egress?.mode, "none");
});

Deno.test("network show/set/allow/deny change the record and the engine", async () => {
  await using h = await harness({ config: { egress: "agent", egress_allow: [] } });
  const { name } = await h.service.spawn({ branch: "feat" });
  const shown = await showNetwork(h.service, { name });
  assertEquals(shown.mode, "agent");
  assertEquals(shown.source, "sandbox");
  assertEquals(shown.proxy.enforced, true);
  assertEquals(shown.engine, { mechanism: "memory", restricted: true, error: null });

  const set = await setNetworkMode(h.service, { name, mode: "allowlist" });
  assertEquals([set.mode, set.changed], ["allowlist", true]);
  assertEquals((await h.store.get(name))?.egress, { mode: "allowlist", allow: [] });
  assertEquals((await h.backend.getEgress(name)).mode, "allowlist");
  assertEquals((await setNetworkMode(h.service, { name, mode: "allowlist" })).changed, false);

  const allowed = await allowHost(h.service, { name, host: "*.Example.com:443" });
  assertEquals(allowed.allow, ["*.example.com:443"]);
  assertEquals((await allowHost(h.service, { name, host: "*.example.com:443" })).changed, false);
  await allowHost(h.service, { name, host: "192.168.1.0/24" });
  assertEquals((await h.backend.getEgress(name)).allow, ["*.example.com:443", "192.168.1.0/24"]);
  const denied = await denyHost(h.service, { name, host: "*.example.com:443" });
  assertEquals(denied.allow, ["192.168.1.0/24"]);
  assertEquals((await h.store.get(name))?.egress?.allow, ["192.168.1.0/24"]);

  const open = await setNetworkMode(h.service, { name, mode: "unrestricted" });
  assertEquals(open.engine.restricted, false);
  assertEquals(open.allow, ["192.168.1.0/24"]);
});

Deno.test("network: bad input is one line naming it, exit 2/3, and nothing changes", async () => {
  await using h = await harness({ config: { egress: "agent", egress_allow: [] } });
  const { name } = await h.service.spawn({ branch: "feat" });
  const before = JSON.stringify(await h.store.get(name));
  const calls = (await h.backend.calls()).length;
  for (const mode of ["open", "", "AGENT", "none; rm -rf /"]) {
    const e = await assertRejects(() => setNetworkMode(h.service, { name, mode }), UsageError);
    assert(e.message.startsWith(`unknown egress mode ${JSON.stringify(mode)}`), e.message);
    assertEquals(e.exitCode, 2);
  }
  for (const host of ["", "a b", "$(id)", "10.0.0.0/33", "*.", "host:99999", "`x`", "a\nb"]) {
    const e = await assertRejects(() => allowHost(h.service, { name, host }), UsageError);
    assert(e.message.startsWith(`invalid host ${JSON.stringify(host)}`), e.message);
    assert(!e.message.includes("\n"), "one line");
    await assertRejects(() => denyHost(h.service, { name, host }), UsageError);
  }
  const missing = await assertRejects(
    () => setNetworkMode(h.service, { name: "no-such-sandbox", mode: "none" }),
    NotFoundError,
  );
  assertEquals(missing.exitCode, 3);
  await assertRejects(() => showNetwork(h.service, { name: "no-such-sandbox" }), NotFoundError);
  await assertRejects(() => networkLog(h.service, { name: "no-such-sandbox" }), NotFoundError);
  assertEquals(JSON.stringify(await h.store.get(name)), before);
  assertEquals((await h.backend.calls()).length, calls);
});

Deno.test("network show: a record without a policy shows the config's", async () => {
  await using h = await harness({ config: { egress: "allowlist", egress_allow: ["a.example"] } });
  const { name } = await h.service.spawn({ branch: "feat" });
  await h.store.update((s) => void delete s.vms[0].egress);
  const shown = await showNetwork(h.service, { name });
  assertEquals([shown.mode, shown.allow, shown.source], ["allowlist", ["a.example"], "config"]);
});

function entry(sandbox: string, host: string, verdict: "allowed" | "refused"): EgressLogEntry {
  return {
    time: "2026-01-01T00:00:00.000Z",
    sandbox,
    method: "CONNECT",
    host,
    port: 443,
    verdict,
    ...(verdict === "refused" ? { reason: "not on the egress allowlist" } : {}),
  };
}

Deno.test("network log: the sandbox's own lines; -f follows new ones until aborted", async () => {
  await using h = await harness();
  const { name } = await h.service.spawn({ branch: "feat" });
  const other = (await h.service.spawn({ branch: "other" })).name;
  const log = new FileEgressLog(h.stateDir);
  assertEquals((await networkLog(h.service, { name })).entries, []);
  await log.record(entry(name, "a.example", "allowed"));
  await log.record(entry(other, "b.example", "refused"));
  await log.record(entry(name, "c.example", "refused"));
  const read = await networkLog(h.service, { name });
  assertEquals(read.entries.map((e) => [e.host, e.verdict]), [
    ["a.example", "allowed"],
    ["c.example", "refused"],
  ]);
  const info = await Deno.stat(`${h.stateDir}/proxy/egress/${name}.log`);
  assertEquals(info.mode! & 0o777, 0o600);

  const seen: string[] = [];
  const stop = new AbortController();
  const clock = new FakeClock();
  const following = networkLog(h.service, {
    name,
    follow: true,
    signal: stop.signal,
    clock,
    onEntries: (entries) => seen.push(...entries.map((e) => e.host)),
  });
  await clock.sleeping();
  assertEquals(seen, ["a.example", "c.example"]);
  await log.record(entry(name, "d.example", "allowed"));
  clock.advance(1_000);
  await clock.sleeping();
  assertEquals(seen, ["a.example", "c.example", "d.example"]);
  stop.abort();
  await following;
});
