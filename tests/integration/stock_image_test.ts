/**
 * Stock images end to end, as root, on the lab's image server (issue "Works with the Incus a
 * user has", parts 1 and 2): `image pull` of `lab:debian/12` (a stock-like image: no sshd, no
 * sudo, no user) → `spawn` bootstraps it through the Incus API with the packages coming through
 * tachikoma's proxy (egress restricted) → `exec` → an edit committed from the guest is a commit
 * on the host → `ssh <sandbox> true` through the generated `~/.ssh/config`. A second sandbox of
 * the same image starts from the prepared image kept after the first bootstrap, with its own
 * machine-id and SSH host keys.
 *
 * The base image and the prepared images of this test's user are deleted first, so every run
 * pulls and bootstraps for real.
 */
import { assert, assertEquals, assertMatch, assertNotEquals } from "@std/assert";
import { IncusClient } from "../../src/backends/incus/client.ts";
import { labEnv, labIgnored } from "./lab.ts";
import { freePort, stockConfig, workspace } from "./stock_lab.ts";
import { ok } from "../testing/run.ts";
import { forgetStock, instanceImage, removeInstances, removeInstancesOf } from "./stock_incus.ts";

const lab = labEnv();

Deno.test({
  name: "stock image (root): pull, spawn with bootstrap through the proxy, exec, guest commit " +
    "on the host, ssh through the generated config; the next sandbox starts prepared",
  ignore: labIgnored() || !lab?.imageServer,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const server = lab!.imageServer!;
    const client = await IncusClient.open({ socket: lab!.socket });
    const user = "admin";
    await forgetStock(client, { url: server.url, alias: server.stock, user });
    const port = freePort();
    const ws = await workspace({
      prefix: "stock",
      env: stockConfig(lab!, {
        TACHIKOMA_SSH_USER: user,
        TACHIKOMA_CREDENTIAL_PROXY: "true",
        TACHIKOMA_CREDENTIAL_PROXY_PORT: String(port),
        TACHIKOMA_EGRESS: "agent",
        TACHIKOMA_EGRESS_ALLOW: server.apt,
      }),
    });
    const names: string[] = [];
    try {
      // pull: downloaded once, then up to date
      const pulled = JSON.parse(ok(await ws.cli(["image", "pull", "--json"]), "pull").stdout);
      assertEquals(pulled.image, `lab:${server.stock}`);
      assertEquals(pulled.pulled, true);
      assertEquals(pulled.source, {
        server: "lab",
        url: server.url,
        protocol: "simplestreams",
        alias: server.stock,
      });
      assertEquals(pulled.local_alias, `tachikoma/${new URL(server.url).host}/${server.stock}`);
      assertMatch(pulled.fingerprint, /^[0-9a-f]{64}$/);
      const again = JSON.parse(ok(await ws.cli(["image", "pull", "--json"]), "pull again").stdout);
      assertEquals([again.pulled, again.fingerprint], [false, pulled.fingerprint]);

      // spawn: the stock image is bootstrapped (packages through the proxy), then provisioned
      const spawned = JSON.parse(
        ok(await ws.cli(["spawn", "feat/one", "--no-attach", "--json"]), "spawn").stdout,
      );
      names.push(spawned.name);
      assertEquals(spawned.action, "created");
      assertEquals(spawned.provisioning.steps[0], "bootstrap");
      assertEquals(spawned.provisioning.steps, [
        "bootstrap",
        "ssh_key",
        "code",
        "hostname",
        "profile",
        "claude",
        "gh_auth",
        "scripts",
        "sessions",
      ]);
      const worktree: string = spawned.worktree_path;
      // It came from the stock image itself, not from a prepared one.
      assertEquals(await instanceImage(client, spawned.name), pulled.fingerprint);

      // exec: the sandbox user (uid 1000, named ssh_user), sudo, the packages, sshd
      const who = ok(
        await ws.cli([
          "exec",
          "--",
          "sh",
          "-c",
          "id -u; id -un; id -g; sudo -n id -u; command -v git; command -v curl; pwd; " +
          "cat README.md; systemctl is-enabled ssh; cat /etc/default/locale",
        ], worktree),
        "exec",
      ).stdout;
      assertEquals(
        who,
        `1000\n${user}\n1000\n0\n/usr/bin/git\n/usr/bin/curl\n/mnt/tachikoma/code\nhello\n` +
          "enabled\nLANG=C.UTF-8\n",
      );

      // an edit committed from the guest is a commit on the host
      const message = "from the guest: it's $(not) `run`";
      ok(
        await ws.cli([
          "exec",
          "--",
          "sh",
          "-c",
          'echo "guest line" >> README.md && git commit -qam "$1"',
          "sh",
          message,
        ], worktree),
        "guest commit",
      );
      const log = ok(await ws.run("git", ["log", "-1", "--format=%s"], { cwd: worktree }), "log");
      assertEquals(log.stdout, `${message}\n`);
      assertEquals(await Deno.readTextFile(`${worktree}/README.md`), "hello\nguest line\n");

      // ssh through the generated config (sshd came with the bootstrap)
      ok(await ws.cli(["ssh", "install"]), "ssh install");
      const ssh = await sshTrue(ws, spawned.name);
      assertEquals(ssh.code, 0, `ssh ${spawned.name} true: ${ssh.stderr}`);

      // the next sandbox starts from the prepared image: no package install, its own identity
      const second = JSON.parse(
        ok(await ws.cli(["spawn", "feat/two", "--no-attach", "--json"]), "second spawn").stdout,
      );
      names.push(second.name);
      assertNotEquals(await instanceImage(client, second.name), pulled.fingerprint);
      const ids = await Promise.all(names.map((n) =>
        ws.cli([
          "exec",
          "-n",
          n,
          "--",
          "sh",
          "-c",
          "cat /etc/machine-id; cat /etc/ssh/ssh_host_ed25519_key.pub",
        ])
      ));
      const [a, b] = ids.map((r) => ok(r, "identity").stdout);
      assert(/^[0-9a-f]{32}\n/.test(b), `machine-id of ${second.name}: ${b}`);
      assertNotEquals(a.split("\n")[0], b.split("\n")[0], "machine-ids differ");
      assertNotEquals(a.split("\n")[1], b.split("\n")[1], "SSH host keys differ");
      ok(await ws.cli(["ssh", "refresh"]), "ssh refresh");
      const ssh2 = await sshTrue(ws, second.name);
      assertEquals(ssh2.code, 0, `ssh ${second.name} true: ${ssh2.stderr}`);

      for (const n of [...names]) {
        ok(await ws.cli(["destroy", n, "--force"]), `destroy ${n}`);
      }
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

/** `ssh -F <home>/.ssh/config <name> true`, polling while sshd is not up yet (60 s). */
async function sshTrue(
  ws: Awaited<ReturnType<typeof workspace>>,
  name: string,
): Promise<{ code: number; stderr: string }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await ws.run("ssh", [
      "-F",
      `${ws.home}/.ssh/config`,
      "-o",
      "BatchMode=yes",
      "-o",
      "ConnectTimeout=5",
      name,
      "true",
    ]);
    if (r.code === 0 || Date.now() > deadline || !/refused|reset|closed/i.test(r.stderr)) {
      return r;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
