/**
 * The world of a CLI test on the Incus lab: a temp directory (not under /tmp: the guest cleans
 * its /tmp at boot, where provisioning puts the link that makes the worktree's `.git` file, an
 * absolute host path, resolve) holding a git repo with one commit, a home and a configuration
 * directory; the environment the CLI (main.ts as a subprocess) runs with, pointed at the lab;
 * and a backend on the lab's socket to look at and clean up what the test made.
 *
 * `await using world = await openLabWorld({ prefix: "ports" })`: disposing it stops the
 * configuration's proxy, deletes the sandboxes the world was told about ({@link LabWorld.own},
 * {@link LabWorld.spawn}), closes the backend and removes the directory.
 */
import { IncusBackend, IncusClient } from "../../src/backends/incus/mod.ts";
import { type LabEnv, labEnv } from "./lab.ts";
import { freePort } from "../testing/free_port.ts";
import { ok, type Run, run } from "../testing/run.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Options of {@link openLabWorld}. */
export interface LabWorldOptions {
  /** Names the temp directory (`tk-<prefix>-…`) and the repo (`tkt-<prefix>-<id>`). */
  prefix: string;
  /** Added to (or replacing) the CLI's environment. */
  env?: Record<string, string>;
  /** The configuration file (`config.toml`), when the test needs one. */
  config?: string;
}

/** A lab test's directories, CLI environment and backend; see the module doc. */
export interface LabWorld extends AsyncDisposable {
  lab: LabEnv;
  /** The temp directory holding everything else. */
  top: string;
  /** Six lowercase characters unique to this world (branch and base names use it). */
  id: string;
  /** The git repo (branch `main`, one commit: README.md). */
  repo: string;
  home: string;
  /** `TACHIKOMA_CONFIG_DIR`. */
  cfg: string;
  /** The CLI's whole environment. */
  env: Record<string, string>;
  client: IncusClient;
  backend: IncusBackend;
  /** The command line of the CLI from source (`deno run … main.ts`), for a terminal to run. */
  cliArgv: string[];
  /** Runs `tachikoma <args>` in `cwd` (default: the repo). */
  cli(args: string[], cwd?: string, stdin?: string): Promise<Run>;
  /** `spawn <args> --no-attach --json` in the repo: the document; the sandbox is owned. */
  spawn(args: string[]): Promise<SpawnDoc>;
  /** Deletes `name` when the world is disposed. */
  own(name: string): void;
}

/** The part of `spawn --json` the lab tests read. */
export interface SpawnDoc {
  name: string;
  action: string;
  status: string;
  branch: string;
  ip: string;
  worktree_path: string;
  provisioning: { steps: string[] };
  [key: string]: unknown;
}

/** Makes the world (the lab must be up: call it from a test that `labIgnored()` guards). */
export async function openLabWorld(options: LabWorldOptions): Promise<LabWorld> {
  const lab = labEnv();
  if (!lab) throw new Error("the Incus lab is not up");
  const top = await Deno.makeTempDir({ dir: "/var/tmp", prefix: `tk-${options.prefix}-` });
  const id = top.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, "x");
  const repo = `${top}/tkt-${options.prefix}-${id}`;
  const home = `${top}/home`;
  const cfg = `${top}/config`;
  await Deno.mkdir(repo, { recursive: true });
  await Deno.mkdir(home);
  await Deno.mkdir(cfg);
  if (options.config !== undefined) await Deno.writeTextFile(`${cfg}/config.toml`, options.config);
  const realHome = Deno.env.get("HOME") ?? "/root";
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: home,
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${realHome}/.cache/deno`,
    TACHIKOMA_CONFIG_DIR: cfg,
    TACHIKOMA_BASE_IMAGE: lab.image,
    TACHIKOMA_INCUS_SOCKET: lab.socket,
    TACHIKOMA_CREDENTIAL_PROXY: "false",
    // each world its own proxy port: never another test's (or a user's) proxy on the default one
    TACHIKOMA_CREDENTIAL_PROXY_PORT: String(freePort()),
    TACHIKOMA_CLAUDE_INSTALL: "skip",
    TACHIKOMA_VM_CPUS: "1",
    TACHIKOMA_VM_MEMORY: "1024",
    NO_COLOR: "1",
    GIT_AUTHOR_NAME: "t",
    GIT_AUTHOR_EMAIL: "t@example.invalid",
    GIT_COMMITTER_NAME: "t",
    GIT_COMMITTER_EMAIL: "t@example.invalid",
    ...options.env,
  };
  const cliArgv = [
    Deno.execPath(),
    "run",
    "-A",
    "--frozen",
    "--config",
    `${ROOT}deno.json`,
    `${ROOT}main.ts`,
  ];
  const cli = (args: string[], cwd = repo, stdin?: string) => {
    if (Deno.env.get("TK_E2E_DEBUG")) console.error(`+ tachikoma ${args.join(" ")} (in ${cwd})`);
    return run(cliArgv[0], [...cliArgv.slice(1), ...args], { cwd, env, stdin });
  };
  const client = await IncusClient.open({ socket: lab.socket });
  const backend = new IncusBackend(client, {
    endpoint: { socket: lab.socket },
    cpus: 1,
    memoryMb: 1024,
    sshUser: "admin",
    sshPort: 22,
  });
  const owned = new Set<string>();
  const dispose = async () => {
    await cli(["proxy", "stop"]).catch(() => {});
    for (const name of owned) await backend.delete(name).catch(() => {});
    await backend.close();
    await Deno.remove(top, { recursive: true }).catch(() => {});
  };
  try {
    const git = async (args: string[]) =>
      ok(await run("git", args, { cwd: repo, env }), `git ${args[0]}`);
    await git(["init", "-q", "-b", "main"]);
    await Deno.writeTextFile(`${repo}/README.md`, "hello\n");
    await git(["add", "."]);
    await git(["commit", "-qm", "init"]);
  } catch (error) {
    await dispose();
    throw error;
  }
  return {
    lab,
    top,
    id,
    repo,
    home,
    cfg,
    env,
    client,
    backend,
    cliArgv,
    cli,
    async spawn(args) {
      const doc = JSON.parse(
        ok(await cli(["spawn", ...args, "--no-attach", "--json"]), `spawn ${args.join(" ")}`)
          .stdout,
      ) as SpawnDoc;
      owned.add(doc.name);
      return doc;
    },
    own: (name) => void owned.add(name),
    [Symbol.asyncDispose]: dispose,
  };
}
