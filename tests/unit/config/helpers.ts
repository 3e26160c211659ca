/**
 * Helpers for config tests: temp trees with a fake home, config dir and git repo, an
 * injectable environment, a capturing logger and a command context.
 *
 * @module
 */
import { noServices } from "../../testing/app_services.ts";
import type { CommandContext } from "../../../src/commands/context.ts";
import { Output } from "../../../src/cli/output.ts";
import { Logger } from "../../../src/lib/log.ts";
import { silentReporter } from "../../../src/lib/progress.ts";
import { loadConfig, type LoadedConfig, type LoadOptions } from "../../../src/config/load.ts";
import type { EnvGetter } from "../../../src/config/paths.ts";
import { trustFiles } from "../../../src/config/trust_ops.ts";

/** A temp world: `home`, `home/.config/tachikoma` (the config dir) and `repo` (git init'ed). */
export interface World {
  root: string;
  home: string;
  configDir: string;
  repo: string;
  /** Writes `text` to `path` (relative to root), creating directories. */
  write(path: string, text: string): string;
  cleanup(): void;
}

/** Creates a temp world. The repo has a real `.git` directory (made with `git init`). */
export function makeWorld(options: { git?: boolean } = {}): World {
  const root = Deno.realPathSync(Deno.makeTempDirSync({ prefix: "tk-config-" }));
  const home = `${root}/home`;
  const configDir = `${home}/.config/tachikoma`;
  const repo = `${root}/repo`;
  Deno.mkdirSync(home, { recursive: true });
  Deno.mkdirSync(repo, { recursive: true });
  if (options.git !== false) git(repo, "init", "-q", "-b", "main");
  return {
    root,
    home,
    configDir,
    repo,
    write(path, text) {
      const full = path.startsWith("/") ? path : `${root}/${path}`;
      Deno.mkdirSync(full.slice(0, full.lastIndexOf("/")), { recursive: true });
      Deno.writeTextFileSync(full, text);
      return full;
    },
    cleanup() {
      Deno.removeSync(root, { recursive: true });
    },
  };
}

/** Runs git in `cwd` (throws on failure). */
export function git(cwd: string, ...args: string[]): string {
  const out = new Deno.Command("git", {
    args,
    cwd,
    env: {
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@t",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@t",
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
    },
  }).outputSync();
  if (!out.success) {
    throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/** An environment getter over a plain record. */
export function envOf(vars: Record<string, string | undefined>): EnvGetter {
  return (name) => vars[name];
}

/** A logger that records lines instead of writing to stderr. */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: new Logger({ level: "debug", sink: (l) => lines.push(l) }), lines };
}

/** Loads the config of `world` with an injected environment (HOME = the world's home). */
export function load(
  world: World,
  vars: Record<string, string | undefined> = {},
  options: Partial<LoadOptions> = {},
): Promise<LoadedConfig & { logged: string[] }> {
  const { logger, lines } = captureLogger();
  return loadConfig({
    cwd: world.repo,
    env: envOf({ HOME: world.home, ...vars }),
    envNames: () => Object.keys(vars),
    os: "linux",
    logger,
    ...options,
  }).then((loaded) => ({ ...loaded, logged: lines }));
}

/** A command context over `world`, capturing stdout. */
export function makeContext(
  world: World,
  options: { json?: boolean; cwd?: string; vars?: Record<string, string | undefined> } = {},
): { ctx: CommandContext; stdout: () => string } {
  const chunks: string[] = [];
  const cwd = options.cwd ?? world.repo;
  const vars = { HOME: world.home, ...options.vars };
  const out = new Output({
    json: options.json ?? false,
    color: false,
    quiet: false,
    write: (t) => chunks.push(t),
    writeErr: () => {},
  });
  const ctx: CommandContext = {
    globals: { json: options.json ?? false, verbose: false, quiet: false, color: false },
    out,
    progress: silentReporter,
    cwd,
    signal: new AbortController().signal,
    config: () =>
      loadConfig({
        cwd,
        env: envOf(vars),
        envNames: () => [],
        os: "linux",
        logger: captureLogger().logger,
      }),
    app: noServices(),
  };
  return { ctx, stdout: () => chunks.join("") };
}

/** Trusts `files` (repo config files of the world's repo) as they are now, like `config trust`. */
export async function trust(world: World, ...files: string[]): Promise<void> {
  await trustFiles({ cwd: world.repo, env: envOf({ HOME: world.home }) }, files);
}
