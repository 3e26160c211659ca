/**
 * A test world for the hostile-guest scenario: a temp dir (0755, under /var/tmp: the guest
 * cleans its own /tmp at boot), a repo with a local bare `origin`, a fake `gh`, a config dir
 * whose `config.toml` selects the engine, and the real CLI.
 *
 * @module
 */
import { fakeGh } from "./boundary_scenario.ts";
import type { BoundaryWorld, CliRun } from "./boundary_scenario.ts";
import { runCliFromSource } from "../testing/run.ts";

const dec = new TextDecoder();

/** Options of {@link boundaryWorld}. */
export interface BoundaryWorldOptions {
  /** Extra environment (the fake tart's). */
  env?: Record<string, string>;
  /** A directory to put first on PATH (the fake tart's). */
  path?: string;
}

/** Creates the world; dispose it to remove it. */
export async function boundaryWorld(
  backend: "incus" | "tart",
  configLines: string[],
  options: BoundaryWorldOptions = {},
): Promise<BoundaryWorld & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "tkt-boundary-" });
  await Deno.chmod(dir, 0o755);
  const id = dir.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, "x");
  const repo = `${dir}/tkt-b-${id}`;
  const home = `${dir}/home`;
  const cfg = `${dir}/config`;
  const bin = `${dir}/bin`;
  await Deno.mkdir(repo);
  await Deno.mkdir(`${home}/.claude`, { recursive: true });
  await Deno.mkdir(cfg);
  await fakeGh(bin, `${dir}/gh.log`);
  await Deno.writeTextFile(
    `${cfg}/config.toml`,
    [
      "credential_proxy = false",
      'egress = "unrestricted"',
      'claude_install = "skip"',
      'tmux_install = "skip"',
      "share_claude_dirs = []",
      "vm_cpus = 1",
      "vm_memory = 1024",
      ...configLines,
    ].join("\n") + "\n",
  );
  const realHome = Deno.env.get("HOME") ?? "/root";
  const env: Record<string, string> = {
    ...options.env,
    PATH: [options.path, bin, Deno.env.get("PATH") ?? "/usr/bin:/bin"].filter(Boolean).join(":"),
    HOME: home,
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${realHome}/.cache/deno`,
    TACHIKOMA_CONFIG_DIR: cfg,
    GIT_AUTHOR_NAME: "t",
    GIT_AUTHOR_EMAIL: "t@example.invalid",
    GIT_COMMITTER_NAME: "t",
    GIT_COMMITTER_EMAIL: "t@example.invalid",
    GIT_CONFIG_NOSYSTEM: "1",
    NO_COLOR: "1",
  };
  const git = async (cwd: string, ...args: string[]) => {
    const out = await new Deno.Command("git", { args, cwd, env, clearEnv: true }).output();
    if (!out.success) throw new Error(`git ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  };
  await git(repo, "init", "-q", "-b", "main");
  await Deno.writeTextFile(`${repo}/README.md`, "hello\n");
  await git(repo, "add", ".");
  await git(repo, "commit", "-qm", "init");
  await git(dir, "init", "-q", "--bare", "origin.git");
  await git(repo, "remote", "add", "origin", `${dir}/origin.git`);
  await git(repo, "push", "-q", "origin", "main");
  const cli = async (cwd: string, ...args: string[]): Promise<CliRun> => {
    return await runCliFromSource(args, { cwd, env });
  };
  return {
    dir,
    repo,
    cli,
    env,
    backend,
    async [Symbol.asyncDispose]() {
      // Whatever the scenario left (a failed step): destroy every sandbox of this config dir.
      const list = await cli(repo, "list", "--json", "--all").catch(() => null);
      const names: string[] = list?.code === 0
        ? JSON.parse(list.stdout).sandboxes.map((s: { name: string }) => s.name)
        : [];
      for (const n of names) await cli(repo, "destroy", "--force", n).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
