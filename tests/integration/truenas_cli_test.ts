/**
 * The CLI end to end on the fake TrueNAS (wss://, its certificate from a private CA, so the
 * config turns verification off) with lab containers from the stock image behind it: `spawn`
 * creates the instance, its first boot bootstraps it, the branch goes in by git (TrueNAS cannot
 * mount the worktree); `exec` runs in the guest's copy as the uid-1000 user; `destroy` removes
 * it from TrueNAS (and so from Incus). The API key appears in no output.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { FakeTruenas } from "../fixtures/truenas/server.ts";
import { IncusWorld } from "../fixtures/truenas/incus_world.ts";
import { certs } from "../unit/backends/truenas/certs.ts";
import { runCli } from "../unit/cli/helpers.ts";
import { labEnv, labIgnored } from "./lab.ts";
import { freePort } from "./stock_lab.ts";

const lab = labEnv();
const ignore = labIgnored() || !lab?.imageServer;
const KEY = "1-cli-FakeTrueNAS-key-0123456789";

Deno.test({
  name: "truenas cli e2e: spawn (first boot, code by git) → exec → destroy on the fake TrueNAS",
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
      await Deno.mkdir(repo);
      await Deno.writeTextFile(`${repo}/f.txt`, "hi\n");
      const who = ["-c", "user.email=t@t", "-c", "user.name=t"];
      for (
        const args of [
          ["init", "-q", "-b", "main"],
          [...who, "commit", "-q", "--allow-empty", "-m", "i"],
          ["add", "f.txt"],
          [...who, "commit", "-q", "-m", "f"],
        ]
      ) {
        assert((await new Deno.Command("git", { args, cwd: repo }).output()).success);
      }
      const env = {
        HOME: `${top}/home`,
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
      const spawn = await runCli(["spawn", "feat", "--no-attach"], { env, cwd: repo });
      assertEquals(spawn.code, 0, spawn.stderr);
      assertMatch(spawn.stderr, /truenas cannot mount host directories/);
      assertEquals((await world.list()).map((i) => [i.name, i.status]), [[
        "px-tachikoma-repo-feat",
        "RUNNING",
      ]]);
      const exec = await runCli(
        ["exec", "--", "sh", "-c", "pwd; cat f.txt; git log -1 --format=%s; id -u"],
        { env, cwd: `${top}/repo-feat` },
      );
      assertEquals(exec.code, 0, exec.stderr);
      assertEquals(exec.stdout.trim().split("\n"), ["/mnt/tachikoma/code", "hi", "f", "1000"]);
      const list = await runCli(["list", "--json"], { env, cwd: repo });
      assertMatch(list.stdout, /"status": ?"running"/);
      const destroy = await runCli(["destroy", "tachikoma-repo-feat", "--force"], {
        env,
        cwd: repo,
      });
      assertEquals(destroy.code, 0, destroy.stderr);
      assertEquals(await world.list(), []);
      for (const r of [spawn, exec, list, destroy]) {
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
