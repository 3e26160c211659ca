/**
 * Checkpoints, forks and bases through the CLI on the fake tart (tests/fixtures/tart, first on
 * PATH, its VMs lab containers): `checkpoint create` of a running tart sandbox (stopped, cloned,
 * started again), `list`, `restore` (the guest's files go back), `checkpoint fork` (a new branch's
 * sandbox with the checkpoint's files), `delete`; then `image build` of a base and `spawn --from`
 * it; `destroy` leaves no checkpoint VM behind.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { LAB_EGRESS_ALLOW, labEnv, labIgnored } from "./lab.ts";
import { FAKE_TART_DIR, TartTarget } from "./tart_harness.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const dec = new TextDecoder();

Deno.test({
  name:
    "lab e2e CLI on the fake tart: checkpoint create/list/restore/fork/delete, image build, spawn --from",
  ignore: labIgnored(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const lab = labEnv()!;
    const tart = await TartTarget.open();
    const dir = await Deno.makeTempDir({ prefix: "tkt-tart-bases-" });
    await Deno.chmod(dir, 0o755);
    const home = `${dir}/home`;
    const stateDir = `${dir}/state`;
    const repo = `${dir}/repo`;
    await Deno.mkdir(`${home}/.claude`, { recursive: true });
    await Deno.mkdir(stateDir, { recursive: true });
    const id = dir.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, "x");
    const base = `tartb-${id}`;
    const port = (() => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const p = (l.addr as Deno.NetAddr).port;
      l.close();
      return p;
    })();
    await Deno.writeTextFile(
      `${stateDir}/config.toml`,
      [
        'backend = "tart"',
        'ssh_user = "admin"',
        'claude_install = "skip"',
        "share_claude_dirs = []",
        `egress_allow = ["${LAB_EGRESS_ALLOW}"]`,
        "vm_cpus = 1",
        "vm_memory = 1024",
        `credential_proxy_bind = "${lab.gateway}"`,
        `credential_proxy_port = ${port}`,
        "[tart]",
        "stop_timeout_secs = 10",
        `[bases.${base}]`,
        'image = "ubuntu"',
        'setup = "echo tart-base > /etc/tk-base"',
      ].join("\n") + "\n",
    );
    const env: Record<string, string> = {
      ...tart.env,
      PATH: `${FAKE_TART_DIR}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
      HOME: home,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
      TACHIKOMA_CONFIG_DIR: stateDir,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.invalid",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.invalid",
      NO_COLOR: "1",
    };
    const cli = async (cwd: string, ...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", "--frozen", `--config=${ROOT}deno.json`, `${ROOT}main.ts`]
          .concat(args),
        env,
        clearEnv: true,
        cwd,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const r = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
      assertEquals(r.code, 0, `tachikoma ${args.join(" ")}: ${r.stderr}${r.stdout}`);
      return r;
    };
    const json = async (cwd: string, ...args: string[]) => {
      const r = await cli(cwd, ...args, "--json");
      try {
        return JSON.parse(r.stdout);
      } catch (error) {
        // (seen once in CI: more than the document on stdout; say what it was)
        throw new Error(
          `tachikoma ${args.join(" ")}: stdout is not one JSON document (${error})\n` +
            `--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr}`,
        );
      }
    };
    const made: string[] = [];
    await Deno.mkdir(repo);
    await Deno.writeTextFile(`${repo}/README.md`, "host\n");
    for (const args of [["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "init"]]) {
      const g = await new Deno.Command("git", { args, cwd: repo, env, clearEnv: true }).output();
      assert(g.success, dec.decode(g.stderr));
    }
    const cat = async (worktree: string) =>
      (await cli(worktree, "exec", "--", "sh", "-c", 'cat "$HOME/state.txt"')).stdout.trim();
    try {
      const src = await json(repo, "spawn", "src", "--no-attach");
      made.push(src.name);
      await cli(src.worktree_path, "exec", "--", "sh", "-c", 'echo one > "$HOME/state.txt"');

      // A running tart sandbox: stopped, cloned, started again.
      const cp = await json(repo, "checkpoint", "create", src.name, "--label", "c1");
      assertEquals(cp.label, "c1");
      assertEquals(await tart.state(src.name), "running");
      assertEquals(await cat(src.worktree_path), "one");
      await cli(src.worktree_path, "exec", "--", "sh", "-c", 'echo two > "$HOME/state.txt"');
      const listed = await json(repo, "checkpoint", "list", src.name);
      assertEquals(listed.checkpoints.map((c: { label: string }) => c.label), ["c1"]);

      const restored = await json(repo, "checkpoint", "restore", src.name, "c1");
      assertEquals(restored.status, "running");
      assertEquals(await cat(src.worktree_path), "one");
      const readme = await cli(
        src.worktree_path,
        "exec",
        "--",
        "cat",
        "/mnt/tachikoma/code/README.md",
      );
      assertEquals(readme.stdout, "host\n");

      await cli(src.worktree_path, "exec", "--", "sh", "-c", 'echo three > "$HOME/state.txt"');
      const fork = await json(repo, "checkpoint", "fork", `${src.name}:c1`, "forked");
      made.push(fork.name);
      assertEquals(fork.from, { kind: "checkpoint", name: src.name, checkpoint: "c1" });
      assertEquals(fork.provisioning.steps, ["ssh_key", "code", "hostname", "profile"]);
      // A new VM, fresh or a clone, runs under Softnet from its first boot (its policy stored
      // before its first `tart run`).
      const softnet = async (name: string) =>
        (await json(repo, "network", "show", name)).engine as Record<string, unknown>;
      const inForce = { mechanism: "softnet", restricted: true, error: null };
      assertEquals(await softnet(fork.name), inForce);
      assertEquals(await softnet(src.name), inForce);
      // Its own SSH host key, not its source's.
      const hostKey = async (worktree: string) =>
        (await cli(worktree, "exec", "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub")).stdout
          .split(" ").slice(0, 2).join(" ");
      const [srcKey, forkKey] = await Promise.all([
        hostKey(src.worktree_path),
        hostKey(fork.worktree_path),
      ]);
      assert(srcKey.startsWith("ssh-ed25519 ") && forkKey !== srcKey, `${srcKey} / ${forkKey}`);
      assertEquals(await cat(fork.worktree_path), "one");
      assertEquals(await cat(src.worktree_path), "three");
      const where = await cli(
        fork.worktree_path,
        "exec",
        "--",
        "git",
        "rev-parse",
        "--abbrev-ref",
        "HEAD",
      );
      assertEquals(where.stdout.trim(), "forked");

      await json(repo, "checkpoint", "delete", src.name, "c1");
      assertEquals((await json(repo, "checkpoint", "list", src.name)).checkpoints, []);

      // A base on tart, and a sandbox from it.
      const built = await json(repo, "image", "build", base);
      made.push(built.bases[0].sandbox);
      assertEquals(built.bases[0].status, "ready");
      const child = await json(repo, "spawn", "from-base", "--from", base, "--no-attach");
      made.push(child.name);
      assertEquals(child.from.kind, "base");
      assertEquals((await softnet(child.name)).restricted, true);
      const marker = await cli(child.worktree_path, "exec", "--", "cat", "/etc/tk-base");
      assertEquals(marker.stdout, "tart-base\n");

      await cli(repo, "checkpoint", "create", child.name, "--label", "keep");
      await cli(repo, "destroy", "--force", child.name);
      const names = JSON.parse((await tart.run(["list", "--format", "json"])).stdout)
        .map((e: { Name: string }) => e.Name);
      assert(!names.some((n: string) => n.startsWith(child.name)), `left: ${names}`);
      assertStringIncludes(names.join(" "), `${built.bases[0].sandbox}.tkcp.`);
      await cli(repo, "image", "rm", base);
    } finally {
      for (const name of made) await cli(repo, "destroy", "--force", name).catch(() => {});
      await cli(dir, "proxy", "stop").catch(() => {});
      const all = JSON.parse((await tart.run(["list", "--format", "json"])).stdout)
        .map((e: { Name: string }) => e.Name);
      await tart.cleanup(all);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
