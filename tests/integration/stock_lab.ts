/**
 * Shared by the stock-image lab tests: a workspace (a temp dir with a git repo, a HOME and a
 * config dir) owned by root or by the lab's non-root user, the CLI (`deno run main.ts`) run as
 * that user, and the configuration that points tachikoma at the lab's image server — never at a
 * public one. Sandboxes are named after the repo directory (`tkt-…`), so `down.sh --purge`
 * finds them.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import type { LabEnv } from "./lab.ts";
import { freePort } from "../testing/free_port.ts";
import { ok, type Run, run as runProcess } from "../testing/run.ts";

export { freePort };

const ROOT = new URL("../../", import.meta.url).pathname;

/** The `TACHIKOMA_*` variables that make new sandboxes come from the lab's stock image. */
export function stockConfig(
  lab: LabEnv,
  extra: Record<string, string> = {},
): Record<string, string> {
  const server = lab.imageServer!;
  return {
    TACHIKOMA_BACKEND: "incus",
    TACHIKOMA_INCUS_SOCKET: lab.socket,
    TACHIKOMA_INCUS_IMAGE_SERVERS:
      `{lab = {url = "${server.url}", certificate = "${server.cert}"}}`,
    TACHIKOMA_BASE_IMAGE: `lab:${server.stock}`,
    TACHIKOMA_CLAUDE_INSTALL: "skip",
    TACHIKOMA_TMUX_INSTALL: "skip",
    TACHIKOMA_VM_CPUS: "1",
    TACHIKOMA_VM_MEMORY: "1024",
    ...extra,
  };
}

/** Where one test works, as one host user. */
export interface Workspace {
  top: string;
  repo: string;
  home: string;
  cfg: string;
  /** The host user commands run as (undefined: this process' user). */
  user?: string;
  env: Record<string, string>;
  /** Runs a program as the workspace's user. */
  run(cmd: string, args: string[], options?: { cwd?: string; stdin?: string }): Promise<Run>;
  /** Runs the CLI. */
  cli(args: string[], cwd?: string): Promise<Run>;
  /** The tachikoma config lines set for this workspace (after creation). */
  setEnv(vars: Record<string, string>): void;
  /** Removes the workspace. */
  remove(): Promise<void>;
}

/** Options of {@link workspace}. */
export interface WorkspaceOptions {
  /** Directory name prefix; the repo is `tkt-<prefix>-<id>`. */
  prefix: string;
  /** Run everything as this host user (it owns the workspace). */
  user?: string;
  env?: Record<string, string>;
}

/**
 * A workspace with a git repo holding one commit. Not under /tmp: the guest cleans its /tmp at
 * boot, where provisioning puts the link that makes the worktree's `.git` file resolve.
 */
export async function workspace(options: WorkspaceOptions): Promise<Workspace> {
  const top = await Deno.makeTempDir({ dir: "/var/tmp", prefix: `tk-${options.prefix}-` });
  await Deno.chmod(top, 0o755);
  const id = top.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, "x");
  const repo = `${top}/tkt-${options.prefix}-${id}`;
  const home = `${top}/home`;
  const cfg = `${top}/config`;
  const realDeno = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME") ?? "/root"}/.cache/deno`;
  let denoDir = realDeno;
  if (options.user) {
    // The user cannot read root's deno cache: give it a copy of the npm packages.
    denoDir = `${top}/deno`;
    await Deno.mkdir(denoDir);
    const cp = await runProcess("cp", ["-a", `${realDeno}/npm`, `${denoDir}/npm`], { env: {} });
    ok(cp, "copying the deno npm cache");
  }
  await Deno.mkdir(home);
  if (options.user) {
    ok(
      await runProcess("chown", ["-R", `${options.user}:${options.user}`, top], { env: {} }),
      "chown",
    );
  }
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: home,
    DENO_DIR: denoDir,
    DENO_NO_UPDATE_CHECK: "1",
    TACHIKOMA_CONFIG_DIR: cfg,
    NO_COLOR: "1",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_AUTHOR_NAME: "t",
    GIT_AUTHOR_EMAIL: "t@example.invalid",
    GIT_COMMITTER_NAME: "t",
    GIT_COMMITTER_EMAIL: "t@example.invalid",
    ...options.env,
  };
  const run = (cmd: string, args: string[], o: { cwd?: string; stdin?: string } = {}) => {
    const cwd = o.cwd ?? top;
    if (!options.user) return runProcess(cmd, args, { cwd, env, stdin: o.stdin });
    return runProcess(
      "setpriv",
      [
        `--reuid=${options.user}`,
        `--regid=${options.user}`,
        "--init-groups",
        "--",
        cmd,
        ...args,
      ],
      { cwd, env, stdin: o.stdin },
    );
  };
  // The CLI as the user runs it: from this checkout when the user can read it and run this
  // deno, else from a copy in the workspace (a checkout under /root, say).
  let cliRoot = ROOT;
  let deno = Deno.execPath();
  if (options.user) {
    const access = await run("sh", [
      "-c",
      'test -r "$1/main.ts" && test -r "$1/src/cli/program.ts" && test -x "$2"',
      "sh",
      ROOT,
      deno,
    ]);
    if (access.code !== 0) {
      cliRoot = `${top}/tachikoma/`;
      await Deno.mkdir(cliRoot);
      for (const f of ["deno.json", "deno.lock", "main.ts", "src"]) {
        ok(await runProcess("cp", ["-a", `${ROOT}${f}`, cliRoot], { env: {} }), `copying ${f}`);
      }
      await Deno.mkdir(`${top}/bin`);
      ok(await runProcess("cp", [deno, `${top}/bin/deno`], { env: {} }), "copying deno");
      deno = `${top}/bin/deno`;
      ok(
        await runProcess(
          "chown",
          ["-R", `${options.user}:${options.user}`, cliRoot, `${top}/bin`],
          {
            env: {},
          },
        ),
        "chown",
      );
    }
  }
  ok(await run("mkdir", [repo]), "mkdir repo");
  ok(await run("git", ["init", "-q", "-b", "main"], { cwd: repo }), "git init");
  // The host identity provisioning gives the guest's git.
  ok(await run("git", ["config", "user.name", "t"], { cwd: repo }), "git config");
  ok(await run("git", ["config", "user.email", "t@example.invalid"], { cwd: repo }), "git config");
  ok(await run("sh", ["-c", "echo hello > README.md"], { cwd: repo }), "README");
  ok(await run("git", ["add", "."], { cwd: repo }), "git add");
  ok(await run("git", ["commit", "-qm", "init"], { cwd: repo }), "git commit");
  return {
    top,
    repo,
    home,
    cfg,
    user: options.user,
    env,
    run,
    cli: (args, cwd = repo) => {
      if (Deno.env.get("TK_E2E_DEBUG")) console.error(`+ tachikoma ${args.join(" ")}`);
      return run(deno, [
        "run",
        "-A",
        "--frozen",
        "--config",
        `${cliRoot}deno.json`,
        `${cliRoot}main.ts`,
        ...args,
      ], { cwd });
    },
    setEnv(vars) {
      Object.assign(env, vars);
    },
    remove: () => Deno.remove(top, { recursive: true }).catch(() => {}),
  };
}

/** The one `tachikoma: …` error line of a failed command (asserts there is exactly one). */
export function errorLine(r: Run): string {
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("tachikoma: "));
  assertEquals(lines.length, 1, `one error line expected:\n${r.stderr}`);
  return lines[0];
}
