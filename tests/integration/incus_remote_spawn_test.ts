/**
 * Remote Incus end to end through code by git (the server cannot mount host directories): the
 * lab daemon is reached over loopback HTTPS with a trusted client certificate
 * (`incus_remote_lab.ts`), and the CLI, as a subprocess of main.ts, runs `spawn` (no share: the
 * branch is brought in as the guest's own repository), `exec` (a commit in the guest as the
 * guest user), `list` / `status` (ahead/behind), `pull` (the commit lands on the host branch
 * and its worktree), `pr` with a fake `gh` first on PATH, and `destroy` — on a hostile branch
 * name (unicode, quote, `$()`, backticks, `;`, `&`). Then a hostile guest: root replaces `git`
 * so the bundle carries every ref (main, a tag, refs/remotes, a command-named ref) and the repo
 * plants hooks and config; `pull` takes the branch only, no other host ref moves, no host hook
 * runs.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { IncusBackend, IncusClient, type IncusEndpoint } from "../../src/backends/incus/mod.ts";
import { labEnv, labIgnored } from "./lab.ts";
import { haveOpenssl, openRemoteAccess, SERVER_CERT } from "./incus_remote_lab.ts";
import { fakeGh } from "./boundary_scenario.ts";

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
  options: { cwd: string; env: Record<string, string> },
): Promise<Run> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    clearEnv: true,
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

/** `git`, with `bundle create` bundling every ref of the repo (a hostile guest's). */
const EVIL_GIT = [
  "#!/bin/sh",
  'if [ "$3" = bundle ] && [ "$4" = create ]; then',
  '  /usr/bin/git -C "$2" bundle create -q "$6" --all; exit $?',
  "fi",
  'exec /usr/bin/git "$@"',
].join("\n") + "\n";

/** In the guest repo: refs outside the branch, hooks, config tricks; then a legit commit. */
const PLANT = [
  "set -e",
  "git checkout -q -b side",
  "echo evil > evil.txt && git add evil.txt && git commit -qm evil",
  "git update-ref refs/heads/main HEAD",
  "git tag evil",
  "git update-ref refs/remotes/origin/main HEAD",
  "git update-ref 'refs/heads/x$(touch${IFS}PWNED)' HEAD",
  'git checkout -q "$1"',
  "echo legit > legit.txt && git add legit.txt && git commit -qm legit",
  "mkdir -p /tmp/h && printf '#!/bin/sh\\ntouch PWNED\\n' > /tmp/h/post-merge && chmod +x /tmp/h/post-merge",
  "git config core.hooksPath /tmp/h",
  "git config core.fsmonitor 'touch PWNED-fsmonitor'",
].join("\n");

/** Every ref of the host repo but the sandbox's branch (local and on origin) and tachikoma's. */
async function hostRefs(repo: string, branch: string): Promise<string> {
  const out = await new Deno.Command("git", {
    args: ["for-each-ref", "--format=%(refname) %(objectname)"],
    cwd: repo,
    stdout: "piped",
  }).output();
  return dec.decode(out.stdout).split("\n").filter((l) =>
    !l.startsWith(`refs/heads/${branch} `) && !l.startsWith(`refs/remotes/origin/${branch} `) &&
    !l.startsWith("refs/tachikoma/")
  ).join("\n");
}

Deno.test({
  name: "incus remote e2e: spawn by git, commit in the guest, pull, pr, destroy (hostile branch)",
  ignore: labIgnored() || !(await haveOpenssl()),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const access = await openRemoteAccess(lab!.socket, "gitcode");
    if (!access) return;
    const top = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "tk-gitcode-" });
    const id = top.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, "x");
    const repo = `${top}/tkt-gitcode-${id}`;
    const origin = `${top}/origin.git`;
    const home = `${top}/home`;
    const bin = `${top}/bin`;
    await Deno.mkdir(repo, { recursive: true });
    await Deno.mkdir(home);
    await fakeGh(bin, `${top}/gh.log`);
    const realHome = Deno.env.get("HOME") ?? "/root";
    const env: Record<string, string> = {
      PATH: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
      HOME: home,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${realHome}/.cache/deno`,
      TACHIKOMA_CONFIG_DIR: `${top}/config`,
      TACHIKOMA_BACKEND: "incus",
      TACHIKOMA_BASE_IMAGE: lab!.image,
      TACHIKOMA_INCUS_REMOTE: `https://${access.address}`,
      TACHIKOMA_INCUS_CLIENT_CERT: access.trusted.cert,
      TACHIKOMA_INCUS_CLIENT_KEY: access.trusted.key,
      TACHIKOMA_INCUS_SERVER_CERT: SERVER_CERT,
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
    const git = (cwd: string, ...args: string[]) => run("git", args, { cwd, env });
    const cli = (args: string[], cwd = repo) =>
      run(Deno.execPath(), [
        "run",
        "-A",
        "--frozen",
        "--config",
        `${ROOT}deno.json`,
        `${ROOT}main.ts`,
        ...args,
      ], { cwd, env });
    const endpoint: IncusEndpoint = {
      socket: "/nonexistent/unused.socket",
      remote: `https://${access.address}`,
      clientCert: access.trusted.cert,
      clientKey: access.trusted.key,
      serverCert: SERVER_CERT,
    };
    const backend = new IncusBackend(await IncusClient.open(endpoint), {
      endpoint,
      cpus: 1,
      memoryMb: 1024,
      sshUser: "admin",
      sshPort: 22,
    });
    let name = "";
    try {
      ok(await git(top, "init", "-q", "--bare", "-b", "main", origin), "git init --bare");
      ok(await git(repo, "init", "-q", "-b", "main"), "git init");
      // The host's identity goes into the guest (spawn copies it).
      ok(await git(repo, "config", "user.name", "Host Tester"), "git config user.name");
      ok(await git(repo, "config", "user.email", "host@example.invalid"), "git config user.email");
      await Deno.writeTextFile(`${repo}/README.md`, "hello\n");
      ok(await git(repo, "add", "."), "git add");
      ok(await git(repo, "commit", "-qm", "init"), "git commit");
      ok(await git(repo, "remote", "add", "origin", origin), "git remote add");
      ok(await git(repo, "push", "-q", "origin", "main"), "git push");
      const branch = `gitcode/ü'$(x)-\`y\`;z&${id}`;

      const spawned = JSON.parse(
        ok(await cli(["spawn", branch, "--no-attach", "--json"]), "spawn").stdout,
      );
      name = spawned.name;
      assertEquals(spawned.action, "created");
      const worktree: string = spawned.worktree_path;
      const host = (await git(worktree, "rev-parse", "HEAD")).stdout.trim();
      // No share device: the code is the guest's own repository.
      const devices = (await access.local.get<{ devices: Record<string, unknown> }>(
        `/1.0/instances/${name}`,
      )).devices;
      assertEquals(Object.keys(devices).filter((d) => d.startsWith("tk-share")), []);
      const inGuest = ok(
        await cli([
          "exec",
          "--",
          "sh",
          "-c",
          "id -u; pwd; git rev-parse HEAD; git symbolic-ref --short HEAD; stat -c %u .git; cat README.md",
        ], worktree),
        "exec",
      );
      assertEquals(
        inGuest.stdout,
        `1000\n/mnt/tachikoma/code\n${host}\n${branch}\n1000\nhello\n`,
      );

      // A commit in the guest, as the guest user.
      ok(
        await cli([
          "exec",
          "--",
          "sh",
          "-c",
          "echo from-guest > guest.txt && git add guest.txt && git commit -qm 'guest commit' && git rev-parse HEAD",
        ], worktree),
        "commit in the guest",
      );
      assertEquals(
        (await cli(["exec", "--", "git", "log", "-1", "--format=%an <%ae>"], worktree)).stdout,
        "Host Tester <host@example.invalid>\n",
      );
      const made = (await cli(["exec", "--", "git", "rev-parse", "HEAD"], worktree)).stdout.trim();
      assert(/^[0-9a-f]{40}$/.test(made), made);

      const status = JSON.parse(ok(await cli(["status", "--json"], worktree), "status").stdout);
      assertEquals([status.code_sync?.ahead, status.code_sync?.behind], [1, 0]);
      const listed = ok(await cli(["list"]), "list");
      assertStringIncludes(listed.stdout, "↑1 ↓0");

      const pulled = JSON.parse(ok(await cli(["pull", "--json"], worktree), "pull").stdout);
      assertEquals([pulled.action, pulled.to, pulled.commits], ["fast_forward", made, 1]);
      assertEquals((await git(worktree, "rev-parse", "HEAD")).stdout.trim(), made);
      assertEquals(await Deno.readTextFile(`${worktree}/guest.txt`), "from-guest\n");
      assertEquals(
        JSON.parse(ok(await cli(["pull", "--json"], worktree), "pull again").stdout).action,
        "up_to_date",
      );

      // pr: pulls first (a second guest commit), pushes, opens the pull request (fake gh).
      ok(
        await cli(
          ["exec", "--", "sh", "-c", "echo 2 > two.txt && git add two.txt && git commit -qm two"],
          worktree,
        ),
        "second guest commit",
      );
      const second = (await cli(["exec", "--", "git", "rev-parse", "HEAD"], worktree)).stdout
        .trim();
      const pr = JSON.parse(ok(await cli(["pr", "--json"], worktree), "pr").stdout);
      assertEquals(pr.url, "https://example.invalid/pr/1");
      assertEquals(pr.commit, second);
      assertEquals(
        (await git(origin, "rev-parse", `refs/heads/${branch}`)).stdout.trim(),
        second,
        "origin has the guest's commits",
      );

      // A hostile guest: root swaps in a git whose `bundle create` bundles every ref (main,
      // a tag, refs/remotes, a ref named like a command), the repo plants hooks and config;
      // the host repo has hooks that must not run. pull takes the branch and nothing else.
      for (const hook of ["post-merge", "reference-transaction", "post-checkout"]) {
        await Deno.writeTextFile(
          `${repo}/.git/hooks/${hook}`,
          `#!/bin/sh\ntouch '${top}/PWNED-${hook}'\n`,
          { mode: 0o755 },
        );
      }
      const refsBefore = await hostRefs(repo, branch);
      ok(
        await cli([
          "exec",
          "--",
          "sudo",
          "sh",
          "-c",
          'printf %s "$1" > /usr/local/bin/git && chmod 755 /usr/local/bin/git',
          "sh",
          EVIL_GIT,
        ], worktree),
        "plant the evil git",
      );
      ok(
        await cli(["exec", "--", "sh", "-c", PLANT, "sh", branch], worktree),
        "plant refs, hooks and config in the guest repo",
      );
      const legit = (await cli(["exec", "--", "/usr/bin/git", "rev-parse", "HEAD"], worktree))
        .stdout.trim();
      const evil = JSON.parse(ok(await cli(["pull", "--json"], worktree), "hostile pull").stdout);
      assertEquals([evil.action, evil.to], ["fast_forward", legit]);
      assertEquals((await git(worktree, "rev-parse", "HEAD")).stdout.trim(), legit);
      assertEquals(await hostRefs(repo, branch), refsBefore, "no other host ref changed");
      assertEquals((await git(repo, "tag", "--list")).stdout, "");
      const planted = [...Deno.readDirSync(top)].filter((e) => e.name.startsWith("PWNED"));
      assertEquals(planted, [], "nothing ran on the host");
      assert(!(await git(repo, "for-each-ref")).stdout.includes("PWNED"));

      const destroyed = JSON.parse(
        ok(await cli(["destroy", name, "--force", "--json"]), "destroy").stdout,
      );
      assertEquals(destroyed.destroyed.map((d: { name: string }) => d.name), [name]);
      assertEquals(
        (await backend.list()).filter((s) => s.name === name),
        [],
        `${name} is gone from Incus`,
      );
      name = "";
    } finally {
      await cli(["proxy", "stop"]).catch(() => {});
      if (name) await backend.delete(name).catch(() => {});
      await backend.close();
      await access.close();
      await Deno.remove(top, { recursive: true }).catch(() => {});
    }
  },
});
