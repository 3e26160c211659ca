/**
 * CLI-level test fixture: a temp HOME and config dir, a git repo, a memory world file
 * (`TACHIKOMA_TEST_MEMORY_WORLD`) whose sandboxes answer SSH on a loopback banner server, and
 * a runner for `deno run main.ts …` subprocesses.
 *
 * @module
 */
import { type BannerServer, bannerServer, gitIn } from "../core/helpers.ts";
import { type Run, run } from "../../testing/run.ts";

const MAIN = new URL("../../testing/memory_main.ts", import.meta.url).pathname;

/** The CLI's entry point with the memory engine (tests/testing/memory_main.ts). */
export const CLI_MAIN = MAIN;

/** What one CLI run produced. */
export type CliRun = Run;

/** A CLI test world. */
export interface CliWorld extends AsyncDisposable {
  dir: string;
  home: string;
  repo: string;
  worldPath: string;
  configDir: string;
  ssh: BannerServer;
  /** The environment every run gets (tests that start the CLI their own way). */
  env: Record<string, string>;
  /** Runs the CLI in `cwd` (default: the repo). */
  run(
    args: string[],
    options?: { cwd?: string; stdin?: string; env?: Record<string, string> },
  ): Promise<CliRun>;
  /** Starts the CLI with stdin, stdout and stderr piped (the test drives them). */
  spawn(args: string[], options?: { cwd?: string }): Deno.ChildProcess;
  /** Reads the world file. */
  world(): Promise<Record<string, unknown> & { calls?: { method: string }[] }>;
  /** Changes the world file. */
  editWorld(fn: (world: Record<string, unknown>) => void): Promise<void>;
  /** Reads state.json. */
  state(): Promise<{ vms: Record<string, unknown>[] }>;
}

/** Creates the fixture. `world` is merged into the initial world file. */
export async function cliWorld(world: Record<string, unknown> = {}): Promise<CliWorld> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "tk-cli-" }));
  const home = `${dir}/home`;
  const repo = `${dir}/myapp`;
  const configDir = `${home}/.config/tachikoma`;
  const worldPath = `${dir}/world.json`;
  await Deno.mkdir(home);
  await Deno.mkdir(repo);
  await gitIn(repo, "init", "-q", "-b", "main");
  await Deno.writeTextFile(`${repo}/README`, "hi\n");
  await gitIn(repo, "add", "README");
  await gitIn(repo, "commit", "-q", "-m", "init");
  const ssh = bannerServer();
  await Deno.writeTextFile(
    worldPath,
    JSON.stringify({
      defaults: { ssh: { host: "127.0.0.1", port: ssh.port } },
      sandboxes: {},
      ...world,
    }),
  );
  const baseEnv: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: home,
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    TACHIKOMA_CONFIG_DIR: configDir,
    TACHIKOMA_TEST_MEMORY_WORLD: worldPath,
    // The credential proxy is not part of these tests: provisioning injects no credential.
    TACHIKOMA_CREDENTIAL_PROXY: "false",
    // The world's guest (exec "ok") answers nothing: provisioning is dry (tests/testing/).
    TACHIKOMA_TEST_PROVISION: "dry",
    GIT_CONFIG_GLOBAL: Deno.env.get("GIT_CONFIG_GLOBAL") ?? "/dev/null",
    GIT_CONFIG_NOSYSTEM: "1",
    NO_COLOR: "1",
  };
  return {
    dir,
    home,
    repo,
    worldPath,
    configDir,
    ssh,
    env: baseEnv,
    run(args, options = {}) {
      return run(Deno.execPath(), ["run", "-A", "--frozen", MAIN, ...args], {
        cwd: options.cwd ?? repo,
        env: { ...baseEnv, ...options.env },
        stdin: options.stdin,
      });
    },
    spawn(args, options = {}) {
      return new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--frozen", MAIN, ...args],
        cwd: options.cwd ?? repo,
        clearEnv: true,
        env: baseEnv,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    },
    async world() {
      return JSON.parse(await Deno.readTextFile(worldPath));
    },
    async editWorld(fn) {
      const w = JSON.parse(await Deno.readTextFile(worldPath));
      fn(w);
      await Deno.writeTextFile(worldPath, JSON.stringify(w));
    },
    async state() {
      try {
        return JSON.parse(await Deno.readTextFile(`${configDir}/state.json`));
      } catch {
        return { vms: [] };
      }
    },
    async [Symbol.asyncDispose]() {
      await ssh[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
