/**
 * One running sandbox (`tachikoma-myapp-feat`, branch `feat` of repo `myapp`) in a file-backed
 * memory world and the state, and the real CLI run in its worktree: the fixture of the
 * command tests that need a sandbox to exist (checkpoint, network).
 *
 * @module
 */
import { type CliResult, runCli } from "../cli/helpers.ts";
import { bannerServer, gitIn, makeRepo } from "../core/helpers.ts";

/** The sandbox's name. */
export const NAME = "tachikoma-myapp-feat";

/** The fixture: the CLI in the sandbox's worktree, the world file, the config directory. */
export interface OneSandboxWorld extends AsyncDisposable {
  /** Runs the real CLI in the worktree with the fixture's environment. */
  cli: (...args: string[]) => Promise<CliResult>;
  /** The memory world's file. */
  worldPath: string;
  /** The config directory (state, logs). */
  configDir: string;
}

/** The world with one running sandbox; `capabilities` override the memory engine's. */
export async function oneSandboxWorld(
  capabilities: Record<string, boolean> = {},
): Promise<OneSandboxWorld> {
  const repo = await makeRepo("myapp");
  const worktree = `${repo.dir}/myapp-feat`;
  await gitIn(repo.root, "worktree", "add", "-q", "-b", "feat", worktree);
  const banner = bannerServer();
  const home = `${repo.dir}/home`;
  const configDir = `${home}/.config/tachikoma`;
  await Deno.mkdir(configDir, { recursive: true });
  const worldPath = `${configDir}/world.json`;
  await Deno.writeTextFile(
    worldPath,
    JSON.stringify({
      capabilities,
      defaults: { ssh: { host: "127.0.0.1", port: banner.port } },
      sandboxes: {
        [NAME]: { state: "running", address_at: 0, created_at: "2026-05-01T12:00:00.000Z" },
      },
    }),
  );
  const stamp = "2026-05-01T12:00:00.000Z";
  await Deno.writeTextFile(
    `${configDir}/state.json`,
    JSON.stringify({
      version: 2,
      vms: [{
        name: NAME,
        repo: "myapp",
        branch: "feat",
        worktree_path: worktree,
        created_at: stamp,
        last_used: stamp,
        status: "running",
        ip: "127.0.0.1",
        backend: "memory",
        repo_root: repo.root,
      }],
    }),
  );
  const env = {
    HOME: home,
    TACHIKOMA_CONFIG_DIR: configDir,
    TACHIKOMA_TEST_MEMORY_WORLD: worldPath,
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    NO_COLOR: "1",
  };
  const cli = (...args: string[]) => runCli(args, { env, cwd: worktree });
  return {
    cli,
    worldPath,
    configDir,
    async [Symbol.asyncDispose]() {
      await banner[Symbol.asyncDispose]();
      await repo[Symbol.asyncDispose]();
    },
  };
}
