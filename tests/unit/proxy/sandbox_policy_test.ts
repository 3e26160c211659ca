/**
 * Per-sandbox egress policies in the proxy: a record's own `egress` wins over its repository's
 * configuration, two sandboxes of one repository keep their own policies, a change to the
 * state file applies to the next request, a malformed policy refuses everything, mode `none`
 * refuses everything; and the per-sandbox egress log (one JSON line per decision, 0600,
 * concurrent appends never interleave).
 */
import { assert, assertEquals } from "@std/assert";
import { FakeClock } from "../../testing/fake_clock.ts";
import { Logger } from "../../../src/lib/log.ts";
import { type ClientInfo, recordPolicy, TokenClientDirectory } from "../../../src/proxy/clients.ts";
import { EgressPolicy } from "../../../src/proxy/egress.ts";
import {
  egressLogPath,
  FileEgressLog,
  readEgressLog,
  removeEgressLog,
} from "../../../src/proxy/egress_log.ts";
import { ensureToken } from "../../../src/proxy/tokens.ts";

const noDns = () => Promise.resolve(["93.184.215.14"]);

async function allowed(c: ClientInfo, host: string, port = 443): Promise<boolean> {
  return (await (await c.policy()).decide(host, port, noDns)).allowed;
}

Deno.test("proxy: each sandbox's own policy from the state file; changes apply at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tk-sbpolicy-" });
  try {
    let n = 0;
    const write = async (vms: unknown[]) => {
      const tmp = `${dir}/state.json.${n++}`;
      await Deno.writeTextFile(tmp, JSON.stringify({ version: 2, vms }));
      await Deno.rename(tmp, `${dir}/state.json`);
    };
    const vm = (name: string, egress?: unknown) => ({
      name,
      ip: null,
      repo_root: "/repos/same",
      ...(egress === undefined ? {} : { egress }),
    });
    await write([
      vm("a", { mode: "allowlist", allow: ["a.example"] }),
      vm("b", { mode: "unrestricted", allow: [] }),
      vm("legacy"),
    ]);
    const [ta, tb, tl] = [
      await ensureToken(dir, "a"),
      await ensureToken(dir, "b"),
      await ensureToken(dir, "legacy"),
    ];
    const dirx = new TokenClientDirectory({
      stateDir: dir,
      clock: new FakeClock(Date.now() + 3_600_000),
      logger: new Logger({ sink: () => {} }),
      policySource: {
        load: () => Promise.resolve(new EgressPolicy("allowlist", ["repo.example"])),
        files: () => Promise.resolve([]),
      },
    });
    const id = async (token: string) => {
      const r = await dirx.identify("10.213.0.9", token);
      if (!r.ok) throw new Error(r.reason);
      return r.client;
    };
    // Same repository, own policies.
    assertEquals(await allowed(await id(ta), "a.example"), true);
    assertEquals(await allowed(await id(ta), "repo.example"), false);
    assertEquals(await allowed(await id(tb), "anything.example"), true);
    // No policy of its own: the repository's.
    assertEquals(await allowed(await id(tl), "repo.example"), true);
    // network allow / set, as the state file says them: the next request sees them.
    await write([
      vm("a", { mode: "allowlist", allow: ["a.example", "new.example"] }),
      vm("b", { mode: "none", allow: ["anything.example"] }),
      vm("legacy", { mode: "allowlist", allow: ["bad entry with spaces"] }),
    ]);
    assertEquals(await allowed(await id(ta), "new.example"), true);
    assertEquals(await allowed(await id(tb), "anything.example"), false);
    assertEquals(await allowed(await id(tl), "repo.example"), false, "malformed: refuse all");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("proxy: record policies: modes, malformed values refuse everything", async () => {
  assertEquals(recordPolicy(undefined), null);
  for (const bad of [{ mode: "open", allow: [] }, { mode: "agent" }, "agent", { allow: [1] }]) {
    const p = recordPolicy(bad)!;
    assertEquals((await p.decide("api.anthropic.com", 443, noDns)).allowed, false);
  }
  const none = recordPolicy({ mode: "none", allow: ["x.example"] })!;
  assertEquals(await none.decide("x.example", 443, noDns), {
    allowed: false,
    reason: "egress mode is none",
  });
  const agent = recordPolicy({ mode: "agent", allow: [] })!;
  assertEquals((await agent.decide("api.anthropic.com", 443, noDns)).allowed, true);
});

Deno.test("egress log: JSON lines per sandbox, 0600 in 0700, concurrent appends stay whole", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tk-egresslog-" });
  try {
    const log = new FileEgressLog(dir);
    const hostile = "tk-$(touch x)-`id`";
    const writes = [];
    for (let i = 0; i < 200; i++) {
      writes.push(log.record({
        time: new Date(0).toISOString(),
        sandbox: i % 2 ? "a" : hostile,
        method: "CONNECT",
        host: `h${i}.example`,
        port: 443,
        verdict: i % 3 ? "allowed" : "refused",
        ...(i % 3 ? {} : { reason: "x".repeat(3000) }),
      }));
    }
    await Promise.all(writes);
    const a = await readEgressLog(dir, "a");
    const h = await readEgressLog(dir, hostile);
    assertEquals(a.entries.length, 100);
    assertEquals(h.entries.length, 100);
    assert(a.entries.every((e) => e.sandbox === "a"));
    assert(egressLogPath(dir, hostile).startsWith(`${dir}/proxy/egress/~`));
    assertEquals((await Deno.stat(egressLogPath(dir, "a"))).mode! & 0o777, 0o600);
    assertEquals((await Deno.stat(`${dir}/proxy/egress`)).mode! & 0o777, 0o700);
    // A partial last line is left for the next read.
    const f = await Deno.open(egressLogPath(dir, "a"), { append: true });
    await f.write(new TextEncoder().encode('{"time":"x"'));
    f.close();
    const again = await readEgressLog(dir, "a", a.offset);
    assertEquals([again.entries.length, again.offset], [0, a.offset]);
    await removeEgressLog(dir, "a");
    assertEquals((await readEgressLog(dir, "a")).entries, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
