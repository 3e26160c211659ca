/**
 * Identifying clients: the token decides the sandbox (not the IP), the sandbox's repository
 * decides the egress policy (reloaded when its configuration changes; an invalid one fails
 * closed), the state file is followed as it changes.
 */
import { sha256Hex, trustKey, updateTrustStore } from "../../../src/config/trust_store.ts";
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { FakeClock } from "../../testing/fake_clock.ts";
import { Logger } from "../../../src/lib/log.ts";
import {
  canonicalIp,
  type ClientInfo,
  type Identification,
  TokenClientDirectory,
} from "../../../src/proxy/clients.ts";
import { EgressPolicy } from "../../../src/proxy/egress.ts";
import { configPolicySource } from "../../../src/proxy/repo_policy.ts";
import { ensureToken, newToken } from "../../../src/proxy/tokens.ts";

/** A table resolver: every name is one public address (only decided on, never contacted). */
const noDns = () => Promise.resolve(["93.184.215.14"]);

function client(id: Identification): ClientInfo {
  if (!id.ok) throw new Error(`not identified: ${id.reason}`);
  return id.client;
}

async function allowed(c: ClientInfo, host: string, port = 443): Promise<boolean> {
  return (await (await c.policy()).decide(host, port, noDns)).allowed;
}

Deno.test("clients: the token names the sandbox; its repo's policy applies; IP is only logged", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tk-clients-" });
  try {
    const write = (vms: unknown[]) =>
      Deno.writeTextFile(`${dir}/state.json`, JSON.stringify({ version: 2, vms }));
    await write([
      { name: "tk-a-main", ip: "10.213.0.5", repo_root: "/repos/a", worktree_path: "/w/a" },
      { name: "tk-b-x", ip: "10.213.0.6", repo_root: "/repos/b", worktree_path: "/w/b" },
      { name: "tk-old", ip: null, worktree_path: "/w/old" },
    ]);
    const [a, b, old] = [
      await ensureToken(dir, "tk-a-main"),
      await ensureToken(dir, "tk-b-x"),
      await ensureToken(dir, "tk-old"),
    ];
    const loaded: string[] = [];
    const lines: string[] = [];
    const dirx = new TokenClientDirectory({
      stateDir: dir,
      clock: new FakeClock(Date.now() + 3_600_000),
      logger: new Logger({ sink: (l) => lines.push(l) }),
      policySource: {
        load: (root) => {
          loaded.push(root);
          return Promise.resolve(
            new EgressPolicy("allowlist", [root === "/repos/a" ? "a.example" : "b.example"]),
          );
        },
        files: () => Promise.resolve([]),
      },
    });
    assertEquals(await dirx.identify("10.213.0.5", null), {
      ok: false,
      ip: "10.213.0.5",
      reason: "no token",
    });
    assertEquals((await dirx.identify("10.213.0.5", newToken())).ok, false);
    const ca = client(await dirx.identify("::ffff:10.213.0.5", a));
    assertEquals([ca.ip, ca.sandbox], ["10.213.0.5", "tk-a-main"]);
    assertEquals(await allowed(ca, "a.example"), true);
    assertEquals(await allowed(ca, "b.example"), false);
    // B's token from A's address: B's identity and B's policy (and one warning).
    const cb = client(await dirx.identify("10.213.0.5", b));
    assertEquals(cb.sandbox, "tk-b-x");
    assertEquals(await allowed(cb, "b.example"), true);
    assertEquals(await allowed(cb, "a.example"), false);
    client(await dirx.identify("10.213.0.5", b));
    const mismatch = lines.filter((l) => l.includes("tk-b-x's token is used from 10.213.0.5"));
    assertEquals(mismatch.length, 1, lines.join("\n"));
    assertStringIncludes(mismatch[0], "its recorded address is 10.213.0.6");
    // A record without repo_root: its worktree's configuration.
    const co = client(await dirx.identify("10.213.0.9", old));
    await co.policy();
    assertEquals(loaded, ["/repos/a", "/repos/b", "/w/old"], "policies are cached per repo");
    // API calls never load a policy.
    await dirx.identify("10.213.0.5", a);
    assertEquals(loaded.length, 3);
    // The state file changes: a removed sandbox's token is refused at once.
    await write([{ name: "tk-a-main", ip: "10.213.0.5", repo_root: "/repos/a" }]);
    assertEquals((await dirx.identify("10.213.0.6", b)).ok, false);
    assert(lines.some((l) => l.includes("sandbox tk-b-x, which tachikoma's state no longer")));
    for (const t of [a, b, old]) assert(!lines.join("\n").includes(t));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("clients: a repo's trusted egress config applies to the next request; edits need trust again; invalid fails closed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tk-clients-cfg-" });
  try {
    const config = `${dir}/config`;
    const repo = `${dir}/repo`;
    await Deno.mkdir(config);
    await Deno.mkdir(`${repo}/.git`, { recursive: true });
    await Deno.writeTextFile(`${config}/config.toml`, 'egress = "allowlist"\n');
    await Deno.writeTextFile(`${repo}/.tachikoma.toml`, 'egress_allow = ["one.example"]\n');
    // egress keys from a repo file count only once the user trusted that exact content.
    const trust = async (file: string) => {
      const sha = await sha256Hex(await Deno.readFile(file));
      await updateTrustStore(config, (s) => {
        s.files[trustKey(file)] = { sha256: sha, trusted_at: "2026-12-02T00:00:00Z" };
      });
    };
    await trust(`${repo}/.tachikoma.toml`);
    await Deno.writeTextFile(
      `${config}/state.json`,
      JSON.stringify({
        version: 2,
        vms: [{ name: "tk-r", ip: "10.0.0.2", repo_root: repo, worktree_path: repo }],
      }),
    );
    const token = await ensureToken(config, "tk-r");
    const lines: string[] = [];
    const env: Record<string, string> = { HOME: dir, TACHIKOMA_CONFIG_DIR: config };
    const dirx = new TokenClientDirectory({
      stateDir: config,
      logger: new Logger({ sink: (l) => lines.push(l) }),
      policySource: configPolicySource((n) => env[n]),
    });
    const ask = async (host: string) =>
      allowed(client(await dirx.identify("10.0.0.2", token)), host);
    assertEquals(await ask("one.example"), true);
    assertEquals(await ask("two.example"), false);
    await Deno.writeTextFile(
      `${repo}/.tachikoma.toml`,
      'egress_allow = ["one.example", "two.example"]\n',
    );
    assertEquals(await ask("two.example"), false, "an edited file is not trusted any more");
    assertEquals(await ask("one.example"), false, "its whole allowlist is ignored");
    await trust(`${repo}/.tachikoma.toml`);
    assertEquals(await ask("two.example"), true, "the edited allowlist was not picked up");
    // The local file, created later, counts too (once trusted).
    await Deno.writeTextFile(`${repo}/.tachikoma.local.toml`, 'egress = "unrestricted"\n');
    assertEquals(await ask("three.example"), false);
    await trust(`${repo}/.tachikoma.local.toml`);
    assertEquals(await ask("three.example"), true);
    // Broken: everything refused, with the reason in the decision and one log line.
    await Deno.writeTextFile(`${repo}/.tachikoma.local.toml`, 'egress = "everything"\n');
    await trust(`${repo}/.tachikoma.local.toml`);
    const c = client(await dirx.identify("10.0.0.2", token));
    const decision = await (await c.policy()).decide("one.example", 443, noDns);
    assertEquals(decision.allowed, false);
    assert(!decision.allowed && decision.reason.includes("is invalid"), JSON.stringify(decision));
    await ask("two.example");
    assertEquals(lines.filter((l) => l.includes("egress refused for sandboxes of")).length, 1);
    await Deno.remove(`${repo}/.tachikoma.local.toml`);
    assertEquals(await ask("one.example"), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("clients: canonical IPs", () => {
  assertEquals(canonicalIp("::ffff:127.0.0.1"), "127.0.0.1");
  assertEquals(canonicalIp("10.0.0.1"), "10.0.0.1");
  assertEquals(canonicalIp("fe80:0:0::1"), "fe80::1");
});
