/**
 * The CLI on the fake TrueNAS (wss://, its certificate from a private CA, so the config turns
 * verification off) with lab containers behind it: `spawn` cannot share the worktree with a
 * TrueNAS server, so it creates the instance and fails at its start with one `unsupported`
 * line, leaving it stopped and marked failed; `list` shows that; `destroy` removes it from
 * TrueNAS (and so from Incus).
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { FakeTruenas } from "../fixtures/truenas/server.ts";
import { IncusWorld } from "../fixtures/truenas/incus_world.ts";
import { certs } from "../unit/backends/truenas/certs.ts";
import { runCli } from "../unit/cli/helpers.ts";
import { labEnv, labIgnored } from "./lab.ts";

const lab = labEnv();
const ignore = labIgnored() || !lab?.imageServer;
const KEY = "1-cli-FakeTrueNAS-key-0123456789";

Deno.test({
  name: "truenas cli: spawn fails at the start in one line (no host shares); destroy removes it",
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
    try {
      const repo = `${top}/repo`;
      await Deno.mkdir(repo);
      for (
        const args of [
          ["init", "-q", "-b", "main"],
          ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "i"],
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
      };
      await Deno.mkdir(env.HOME);
      const spawn = await runCli(["spawn", "feat", "--no-attach"], { env, cwd: repo });
      assertEquals(spawn.code, 1, spawn.stderr);
      const line = spawn.stderr.split("\n").find((l) => l.startsWith("tachikoma: "));
      assertMatch(
        line ?? "",
        new RegExp(
          `^tachikoma: tachikoma-repo-feat failed to boot: TrueNAS 127\\.0\\.0\\.1:${fake.port} cannot mount directories of this host \\(code, `,
        ),
      );
      assert(!spawn.stderr.includes(KEY) && !spawn.stdout.includes(KEY));
      assertEquals((await world.list()).map((i) => [i.name, i.status]), [[
        "px-tachikoma-repo-feat",
        "STOPPED",
      ]]);
      const list = await runCli(["list", "--json"], { env, cwd: repo });
      assertMatch(list.stdout, /"status": ?"failed"/);
      const destroy = await runCli(["destroy", "tachikoma-repo-feat", "--force"], {
        env,
        cwd: repo,
      });
      assertEquals(destroy.code, 0, destroy.stderr);
      assertEquals(await world.list(), []);
    } finally {
      await fake.stop();
      await world.cleanup();
      await Deno.remove(top, { recursive: true }).catch(() => {});
      await Deno.remove(c.dir, { recursive: true }).catch(() => {});
    }
  },
});
