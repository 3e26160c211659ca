/**
 * The CLI end to end on the fake TrueNAS (wss://, its certificate from a private CA, so the
 * config turns verification off) with lab containers from the stock image behind it, on a
 * hostile branch name: `spawn` creates the instance, its first boot bootstraps it, the branch
 * goes in by git (TrueNAS cannot mount the worktree); `exec` runs in the guest's copy as the
 * uid-1000 user and commits there; `pull` brings the commit to the host branch; `pr` (a fake
 * `gh` first on PATH) pulls a second guest commit first and pushes it; a checkpoint (a ZFS
 * snapshot) is taken, the guest changed, the checkpoint restored; `destroy` removes it from
 * TrueNAS (and so from Incus). The API key appears in no output.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { FakeTruenas } from "../fixtures/truenas/server.ts";
import { IncusWorld } from "../fixtures/truenas/incus_world.ts";
import { certs } from "../unit/backends/truenas/certs.ts";
import { runCli } from "../unit/cli/helpers.ts";
import { labEnv, labIgnored } from "./lab.ts";
import { freePort } from "./stock_lab.ts";
import { fakeGh } from "./boundary_scenario.ts";

const lab = labEnv();
const ignore = labIgnored() || !lab?.imageServer;
const KEY = "1-cli-FakeTrueNAS-key-0123456789";

Deno.test({
  name: "truenas cli e2e: spawn (first boot, code by git) → exec → commit → pull → pr → " +
    "checkpoint → restore → destroy on the fake TrueNAS (hostile branch)",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const c = await certs();
    const world = new IncusWorld(lab!.socket, {
      url: lab!.imageServer!.url,
      certificate: await Deno.readTextFile(lab!.imageServer!.cert),
      alias: lab!.imageServer!.stock,
    });
    const fake = new FakeTruenas({ world, apiKey: KEY, tls: { cert: c.cert, key: c.key } });
    await fake.start();
    const top = await Deno.makeTempDir({ prefix: "tn-cli-" });
    const proxyEnv: Record<string, string> = {};
    try {
      const repo = `${top}/repo`;
      const origin = `${top}/origin.git`;
      const bin = `${top}/bin`;
      await fakeGh(bin, `${top}/gh.log`);
      await Deno.mkdir(repo);
      await Deno.writeTextFile(`${repo}/f.txt`, "hi\n");
      const who = ["-c", "user.email=t@t", "-c", "user.name=t"];
      for (
        const args of [
          ["init", "-q", "-b", "main"],
          // the host's identity goes into the guest (spawn copies it)
          ["config", "user.name", "Host Tester"],
          ["config", "user.email", "host@example.invalid"],
          [...who, "commit", "-q", "--allow-empty", "-m", "i"],
          ["add", "f.txt"],
          [...who, "commit", "-q", "-m", "f"],
          ["init", "-q", "--bare", "-b", "main", origin],
          ["remote", "add", "origin", origin],
          ["push", "-q", "origin", "main"],
        ]
      ) {
        assert((await new Deno.Command("git", { args, cwd: repo }).output()).success);
      }
      const git = async (cwd: string, ...args: string[]) =>
        new TextDecoder().decode(
          (await new Deno.Command("git", { args, cwd, stdout: "piped" }).output()).stdout,
        ).trim();
      const env = {
        PATH: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
        HOME: `${top}/home`,
        GIT_AUTHOR_NAME: "t",
        GIT_AUTHOR_EMAIL: "t@example.invalid",
        GIT_COMMITTER_NAME: "t",
        GIT_COMMITTER_EMAIL: "t@example.invalid",
        TACHIKOMA_BACKEND: "truenas",
        TACHIKOMA_TRUENAS_HOST: "127.0.0.1",
        TACHIKOMA_TRUENAS_PORT: String(fake.port),
        TACHIKOMA_TRUENAS_API_KEY: KEY,
        TACHIKOMA_TRUENAS_INSECURE_SKIP_VERIFY: "true",
        TACHIKOMA_BASE_IMAGE: "debian/12",
        TACHIKOMA_VM_CPUS: "1",
        TACHIKOMA_VM_MEMORY: "1024",
        TACHIKOMA_CLAUDE_INSTALL: "skip",
        TACHIKOMA_TMUX_INSTALL: "skip",
        TACHIKOMA_CREDENTIAL_PROXY_PORT: String(freePort()),
      };
      await Deno.mkdir(env.HOME);
      Object.assign(proxyEnv, env);
      const branch = "tn/ü'$(x)-`y`;z&1";
      const spawn = await runCli(["spawn", branch, "--no-attach", "--json"], { env, cwd: repo });
      assertEquals(spawn.code, 0, spawn.stderr);
      assertMatch(spawn.stderr, /truenas cannot mount host directories/);
      const { name, worktree_path: worktree } = JSON.parse(spawn.stdout);
      assertEquals((await world.list()).map((i) => [i.name, i.status]), [[
        `px-${name}`,
        "RUNNING",
      ]]);
      const cli = (...args: string[]) => runCli(args, { env, cwd: worktree });
      const exec = await cli(
        "exec",
        "--",
        "sh",
        "-c",
        "pwd; cat f.txt; git log -1 --format=%s; id -u; git symbolic-ref --short HEAD",
      );
      assertEquals(exec.code, 0, exec.stderr);
      assertEquals(exec.stdout.trim().split("\n"), [
        "/mnt/tachikoma/code",
        "hi",
        "f",
        "1000",
        branch,
      ]);

      // A commit in the guest comes back with pull.
      const commit = await cli(
        "exec",
        "--",
        "sh",
        "-c",
        "echo from-guest > g.txt && git add g.txt && git commit -qm guest && git rev-parse HEAD",
      );
      assertEquals(commit.code, 0, commit.stderr);
      const made = commit.stdout.trim();
      const pull = await cli("pull", "--json");
      assertEquals(pull.code, 0, pull.stderr);
      assertEquals(JSON.parse(pull.stdout).action, "fast_forward");
      assertEquals(await git(worktree, "rev-parse", "HEAD"), made);
      assertEquals(await Deno.readTextFile(`${worktree}/g.txt`), "from-guest\n");

      // pr pulls a second guest commit first, pushes it, opens the pull request.
      const second = await cli(
        "exec",
        "--",
        "sh",
        "-c",
        "echo 2 > two.txt && git add two.txt && git commit -qm two && git rev-parse HEAD",
      );
      assertEquals(second.code, 0, second.stderr);
      const pr = await cli("pr", "--json");
      assertEquals(pr.code, 0, pr.stderr);
      assertEquals(JSON.parse(pr.stdout).url, "https://example.invalid/pr/1");
      assertEquals(await git(origin, "rev-parse", `refs/heads/${branch}`), second.stdout.trim());

      // A checkpoint (ZFS snapshot on TrueNAS), a change, the checkpoint restored.
      const cp = await cli("checkpoint", "create", name, "--label", "before", "--json");
      assertEquals(cp.code, 0, cp.stderr);
      assertEquals((await cli("exec", "--", "sh", "-c", "echo after > g.txt")).code, 0);
      const restore = await cli("checkpoint", "restore", name, "before", "--json");
      assertEquals(restore.code, 0, restore.stderr);
      const back = await cli("exec", "--", "cat", "g.txt");
      assertEquals(back.stdout, "from-guest\n", back.stderr);

      const list = await runCli(["list", "--json"], { env, cwd: repo });
      assertMatch(list.stdout, /"status": ?"running"/);
      const destroy = await runCli(["destroy", name, "--force"], { env, cwd: repo });
      assertEquals(destroy.code, 0, destroy.stderr);
      assertEquals(await world.list(), []);
      for (const r of [spawn, exec, commit, pull, second, pr, cp, restore, back, list, destroy]) {
        assert(!r.stderr.includes(KEY) && !r.stdout.includes(KEY));
      }
    } finally {
      await runCli(["proxy", "stop"], { env: proxyEnv }).catch(() => {});
      await fake.stop();
      await world.cleanup();
      await Deno.remove(top, { recursive: true }).catch(() => {});
      await Deno.remove(c.dir, { recursive: true }).catch(() => {});
    }
  },
});
