/**
 * Bases and forks end to end on the Incus lab, through the CLI (main.ts as a subprocess): a
 * configured base and a child base (`from`) are built (`image build`: ancestors first, the
 * setup scripts as root), listed ready, then stale once the child's recipe changes; a failing
 * setup leaves no container; `spawn --from <base>` gives a branch a sandbox with the base's
 * files and its own worktree (timed against a fresh spawn: the numbers go to stderr);
 * `checkpoint fork` gives a new branch a sandbox whose guest files are the checkpoint's, not
 * the source's current ones; `image rm` deletes the builds.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { LAB_EGRESS_ALLOW, labEnv, labIgnored } from "./lab.ts";
import { openLabWorld } from "./lab_world.ts";
import { ok, run } from "../testing/run.ts";
import { connectSsh, knownHostsFor } from "../../src/ssh/mod.ts";
import { keyPaths } from "../../src/ssh/keys.ts";

const lab = labEnv();
const dec = new TextDecoder();

Deno.test({
  name: "incus bases: build (ancestors, setup as root), list, stale, failure, spawn --from, fork",
  ignore: labIgnored(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using world = await openLabWorld({
      prefix: "bases",
      env: { TACHIKOMA_EGRESS_ALLOW: LAB_EGRESS_ALLOW },
    });
    const { id, cfg, env, backend, cli } = world;
    const dev = `bases-${id}`;
    const child = `bases-${id}-py`;
    const broken = `bases-${id}-bad`;
    const configText = (childSetup: string) =>
      `[bases.${dev}]\nimage = "${lab!.image}"\ndescription = "lab base"\n` +
      `setup = "echo \\"built by $(id -un)\\" > /etc/tk-base-marker"\n` +
      `[bases.${child}]\nfrom = "${dev}"\nsetup = "${childSetup}"\n` +
      `[bases.${broken}]\nfrom = "${dev}"\nsetup = "echo doomed; exit 7"\n`;
    await Deno.writeTextFile(`${cfg}/config.toml`, configText("echo py > /etc/tk-py-marker"));
    const json = async (args: string[], what: string, cwd = world.repo) =>
      JSON.parse(ok(await cli([...args, "--json"], cwd), what).stdout);
    const guest = async (name: string, script: string) => {
      const r = await backend.exec(name, { argv: ["/bin/sh", "-c", script], user: "root" });
      return dec.decode(r.stdout).trim();
    };
    const mine = async () =>
      (await backend.list()).map((s) => s.name).filter((n) =>
        n.startsWith(`tkb-${dev}`) || n.includes(`tkt-bases-${id}`)
      ).sort();
    try {
      // Build the child: its parent first.
      let listed = await json(["image", "list"], "image list");
      const status = (doc: { bases: { name: string; status: string }[] }, name: string) =>
        doc.bases.find((b) => b.name === name)?.status;
      assertEquals(status(listed, dev), "missing");
      const build = await cli(["image", "build", child, "--json"]);
      const built = JSON.parse(ok(build, "image build").stdout);
      assertEquals(
        built.bases.map((b: { name: string; action: string }) => [b.name, b.action]),
        [[dev, "built"], [child, "built"]],
      );
      const devBox: string = built.bases[0].sandbox;
      const childBox: string = built.bases[1].sandbox;
      console.error(
        `[bases] build of ${dev} + ${child}: ${(build.ms / 1000).toFixed(1)} s; ` +
          `base size ${built.bases[0].size_bytes ?? "unknown"} B`,
      );
      assertEquals((await backend.get(devBox)).state, "stopped");
      listed = await json(["image", "list"], "image list");
      assertEquals([status(listed, dev), status(listed, child)], ["ready", "ready"]);
      // btrfs gives no snapshot size: the size measured in the guest at build time.
      const size = listed.bases.find((b: { name: string }) => b.name === dev).size_bytes;
      assert(size > 10_000_000 && size === built.bases[0].size_bytes, `size ${size}`);

      // A failing setup: one line, no container left.
      const bad = await cli(["image", "build", broken]);
      assertEquals(bad.code, 1, bad.stderr);
      assertStringIncludes(bad.stderr, `base ${broken}: the setup script exited 7`);
      assert(!(await mine()).some((n) => n.startsWith(`tkb-${broken}-`)), "nothing half-made");
      assertStringIncludes(await Deno.readTextFile(`${cfg}/logs/base-${broken}.log`), "doomed");

      // A changed recipe: the child is stale, its parent still ready.
      await Deno.writeTextFile(`${cfg}/config.toml`, configText("echo py2 > /etc/tk-py-marker"));
      listed = await json(["image", "list"], "image list");
      assertEquals([status(listed, dev), status(listed, child)], ["ready", "stale"]);
      await Deno.writeTextFile(`${cfg}/config.toml`, configText("echo py > /etc/tk-py-marker"));

      // A fresh spawn, then one from the base: timed side by side.
      const fresh = await cli(["spawn", "fresh", "--no-attach", "--json"]);
      const freshDoc = JSON.parse(ok(fresh, "fresh spawn").stdout);
      // Its own egress mode (not the base's): stored before its first start, in force on the host.
      const forked = await cli([
        "spawn",
        "from-base",
        "--from",
        child,
        "--egress",
        "none",
        "--no-attach",
        "--json",
      ]);
      const forkDoc = JSON.parse(ok(forked, "spawn --from").stdout);
      console.error(
        `[bases] fresh spawn ${(fresh.ms / 1000).toFixed(1)} s; spawn --from ${child} ` +
          `${(forked.ms / 1000).toFixed(1)} s (CLI wall time, deno startup included)`,
      );
      assertEquals(forkDoc.from, { kind: "base", name: child, checkpoint: null });
      assertEquals(forkDoc.provisioning.steps, [
        "ssh_key",
        "code",
        "hostname",
        "profile",
        "gh_auth",
        "scripts",
      ]);
      assertEquals((await backend.getEgress(forkDoc.name)).mode, "none");
      assertEquals(await guest(forkDoc.name, "cat /etc/tk-base-marker"), "built by root");
      assertEquals(await guest(forkDoc.name, "cat /etc/tk-py-marker"), "py");
      assertEquals(await guest(forkDoc.name, "hostname"), "from-base");
      const inside = ok(
        await cli(["exec", "--", "git", "status", "--short", "--branch"], forkDoc.worktree_path),
        "exec in the fork",
      );
      assertStringIncludes(inside.stdout, "## from-base");

      // A checkpoint of the fresh sandbox, a change after it, then a fork of the checkpoint.
      // In it, each ssh-keygen first does what a starting sshd does (`ssh-keygen -A`: the
      // missing host keys made): the fork renews its keys while its sshd may be starting, and
      // a renewal that removed the keys before making its own once failed on that (bench).
      await guest(
        freshDoc.name,
        `printf '%s\\n' '#!/bin/sh' '/usr/bin/ssh-keygen -A >/dev/null' ` +
          `'exec /usr/bin/ssh-keygen "$@"' > /usr/local/sbin/ssh-keygen && ` +
          "chmod 755 /usr/local/sbin/ssh-keygen",
      );
      await guest(freshDoc.name, "echo at-checkpoint > /root/state.txt");
      ok(await cli(["checkpoint", "create", freshDoc.name, "--label", "cp1"]), "checkpoint");
      await guest(freshDoc.name, "echo after > /root/state.txt");
      const fork = await json(["checkpoint", "fork", `${freshDoc.name}:cp1`, "forked"], "fork");
      assertEquals(fork.from, { kind: "checkpoint", name: freshDoc.name, checkpoint: "cp1" });
      assertEquals(fork.provisioning.steps, ["ssh_key", "code", "hostname", "profile"]);
      assertEquals(fork.branch, "forked");
      assertEquals((await backend.getEgress(fork.name)).mode, "agent");
      assert(fork.worktree_path !== freshDoc.worktree_path);
      assertEquals(await guest(fork.name, "cat /root/state.txt"), "at-checkpoint");
      assertEquals(await guest(freshDoc.name, "cat /root/state.txt"), "after");

      // Each clone has its own identity: SSH host keys and machine-id made anew, not its
      // source's (a guest holding a sibling's host key could pass for it on the bridge); the
      // new keys are the ones pinned, and sshd serves them.
      const identity = (name: string) =>
        guest(name, "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub; cat /etc/machine-id");
      const ids = await Promise.all([freshDoc.name, fork.name, forkDoc.name].map(identity));
      assertEquals(new Set(ids).size, 3, ids.join(" | "));
      assertEquals(new Set(ids.map((i) => i.split("\n")[1])).size, 3, "machine-ids");
      assertEquals(
        await guest(fork.name, "ls -a /etc/ssh | grep -c tachikoma-keys || true"),
        "0",
        "the renewal's private directory is gone",
      );
      const knownHosts = knownHostsFor(cfg);
      const pinned = (await knownHosts.list(fork.name)).find((p) => p.type === "ssh-ed25519");
      assertEquals(`${pinned?.type} ${pinned?.key}`, ids[1].split("\n")[0]);
      const conn = await connectSsh(
        { host: fork.ip, port: 22, user: "admin", alias: fork.name },
        { privateKey: await Deno.readTextFile(keyPaths(world.home).privatePath), knownHosts },
      );
      try {
        assertEquals((await conn.exec(["hostname"])).code, 0);
      } finally {
        await conn.close();
      }
      const branch = ok(
        await run("git", ["rev-parse", "--abbrev-ref", "HEAD"], { cwd: fork.worktree_path, env }),
        "git",
      );
      assertEquals(branch.stdout.trim(), "forked");
      const forkedExec = ok(
        await cli(
          ["exec", "--", "sh", "-c", "pwd; git rev-parse --abbrev-ref HEAD"],
          fork.worktree_path,
        ),
        "exec in the checkpoint fork",
      );
      assertEquals(forkedExec.stdout, "/mnt/tachikoma/code\nforked\n");

      // A running sandbox without a checkpoint is refused.
      const refused = await cli(["spawn", "nope", "--from", freshDoc.name, "--no-attach"]);
      assertEquals(refused.code, 1, refused.stderr);
      assertStringIncludes(refused.stderr, "is running");

      // image rm deletes the builds.
      const removed = await json(["image", "rm", child], "image rm");
      assertEquals(removed.removed, [childBox]);
      ok(await cli(["image", "rm", dev]), "image rm");
      assert(!(await mine()).some((n) => n.startsWith("tkb-")), "builds gone");
    } finally {
      for (const name of await mine().catch(() => [] as string[])) {
        await backend.delete(name).catch(() => {});
      }
    }
  },
});
