/**
 * The MCP daemon's reaper against the Incus lab, once, with the real clock and short
 * durations: `tachikoma mcp --http` (production entry point, Incus engine) spawns a real
 * sandbox for an HTTP client; left unused past `idle_stop_after`, the reaper stops the Incus
 * container (the state entry, `list_sandboxes` and the daemon's log say so); `spawn_sandbox`
 * brings it back; a daemon with a `hard_destroy_after` it has outlived deletes the container and
 * keeps the marked entry. Skipped, with the reason, when the lab is not up. The container is
 * named `tachikoma-tkt-…` and deleted whatever happens.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { labEnv, labIgnored, labName } from "./lab.ts";
import { openLabIncus, until } from "./provision_lab.ts";
import { gitIn } from "../unit/core/helpers.ts";
import { mcpWorld, REAL_MAIN_TS, textOf } from "../unit/mcp/helpers.ts";
import { bearer, type Daemon, httpClient, startDaemon } from "../unit/mcp/http_helpers.ts";

const lab = labEnv();

type Doc = Record<string, unknown>;

Deno.test({
  name:
    "lab: the MCP daemon's reaper stops an idle sandbox made over HTTP, then deletes an old one",
  ignore: labIgnored(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using w = await mcpWorld();
    const repoName = labName("r").replace(/^tkt-r-/, "tkt-");
    const root = `${w.repo.dir}/${repoName}`;
    await Deno.rename(w.repo.root, root);
    const env: Record<string, string> = { ...w.env };
    delete env.TACHIKOMA_TEST_MEMORY_WORLD;
    Object.assign(env, {
      TACHIKOMA_BACKEND: "incus",
      TACHIKOMA_INCUS_SOCKET: lab!.socket,
      TACHIKOMA_INCUS_NETWORK: lab!.bridge,
      ...(lab!.pool ? { TACHIKOMA_INCUS_STORAGE_POOL: lab!.pool } : {}),
      TACHIKOMA_BASE_IMAGE: lab!.image,
      TACHIKOMA_CREDENTIAL_PROXY: "false",
      TACHIKOMA_CLAUDE_INSTALL: "skip",
      TACHIKOMA_TMUX_INSTALL: "skip",
      TACHIKOMA_SHARE_CLAUDE_DIRS: "[]",
      TACHIKOMA_SYNC_MCP_SERVERS: "false",
      TACHIKOMA_VM_CPUS: "1",
      TACHIKOMA_VM_MEMORY: "512",
      TACHIKOMA_EGRESS: "unrestricted",
      TACHIKOMA_MCP_IDLE_STOP_AFTER: "8s",
      TACHIKOMA_MCP_HARD_DESTROY_AFTER: "0",
      TACHIKOMA_MCP_REAP_INTERVAL: "1s",
    });
    const incus = await openLabIncus();
    const name = `tachikoma-${repoName}-reaped`;
    const daemon = (extra: Record<string, string> = {}): Promise<Daemon> =>
      startDaemon(w, { env: { ...env, ...extra }, main: REAL_MAIN_TS, cwd: root });
    let d: Daemon | undefined;
    try {
      d = await daemon();
      await using client = await httpClient(d.url, bearer(d.token));
      const call = async (tool: string, args: Doc): Promise<Doc> => {
        const r = await client.callTool({ name: tool, arguments: args }, undefined, {
          timeout: 300_000,
        });
        assert(!r.isError, `${tool}: ${textOf(r)}\n--- daemon ---\n${d!.stderr()}`);
        return r.structuredContent as Doc;
      };
      const spawned = await call("spawn_sandbox", { branch: "reaped" });
      assertEquals([spawned.name, spawned.action], [name, "created"]);
      const r = await call("exec_in_sandbox", { sandbox: name, command: ["true"] });
      assertEquals(r.exit_code, 0);
      const before = await call("sandbox_status", { sandbox: name });
      assertEquals((before.sandbox as Doc).created_by, "mcp");

      // Unused for 8 s: the reaper (every second) stops the container.
      await until("the reaper stopped the container", async () => {
        return (await incus.get(name)).state === "stopped";
      }, 60_000);
      const stopped = (await call("sandbox_status", { sandbox: name })).sandbox as Doc;
      assertEquals(stopped.status, "stopped");
      assertEquals((stopped.reaped as Doc).action, "stopped");
      assertMatch(String((stopped.reaped as Doc).reason), /unused for \d+s \(idle_stop_after 8s\)/);
      assertMatch(d.stderr(), new RegExp(`mcp reaper: stopped ${name}: unused for`));
      const log = await Deno.readTextFile(`${w.configDir}/logs/mcp.log`);
      assertMatch(log, new RegExp(`mcp reaper: stopped ${name}`));

      // The agent comes back: spawn starts it, and the mark is gone.
      const back = await call("spawn_sandbox", { branch: "reaped" });
      assertEquals(back.action, "started");
      const running = (await call("sandbox_status", { sandbox: name })).sandbox as Doc;
      assertEquals([running.status, running.reaped], ["running", null]);
      await client.close();
      assertEquals(await d.stop(), 0);

      // A daemon whose hard_destroy_after the sandbox has outlived deletes it.
      d = await daemon({ TACHIKOMA_MCP_HARD_DESTROY_AFTER: "1s" });
      const recorded = async () =>
        JSON.parse(await Deno.readTextFile(`${w.configDir}/state.json`)).vms
          .find((v: Doc) => v.name === name) as Doc;
      await until("the reaper deleted the container and marked the entry", async () => {
        const gone = await incus.get(name).then(() => false, () => true);
        return gone && ((await recorded()).reaped as Doc | undefined)?.action === "destroyed";
      }, 60_000);
      const record = await recorded();
      assertEquals([record.status, record.ip], ["stopped", null]);
      assertMatch(d.stderr(), new RegExp(`mcp reaper: destroyed ${name}: created \\d+`));
    } finally {
      await d?.stop();
      await incus.delete(name).catch(async () => {
        await incus.stop(name, { force: true }).catch(() => {});
        await incus.delete(name).catch(() => {});
      });
      await incus.close();
      await gitIn(root, "worktree", "prune").catch(() => {});
    }
  },
});
