import { assertEquals } from "@std/assert";
import { FakeClock } from "../../testing/fake_clock.ts";
import { Logger } from "../../../src/lib/log.ts";
import { canonicalIp, StateClientDirectory } from "../../../src/proxy/clients.ts";
import { EgressPolicy } from "../../../src/proxy/egress.ts";

Deno.test("clients: source IPs map to sandboxes through the state file, each with its repo's policy", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tk-clients-" });
  try {
    const statePath = `${dir}/state.json`;
    const write = (vms: unknown[]) =>
      Deno.writeTextFile(statePath, JSON.stringify({ version: 2, vms }));
    await write([
      { name: "tk-a-main", ip: "10.213.0.5", repo_root: "/repos/a", branch: "main" },
      { name: "tk-b-x", ip: "10.213.0.6", repo_root: "/repos/b", branch: "x" },
      { name: "tk-none", ip: null },
    ]);
    const clock = new FakeClock();
    const loaded: string[] = [];
    const lines: string[] = [];
    const fallback = new EgressPolicy("agent", []);
    const dirx = new StateClientDirectory({
      statePath,
      defaultPolicy: fallback,
      clock,
      logger: new Logger({ sink: (l) => lines.push(l) }),
      repoPolicy: (root) => {
        loaded.push(root);
        if (root === "/repos/b") return Promise.reject(new Error("bad config"));
        return Promise.resolve(new EgressPolicy("allowlist", ["example.org"]));
      },
    });
    const a = await dirx.identify("::ffff:10.213.0.5");
    assertEquals([a.ip, a.sandbox, a.policy.mode], ["10.213.0.5", "tk-a-main", "allowlist"]);
    const b = await dirx.identify("10.213.0.6");
    assertEquals([b.sandbox, b.policy], ["tk-b-x", fallback]);
    assertEquals(lines.some((l) => l.includes("/repos/b") && l.includes("bad config")), true);
    const stranger = await dirx.identify("10.213.0.99");
    assertEquals([stranger.sandbox, stranger.policy], [null, fallback]);
    await dirx.identify("10.213.0.5");
    assertEquals(loaded, ["/repos/a", "/repos/b"], "policies are cached");
    // A sandbox created later is found once the state file changes.
    await write([{ name: "tk-new", ip: "10.213.0.99", repo_root: "/repos/a" }]);
    clock.advance(3_000);
    assertEquals((await dirx.identify("10.213.0.99")).sandbox, "tk-new");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("clients: canonical IPs", () => {
  assertEquals(canonicalIp("::ffff:127.0.0.1"), "127.0.0.1");
  assertEquals(canonicalIp("10.0.0.1"), "10.0.0.1");
  assertEquals(canonicalIp("fe80:0:0::1"), "fe80::1");
});
