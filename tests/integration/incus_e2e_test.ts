/**
 * End to end on the Incus lab (issue 4 §3): in a temp git repo, `tachikoma spawn --backend
 * incus --no-attach` brings up a container for the branch with the worktree shared, `tachikoma
 * exec -- git status` runs inside it, `halt`, `spawn` again (restart), `destroy --force`, and
 * `list --json` is right at each step. The CLI runs as a subprocess of main.ts.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { IncusBackend, IncusClient } from "../../src/backends/incus/mod.ts";
import { NotFoundError } from "../../src/lib/errors.ts";
import { labEnv, labIgnored } from "./lab.ts";

const lab = labEnv();
const ROOT = new URL("../../", import.meta.url).pathname;
const dec = new TextDecoder();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  cmd: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
) {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function ok(r: Run, what: string): Run {
  assertEquals(r.code, 0, `${what} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

interface ListDoc {
  sandboxes: {
    name: string;
    status: string;
    recorded_status: string;
    ip: string | null;
    backend: string;
  }[];
}

Deno.test({
  name: "incus e2e: spawn, exec, halt, spawn again, destroy; list right at each step",
  ignore: labIgnored(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // Not under /tmp: the guest cleans its /tmp at boot, where provisioning puts the link that
    // makes the worktree's `.git` file (an absolute host path) resolve.
    const top = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "tk-e2e-" });
    const id = top.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, "x");
    const repo = `${top}/tkt-e2e-${id}`;
    const home = `${top}/home`;
    const cfg = `${top}/config`;
    await Deno.mkdir(repo, { recursive: true });
    await Deno.mkdir(home);
    const realHome = Deno.env.get("HOME") ?? "/root";
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: home,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${realHome}/.cache/deno`,
      TACHIKOMA_CONFIG_DIR: cfg,
      TACHIKOMA_BASE_IMAGE: lab!.image,
      TACHIKOMA_INCUS_SOCKET: lab!.socket,
      TACHIKOMA_CREDENTIAL_PROXY: "false",
      TACHIKOMA_CLAUDE_INSTALL: "skip",
      TACHIKOMA_TMUX_INSTALL: "skip",
      TACHIKOMA_VM_CPUS: "1",
      TACHIKOMA_VM_MEMORY: "1024",
      NO_COLOR: "1",
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.invalid",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.invalid",
    };
    const cli = (args: string[], cwd = repo) => {
      if (Deno.env.get("TK_E2E_DEBUG")) console.error(`+ tachikoma ${args.join(" ")} (in ${cwd})`);
      return run(Deno.execPath(), [
        "run",
        "-A",
        "--frozen",
        "--config",
        `${ROOT}deno.json`,
        `${ROOT}main.ts`,
        ...args,
      ], {
        cwd,
        env,
      });
    };
    const list = async (): Promise<ListDoc> =>
      JSON.parse(ok(await cli(["list", "--json"]), "list").stdout);

    const client = await IncusClient.open({ socket: lab!.socket });
    const backend = new IncusBackend(client, {
      endpoint: { socket: lab!.socket },
      cpus: 1,
      memoryMb: 1024,
      sshUser: "admin",
      sshPort: 22,
    });
    let name = "";
    try {
      ok(await run("git", ["init", "-q", "-b", "main"], { cwd: repo, env }), "git init");
      await Deno.writeTextFile(`${repo}/README.md`, "hello\n");
      ok(await run("git", ["add", "."], { cwd: repo, env }), "git add");
      ok(await run("git", ["commit", "-qm", "init"], { cwd: repo, env }), "git commit");
      const branch = `e2e/${id}`;

      // spawn: a new container for the branch, the worktree shared
      const spawned = JSON.parse(
        ok(await cli(["spawn", branch, "--backend", "incus", "--no-attach", "--json"]), "spawn")
          .stdout,
      );
      name = spawned.name;
      assertEquals(spawned.action, "created");
      assertEquals(spawned.status, "running");
      assertEquals(spawned.branch, branch);
      const gatewayPrefix = lab!.gateway.split(".").slice(0, 3).join(".") + ".";
      assert(spawned.ip.startsWith(gatewayPrefix), `ip ${spawned.ip} on the lab bridge`);
      const worktree: string = spawned.worktree_path;
      assertEquals((await backend.get(name)).state, "running");
      const devices = (await client.get<{ devices: Record<string, Record<string, string>> }>(
        `/1.0/instances/${name}`,
      )).devices;
      assertEquals(devices["tk-share-code"]?.source, worktree);

      let doc = await list();
      assertEquals(
        doc.sandboxes.map((s) => [s.name, s.status, s.recorded_status, s.ip, s.backend]),
        [
          [name, "running", "running", spawned.ip, "incus"],
        ],
      );

      // exec: git status inside, on the shared worktree
      const status = ok(await cli(["exec", "--", "git", "status"], worktree), "exec git status");
      assertStringIncludes(status.stdout, `On branch ${branch}`);
      const where = ok(
        await cli(["exec", "--", "sh", "-c", "id -u; pwd; cat README.md"], worktree),
        "exec",
      );
      assertEquals(where.stdout, "1000\n/mnt/tachikoma/code\nhello\n");

      // halt
      const halted = JSON.parse(ok(await cli(["halt", "--json"], worktree), "halt").stdout);
      assertEquals(halted.status, "stopped");
      assertEquals((await backend.get(name)).state, "stopped");
      doc = await list();
      assertEquals(doc.sandboxes.map((s) => [s.name, s.status, s.recorded_status, s.ip]), [
        [name, "stopped", "stopped", null],
      ]);

      // spawn again: restarts the same container
      const again = JSON.parse(
        ok(await cli(["spawn", "--no-attach", "--json"], worktree), "spawn again").stdout,
      );
      assertEquals(again.name, name);
      assertEquals(again.action, "started");
      assertMatch(again.ip, /^\d+\.\d+\.\d+\.\d+$/);
      doc = await list();
      assertEquals(doc.sandboxes.map((s) => [s.name, s.status, s.recorded_status, s.ip]), [
        [name, "running", "running", again.ip],
      ]);
      const status2 = ok(
        await cli(["exec", "--", "git", "status", "--short"], worktree),
        "exec after restart",
      );
      assertEquals(status2.stdout, "");

      // destroy
      const destroyed = JSON.parse(
        ok(await cli(["destroy", name, "--force", "--json"]), "destroy").stdout,
      );
      assertEquals(destroyed.destroyed.map((d: { name: string }) => d.name), [name]);
      let gone = false;
      try {
        await backend.get(name);
      } catch (error) {
        gone = error instanceof NotFoundError;
      }
      assert(gone, `${name} is gone from Incus`);
      assertEquals((await list()).sandboxes, []);
    } finally {
      await cli(["proxy", "stop"]).catch(() => {});
      if (name) await backend.delete(name).catch(() => {});
      await backend.close();
      await Deno.remove(top, { recursive: true }).catch(() => {});
    }
  },
});
