/**
 * The hostile-guest scenario, shared by the Incus and fake-tart lab tests: spawn a sandbox with
 * the real CLI, let the guest commit (that must keep working), then plant from inside the guest,
 * as root, every trick that once made host git or a host user run guest-written code — config,
 * hooks and attributes in `.git`, unmounting or remounting the read-only `.git`, a crafted
 * repository behind a rewritten `.git` file and `commondir`, a setuid binary, a device node, a
 * worktree `.tachikoma.local.toml` — then run every host command and the user's own git, and
 * check that no marker appeared on the host, `.git` is unchanged and the setuid file gives no
 * host privileges.
 *
 * @module
 */
import { assert, assertEquals, assertNotEquals, assertStringIncludes } from "@std/assert";
import { ok, type Run, run } from "../testing/run.ts";

/** One CLI run. */
export type CliRun = Run;

/** What the scenario needs from an engine's test world. */
export interface BoundaryWorld {
  /** Top temp dir (host), traversable by every user (0755). */
  dir: string;
  /** The main checkout (with an `origin` remote). */
  repo: string;
  /** Runs the CLI in `cwd` with the world's environment (PATH includes the fake `gh`). */
  cli(cwd: string, ...args: string[]): Promise<CliRun>;
  /** The environment host git runs with (identity, HOME…). */
  env: Record<string, string>;
  /** The engine (`--backend`). */
  backend: "incus" | "tart";
}

const dec = new TextDecoder();

function sh(cwd: string, script: string, env: Record<string, string>): Promise<CliRun> {
  return run("sh", ["-c", script], { cwd, env });
}

function git(w: BoundaryWorld, ...args: string[]): Promise<CliRun> {
  return run("git", args, { cwd: w.repo, env: w.env });
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

async function digest(path: string): Promise<string> {
  const files: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else files.push(`${p}\n${await Deno.readTextFile(p).catch(() => "?")}`);
    }
  };
  if ((await Deno.stat(path)).isDirectory) await walk(path);
  else files.push(await Deno.readTextFile(path));
  const bytes = new TextEncoder().encode(files.sort().join("\0"));
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Writes a fake `gh` into `bin` that records its argv and prints a pull request URL. */
export async function fakeGh(bin: string, log: string): Promise<void> {
  await Deno.mkdir(bin, { recursive: true });
  await Deno.writeTextFile(
    `${bin}/gh`,
    `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\n` +
      `case "$1" in --version) echo "gh version 2.0.0";; pr) [ "$2" = view ] && exit 1; ` +
      `echo https://example.invalid/pr/1;; esac\nexit 0\n`,
    { mode: 0o755 },
  );
}

/** Runs the scenario; `branch` is hostile but legal. */
export async function hostileGuestScenario(w: BoundaryWorld, t: Deno.TestContext): Promise<void> {
  const marker = (n: string) => `${w.dir}/PWNED-${n}`;
  const markers = ["config", "hook", "attr", "fsmonitor", "filter", "commondir", "localcfg"];
  const branch = "boundary/it's-$(x)-`y`";
  const spawned = JSON.parse(
    ok(
      await w.cli(w.repo, "spawn", branch, "--backend", w.backend, "--no-attach", "--json"),
      "spawn",
    )
      .stdout,
  );
  const name: string = spawned.name;
  const wt: string = spawned.worktree_path;
  const common = `${w.repo}/.git`;
  const admins = [...Deno.readDirSync(`${common}/worktrees`)].map((e) => e.name);
  assertEquals(admins.length, 1);
  const guest = (script: string) => w.cli(w.repo, "exec", "-n", name, "--", "sh", "-c", script);
  const guestRoot = (script: string) =>
    w.cli(w.repo, "exec", "-n", name, "--", "sudo", "sh", "-c", script);

  await t.step("the guest commits, branches and stashes; the host sees the commit", async () => {
    ok(
      await guest(
        "cd /mnt/tachikoma/code && git config --global user.email g@example.invalid && " +
          "git config --global user.name guest && echo g > g.txt && git add g.txt && " +
          "git commit -qm 'from the guest' && git branch guest-side && " +
          "echo s >> g.txt && git stash -q && git stash list | grep -q stash",
      ),
      "guest git",
    );
    const log = ok(await git(w, "log", "-1", "--format=%s", branch), "host git log");
    assertEquals(log.stdout.trim(), "from the guest");
    ok(await git(w, "rev-parse", "--verify", "-q", "guest-side"), "branch visible");
  });

  const configBefore = await digest(`${common}/config`);
  const hooksBefore = await digest(`${common}/hooks`);
  await t.step("guest root cannot write .git's configuration, hooks or info", async () => {
    const tries = [
      `printf '[core]\\n\\tfsmonitor = touch ${marker("config")}\\n' >> /mnt/tachikoma/git/config`,
      `printf '#!/bin/sh\\ntouch ${marker("hook")}\\n' > /mnt/tachikoma/git/hooks/pre-commit && ` +
      "chmod +x /mnt/tachikoma/git/hooks/pre-commit",
      "mkdir -p /mnt/tachikoma/git/info && echo '* filter=x' > /mnt/tachikoma/git/info/attributes",
      "mount -o remount,rw /mnt/tachikoma/git",
      "mv /mnt/tachikoma/git/config /mnt/tachikoma/git/config.old",
    ];
    for (const script of tries) {
      const r = await guestRoot(script);
      assertNotEquals(r.code, 0, `guest root managed: ${script}`);
    }
    // Unmounting a read-write part only uncovers the read-only directory beneath it.
    const r = await guestRoot(
      "umount /mnt/tachikoma/git/refs; umount /mnt/tachikoma/git/refs 2>/dev/null; " +
        "touch /mnt/tachikoma/git/refs/heads/planted",
    );
    assertNotEquals(r.code, 0);
    assertEquals(await exists(`${common}/refs/heads/planted`), false);
  });

  await t.step(
    "guest root plants a crafted repository, a setuid binary, a device node",
    async () => {
      const evil = `${wt}/evil`; // host path, as the .git file and commondir name it
      ok(
        await guestRoot([
          "set -e",
          "cd /mnt/tachikoma/code",
          "mkdir -p evil/objects evil/refs/heads evil/hooks",
          "echo 'ref: refs/heads/main' > evil/HEAD",
          `printf '[core]\\n\\tfsmonitor = touch ${
            marker("fsmonitor")
          }\\n\\thooksPath = ${evil}/hooks\\n` +
          `[filter "x"]\\n\\tclean = touch ${marker("filter")}\\n' > evil/config`,
          `printf '#!/bin/sh\\ntouch ${marker("hook")}\\n' > evil/hooks/pre-commit`,
          "chmod +x evil/hooks/pre-commit",
          "echo '* filter=x' > .gitattributes",
          `printf 'gitdir: ${evil}\\n' > .git`,
          `printf '${evil}\\n' > /mnt/tachikoma/git/worktrees/${admins[0]}/commondir`,
          `printf '[core]\\n\\tsshCommand = touch ${marker("commondir")}\\n' > ` +
          `/mnt/tachikoma/git/worktrees/${admins[0]}/config.worktree`,
          // A worktree config that would run a guest-written program as tart on the host.
          `printf '#!/bin/sh\\ntouch ${marker("localcfg")}\\n' > evil/tart && chmod +x evil/tart`,
          `printf 'backend = "tart"\\ncredential_command = "touch ${marker("localcfg")}"\\n` +
          `[tart]\\nbinary = "./evil/tart"\\n' > .tachikoma.local.toml`,
          "cp /usr/bin/id suid && chmod 6755 suid",
        ].join("\n")),
        "planting",
      );
      const node = await guestRoot("mknod /mnt/tachikoma/code/null c 1 3");
      assertNotEquals(node.code, 0, "a device node was made");
      // Whatever the guest did, .git's configuration and hooks are as they were.
      assertEquals(await digest(`${common}/config`), configBefore, ".git/config unchanged");
      assertEquals(await digest(`${common}/hooks`), hooksBefore, ".git/hooks unchanged");
    },
  );

  await t.step("every host command runs, none runs anything the guest planted", async () => {
    ok(await w.cli(w.repo, "exec", "-n", name, "--", "true"), "exec");
    ok(await w.cli(w.repo, "list"), "list");
    ok(await w.cli(w.repo, "status", name), "status");
    ok(await w.cli(wt, "status"), "status from inside the worktree");
    await w.cli(wt, "list"); // reads config from the main checkout only, never the worktree
    const pr = await w.cli(w.repo, "pr", name);
    ok(pr, "pr");
    assertStringIncludes(pr.stdout, "https://example.invalid/pr/1");
    ok(await w.cli(w.repo, "prune", "--dry-run"), "prune");
    await w.cli(w.repo, "doctor"); // its verdict depends on the machine; it must run nothing
    // The user's own git: a commit in the main checkout, status in the (repaired) worktree.
    ok(await sh(w.repo, "git commit -q --allow-empty -m user", w.env), "user commit");
    ok(await sh(wt, "git status --porcelain", w.env), "user status in the worktree");
    for (const m of markers) assertEquals(await exists(marker(m)), false, `marker ${m}`);
    assertEquals(await digest(`${common}/hooks`), hooksBefore, ".git/hooks unchanged");
    // pr pushed the branch: the guest's commit reached origin through host git.
    const remote = ok(await git(w, "ls-remote", "origin", `refs/heads/${branch}`), "ls-remote");
    assert(remote.stdout.trim() !== "", "the branch is on origin");
  });

  await t.step("the setuid binary the guest made gives no host privileges", async () => {
    const st = await Deno.stat(`${wt}/suid`);
    assertNotEquals(st.uid, 0, "a guest-written file belongs to host root");
    const ran = await new Deno.Command("setpriv", {
      args: ["--reuid=65534", "--regid=65534", "--clear-groups", `${wt}/suid`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const id = dec.decode(ran.stdout);
    assert(!/euid=0\b/.test(id) && !/\buid=0\b/.test(id), `ran as root: ${id}`);
    assertEquals(await exists(`${wt}/null`), false);
  });

  await t.step("a cloned repo's committed .tachikoma.toml runs nothing until trusted", async () => {
    // A host file the repository's config names as a provisioning script: it would be read on
    // the host and run in the guest.
    const script = `${w.dir}/from-repo-config.sh`;
    await Deno.writeTextFile(script, 'echo ran > "$HOME/repo-script-ran"\n');
    await Deno.writeTextFile(`${w.repo}/.tachikoma.toml`, `provision_scripts = ["${script}"]\n`);
    ok(await git(w, "add", ".tachikoma.toml"), "git add");
    ok(await git(w, "commit", "-qm", "config"), "git commit");
    const ran = async () =>
      (await w.cli(w.repo, "exec", "-n", name, "--", "test", "-e", "/home/admin/repo-script-ran"))
        .code === 0;
    const untrusted = ok(
      await w.cli(w.repo, "spawn", branch, "--no-attach", "--reprovision"),
      "spawn",
    );
    assertStringIncludes(untrusted.stderr, "provision_scripts");
    assertStringIncludes(untrusted.stderr, "not trusted");
    assertEquals(await ran(), false, "the untrusted repo config ran a host script");
    ok(await w.cli(w.repo, "config", "trust"), "config trust");
    ok(await w.cli(w.repo, "spawn", branch, "--no-attach", "--reprovision"), "spawn trusted");
    assertEquals(await ran(), true, "trusted: the script runs");
    // One byte more: trust is gone, the (changed) script does not run again.
    ok(await w.cli(w.repo, "exec", "-n", name, "--", "rm", "/home/admin/repo-script-ran"), "rm");
    await Deno.writeTextFile(script, 'echo ran > "$HOME/repo-script-ran" # changed\n');
    await Deno.writeTextFile(`${w.repo}/.tachikoma.toml`, `provision_scripts = ["${script}"]\n\n`);
    const changed = ok(
      await w.cli(w.repo, "spawn", branch, "--no-attach", "--reprovision"),
      "spawn",
    );
    assertStringIncludes(changed.stderr, "not trusted");
    assertEquals(await ran(), false, "a changed repo config was trusted");
  });

  ok(await w.cli(w.repo, "destroy", "--force", name), "destroy");
}
