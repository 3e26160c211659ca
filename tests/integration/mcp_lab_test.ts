/**
 * `tachikoma mcp` against the Incus lab: the SDK's own client over stdio spawns the server,
 * which spawns a real sandbox (real Incus container on the lab bridge, SSH banner wait,
 * provisioning with the test image, no credential proxy, no Claude install), then runs
 * commands in it and writes, reads, edits and lists files as the sandbox user, and destroys
 * it. Skipped, with the reason, when the lab is not up.
 *
 * The sandbox is named by the product (`tachikoma-<repo>-<branch>`); the repo directory is
 * `tkt-<random>`, so the container name carries the lab's `tkt-` marker, and cleanup deletes
 * it whatever happens.
 */
import { assert, assertEquals } from "@std/assert";
import type { Progress } from "@modelcontextprotocol/sdk/types.js";
import { labEnv, labIgnored, labName } from "./lab.ts";
import { openLabIncus } from "./provision_lab.ts";
import { gitIn } from "../unit/core/helpers.ts";
import { mcpWorld, textOf } from "../unit/mcp/helpers.ts";

const lab = labEnv();
const ignore = labIgnored();

type Doc = Record<string, unknown>;

Deno.test({
  name: "lab: MCP spawn → exec → write/read/edit/list files → destroy on Incus",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using w = await mcpWorld();
    // A repo named tkt-<random>: the sandbox becomes tachikoma-tkt-<random>-mcp-lab.
    const repoName = labName("m").replace(/^tkt-m-/, "tkt-");
    const root = `${w.repo.dir}/${repoName}`;
    await Deno.rename(w.repo.root, root);
    const env = { ...w.env };
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
    });
    const incus = await openLabIncus();
    // Known before the spawn, so cleanup deletes the container even when the spawn fails.
    let name: string | undefined = `tachikoma-${repoName}-mcp-lab`;
    try {
      await using conn = await w.connect({ cwd: root, env });
      const { client } = conn;
      const call = async (tool: string, args: Doc): Promise<Doc> => {
        const r = await client.callTool({ name: tool, arguments: args }, undefined, {
          timeout: 300_000,
        }) as { isError?: boolean; structuredContent?: Doc; content?: unknown };
        assert(!r.isError, `${tool}: ${textOf(r)}\n--- server stderr ---\n${conn.stderr()}`);
        return r.structuredContent!;
      };

      const progress: Progress[] = [];
      const spawned = await client.callTool(
        { name: "spawn_sandbox", arguments: { branch: "mcp-lab" } },
        undefined,
        {
          timeout: 300_000,
          resetTimeoutOnProgress: true,
          onprogress: (p: Progress) => progress.push(p),
        },
      ) as { isError?: boolean; structuredContent?: Doc; content?: unknown };
      assert(!spawned.isError, `spawn: ${textOf(spawned)}\n${conn.stderr()}`);
      const s = spawned.structuredContent!;
      assertEquals(s.name, name);
      assertEquals([s.status, s.action, s.branch_created], ["running", "created", true]);
      assert(String(s.address).startsWith("10.213.0."), `address on the lab bridge: ${s.address}`);
      assert(progress.some((p) => (p.message ?? "").startsWith("waiting for boot: done")));
      // CI runs as root: the worktree git made is root's 0755, which the guest user (uid 1000)
      // cannot write through the shifted share. A normal user's uid maps to the guest user.
      if (Deno.uid() === 0) {
        const wt = await new Deno.Command("chmod", {
          args: ["-R", "a+rwX", `${w.repo.dir}/${repoName}-mcp-lab`],
        }).output();
        assert(wt.success, "chmod of the worktree");
      }
      assert((s.provisioning as { ran: boolean }).ran);
      const worktree = s.worktree_path as string;

      let r = await call("exec_in_sandbox", {
        sandbox: "mcp-lab",
        shell: "id -un; pwd; cat README; hostname",
      });
      assertEquals(r.exit_code, 0);
      const [user, cwd, readme] = (r.stdout as string).split("\n");
      assertEquals([user, cwd, readme], ["admin", "/mnt/tachikoma/code", "hello"]);
      r = await call("exec_in_sandbox", {
        sandbox: name,
        command: ["printf", "%s|", "it's", "$(id)", "a b"],
      });
      assertEquals(r.stdout, "it's|$(id)|a b|");
      r = await call("exec_in_sandbox", { sandbox: name, shell: "echo no >&2; exit 7" });
      assertEquals([r.exit_code, r.stderr], [7, "no\n"]);
      r = await call("exec_in_sandbox", {
        sandbox: name,
        shell: "echo started; exec sleep 60",
        timeout_secs: 1,
      });
      assertEquals([r.timed_out, r.exit_code, r.stdout], [true, null, "started\n"]);

      // A background job, read in two pieces through another MCP server process.
      const job = await call("exec_in_sandbox", {
        sandbox: name,
        shell: "printf part1; while [ ! -e /tmp/tk-go ]; do sleep 0.1; done; printf part2; exit 3",
        background: true,
      });
      const jobId = job.job_id as string;
      assert(/^[0-9a-f]{12}$/.test(jobId), jobId);
      {
        await using other = await w.connect({ cwd: root, env });
        const call2 = async (tool: string, args: Doc): Promise<Doc> => {
          const r2 = await other.client.callTool({ name: tool, arguments: args }) as {
            isError?: boolean;
            structuredContent?: Doc;
            content?: unknown;
          };
          assert(!r2.isError, `${tool}: ${textOf(r2)}\n${other.stderr()}`);
          return r2.structuredContent!;
        };
        let first: Doc = {};
        for (let i = 0; i < 100 && first.stdout !== "part1"; i++) {
          first = await call2("job_output", { sandbox: name, job_id: jobId });
          if (first.stdout !== "part1") await new Promise((res) => setTimeout(res, 100));
        }
        assertEquals([first.stdout, first.status, first.stdout_offset], ["part1", "running", 5]);
        await call2("exec_in_sandbox", { sandbox: name, command: ["touch", "/tmp/tk-go"] });
        let st: Doc = {};
        for (let i = 0; i < 100 && st.status !== "exited"; i++) {
          st = await call2("job_status", { sandbox: name, job_id: jobId });
          if (st.status !== "exited") await new Promise((res) => setTimeout(res, 100));
        }
        assertEquals([st.status, st.exit_code], ["exited", 3]);
        const second = await call2("job_output", {
          sandbox: name,
          job_id: jobId,
          stdout_offset: first.stdout_offset,
        });
        assertEquals([second.stdout, second.stdout_offset], ["part2", 10]);
      }

      const written = await call("write_file", {
        sandbox: name,
        path: "tools/run me.sh",
        content: "#!/bin/sh\necho 'old'\n",
        mode: "0755",
      });
      assertEquals(written.mode, "0755");
      assertEquals(
        await Deno.readTextFile(`${worktree}/tools/run me.sh`),
        "#!/bin/sh\necho 'old'\n",
        "the worktree share carries the file to the host",
      );
      const read = await call("read_file", { sandbox: name, path: "tools/run me.sh" });
      assertEquals(read.content, "#!/bin/sh\necho 'old'\n");
      const edited = await call("edit_file", {
        sandbox: name,
        path: "tools/run me.sh",
        old_string: "echo 'old'",
        new_string: "echo 'new'",
      });
      assertEquals([edited.replacements, edited.mode], [1, "0755"]);
      r = await call("exec_in_sandbox", {
        sandbox: name,
        shell: "stat -c '%a %U' 'tools/run me.sh'; './tools/run me.sh'",
      });
      assertEquals(r.stdout, "755 admin\nnew\n");
      await call("write_file", { sandbox: name, path: "/tmp/tk-mcp/x.txt", content: "x" });
      const listed = await call("list_files", { sandbox: name, path: "/tmp/tk-mcp" });
      assertEquals(
        (listed.entries as Doc[]).map((e) => [e.path, e.size, e.mode]),
        [["/tmp/tk-mcp/x.txt", 1, "0644"]],
      );
      const tools = await call("list_files", { sandbox: name, path: "tools" });
      assertEquals((tools.entries as Doc[]).map((e) => e.path), ["tools/run me.sh"]);

      // Checkpoints on the real engine: the guest's disk goes back, the worktree does not.
      const cp = await call("create_checkpoint", { sandbox: name, label: "before-change" });
      assertEquals(cp.label, "before-change");
      await call("write_file", { sandbox: name, path: "/home/admin/after.txt", content: "x" });
      const restored = await call("restore_checkpoint", { sandbox: name, label: "before-change" });
      assertEquals([restored.status, restored.previous], ["running", "running"]);
      r = await call("exec_in_sandbox", {
        sandbox: name,
        shell:
          "test -e /home/admin/after.txt && echo present || echo absent; cat 'tools/run me.sh'",
      });
      assertEquals(r.stdout, "absent\n#!/bin/sh\necho 'new'\n");
      const cps = await call("list_checkpoints", { sandbox: name });
      assertEquals((cps.checkpoints as Doc[]).map((c) => c.label), ["before-change"]);
      await call("delete_checkpoint", { sandbox: name, label: "before-change" });

      const destroyed = await call("destroy_sandbox", { sandbox: name });
      assertEquals(destroyed.was_missing, false);
      const gone = await incus.get(name).then(() => false, () => true);
      assert(gone, `${name} is gone from Incus`);
      const list = await call("list_sandboxes", { all: true });
      assertEquals((list.sandboxes as Doc[]).length, 0);
      name = undefined;
    } finally {
      if (name) {
        const n = name;
        await incus.delete(n).catch(async () => {
          await incus.stop(n, { force: true }).catch(() => {});
          await incus.delete(n).catch((e) => console.error(`could not delete ${n}: ${e}`));
        });
      }
      await incus.close();
      await gitIn(root, "worktree", "prune").catch(() => {});
    }
  },
});
