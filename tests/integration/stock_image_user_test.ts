/**
 * Stock images end to end as a non-root host user in `incus-admin` (the lab's `tklab`, with its
 * own HOME and config dir, the CLI run through `setpriv`): pull → spawn (bootstrap, packages
 * through the user's own proxy) → exec → an edit committed from the guest is a commit in the
 * user's repo (shares work for any host user through ACLs) → `ssh <sandbox> true` through the
 * generated config. The sandbox user is `dev` here: `ssh_user` names it.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { IncusClient } from "../../src/backends/incus/client.ts";
import { labEnv, labIgnored } from "./lab.ts";
import { freePort, stockConfig, workspace } from "./stock_lab.ts";
import { ok } from "../testing/run.ts";
import { removeInstances, removeInstancesOf } from "./stock_incus.ts";

const lab = labEnv();

/** Why the non-root user cannot run this test here, or null. */
function userProblem(): string | null {
  if (!lab?.imageServer) return "the lab has no image server";
  if (!lab.user) return "the lab has no non-root user (TACHIKOMA_LAB_USER)";
  if (Deno.uid() !== 0) return "needs root to act as the lab user";
  try {
    const out = new Deno.Command("setpriv", {
      args: [
        `--reuid=${lab.user}`,
        `--regid=${lab.user}`,
        "--init-groups",
        "--",
        "sh",
        "-c",
        'test -w "$1"',
        "sh",
        lab.socket,
      ],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    if (!out.success) return `${lab.user} cannot use ${lab.socket} (not in incus-admin?)`;
  } catch (error) {
    return `setpriv failed: ${error instanceof Error ? error.message : error}`;
  }
  return null;
}

const problem = lab ? userProblem() : null;
if (lab && problem) console.error(`skipping the non-root stock image test: ${problem}`);

Deno.test({
  name: "stock image (non-root user in incus-admin): pull, spawn, exec, guest commit in the " +
    "user's repo, ssh through the generated config",
  ignore: labIgnored() || problem !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const server = lab!.imageServer!;
    const client = await IncusClient.open({ socket: lab!.socket });
    const ws = await workspace({
      prefix: "stockuser",
      user: lab!.user,
      env: stockConfig(lab!, {
        TACHIKOMA_SSH_USER: "dev",
        TACHIKOMA_CREDENTIAL_PROXY: "true",
        TACHIKOMA_CREDENTIAL_PROXY_PORT: String(freePort()),
        TACHIKOMA_EGRESS: "agent",
        TACHIKOMA_EGRESS_ALLOW: server.apt,
      }),
    });
    const names: string[] = [];
    try {
      const whoami = ok(await ws.run("id", ["-un"]), "id").stdout.trim();
      assertEquals(whoami, lab!.user);

      const pulled = JSON.parse(ok(await ws.cli(["image", "pull", "--json"]), "pull").stdout);
      assertEquals(pulled.image, `lab:${server.stock}`);
      assertMatch(pulled.fingerprint, /^[0-9a-f]{64}$/);

      const spawned = JSON.parse(
        ok(await ws.cli(["spawn", "feat/user", "--no-attach", "--json"]), "spawn").stdout,
      );
      names.push(spawned.name);
      assertEquals(spawned.action, "created");
      const worktree: string = spawned.worktree_path;

      const who = ok(
        await ws.cli([
          "exec",
          "--",
          "sh",
          "-c",
          "id -un; id -u; sudo -n id -un; pwd; cat README.md",
        ], worktree),
        "exec",
      );
      assertEquals(who.stdout, "dev\n1000\nroot\n/mnt/tachikoma/code\nhello\n");

      ok(
        await ws.cli([
          "exec",
          "--",
          "sh",
          "-c",
          "printf 'ünïcode\\n' > guest.txt && git add guest.txt && git commit -qm 'from dev'",
        ], worktree),
        "guest commit",
      );
      const log = ok(
        await ws.run("git", ["log", "-1", "--format=%s", "--name-only"], { cwd: worktree }),
        "host git log",
      );
      assertEquals(log.stdout, "from dev\n\nguest.txt\n");
      // The host user can change what the guest wrote.
      ok(await ws.run("sh", ["-c", "echo host >> guest.txt"], { cwd: worktree }), "host edit");
      ok(
        await ws.run("git", ["commit", "-qam", "from the host"], { cwd: worktree }),
        "host commit",
      );

      ok(await ws.cli(["ssh", "install"]), "ssh install");
      const deadline = Date.now() + 60_000;
      let ssh;
      for (;;) {
        ssh = await ws.run("ssh", [
          "-F",
          `${ws.home}/.ssh/config`,
          "-o",
          "BatchMode=yes",
          "-o",
          "ConnectTimeout=5",
          spawned.name,
          "id -un",
        ]);
        if (ssh.code === 0 || Date.now() > deadline || !/refused|reset|closed/i.test(ssh.stderr)) {
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      assertEquals(ssh.code, 0, `ssh: ${ssh.stderr}`);
      assertEquals(ssh.stdout, "dev\n");

      ok(await ws.cli(["destroy", spawned.name, "--force"]), "destroy");
      const left = (await client.get<{ name: string }[]>("/1.0/instances", {
        query: { recursion: "1" },
      })).filter((i) => names.includes(i.name));
      assertEquals(left, []);
    } finally {
      await ws.cli(["proxy", "stop"]).catch(() => {});
      await removeInstances(client, names);
      await removeInstancesOf(client, ws.repo);
      client.close();
      await ws.remove();
    }
  },
});
