/**
 * Loading the layered configuration: built-in defaults < user config
 * (`$TACHIKOMA_CONFIG_DIR` or `$XDG_CONFIG_HOME/tachikoma` or `~/.config/tachikoma`, then
 * `config.toml`; on macOS the old `~/Library/Application Support/tachikoma/config.toml` is
 * read when the new one is absent) < `<repo>/.tachikoma.toml` < `<repo>/.tachikoma.local.toml`
 * < `TACHIKOMA_<KEY>` variables < command-line flags.
 *
 * Startup speed: when no config file has content and no configuration variable is set, the
 * result is built from `defaults.ts` alone; zod and smol-toml (`validate.ts`) are imported
 * only when there is something to validate.
 *
 * @module
 */
import { ConfigError } from "../lib/errors.ts";
import { log as defaultLog, type Logger } from "../lib/log.ts";
import { registerSecret } from "../lib/redact.ts";
import { KEY_NAMES, type OsName, setKey } from "./defaults.ts";
import { defaultConfig } from "./default_config.ts";
import { misspeltEnvVars, readEnv } from "./env.ts";
import { configDir, type EnvGetter, legacyMacConfigDir, paths } from "./paths.ts";
import { findRepo } from "./repo_root.ts";
import type { Config } from "./schema.ts";
import type { ConfigSource, FileLayer } from "./types.ts";

export type { ConfigSource, ConfigSourceKind } from "./types.ts";

/** The config files that apply in a directory. */
export interface ConfigFiles {
  /** The tachikoma config/state directory. */
  dir: string;
  /** `<dir>/config.toml`. */
  global: string;
  /** The old macOS file, when it is the one being read (the new one is absent). */
  legacyGlobal: string | null;
  /** `<repo>/.tachikoma.toml`, or null outside a repo. */
  repo: string | null;
  /** `<repo>/.tachikoma.local.toml`, or null outside a repo. */
  local: string | null;
  /** Top of the checkout around cwd (a linked worktree's own top), or null. */
  repoRoot: string | null;
  /** The main checkout (differs from repoRoot in a linked worktree), or null. */
  mainRepoRoot: string | null;
}

/** The merged configuration and where each value came from. */
export interface LoadedConfig {
  config: Config;
  /** Source of each top-level or `section.key` value. */
  sources: Record<string, ConfigSource>;
  /** Root of the git checkout around cwd (a linked worktree's own top), or null outside a repo. */
  repoRoot: string | null;
  /**
   * The main checkout of that repo: equal to repoRoot except in a linked worktree, where it is
   * the checkout that owns the shared `.git`. Use it as "the repo" (naming, state).
   */
  mainRepoRoot: string | null;
  /** The files that were considered. */
  files: ConfigFiles;
  /** Warnings already logged (unknown keys, committed host commands…). */
  warnings: string[];
}

/** Options for {@link loadConfig}. */
export interface LoadOptions {
  cwd: string;
  /** Environment lookup (default: the process environment). */
  env?: EnvGetter;
  /**
   * Names of the set variables, to warn about misspelt `TACHIKOMA_*` ones (default: the
   * process environment's when `env` is not given, else none).
   */
  envNames?: () => Iterable<string>;
  /** The OS (default: `Deno.build.os`): picks the default backend and the macOS fallback. */
  os?: OsName;
  flags?: Partial<Pick<Config, "backend">>;
  /** Where warnings go (default: the process logger). */
  logger?: Logger;
}

const processEnv: EnvGetter = (name) => Deno.env.get(name);

/** `path` with the home directory shown as `~`. */
export function displayPath(path: string, home: string | undefined): string {
  if (home && home !== "/" && (path === home || path.startsWith(home + "/"))) {
    return "~" + path.slice(home.length);
  }
  return path;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The config files for `cwd` (no reading, no validation: works when a file is broken). */
export function configFiles(
  options: { cwd: string; env?: EnvGetter; os?: OsName },
): ConfigFiles {
  const env = options.env ?? processEnv;
  const os = options.os ?? Deno.build.os;
  let dir: string;
  try {
    dir = configDir(env);
  } catch {
    throw new ConfigError("cannot find the config directory: HOME is not set", {
      hint: "set HOME or TACHIKOMA_CONFIG_DIR",
    });
  }
  const global = paths(dir).config;
  let legacyGlobal: string | null = null;
  if (os === "darwin" && !env("TACHIKOMA_CONFIG_DIR") && env("HOME") && !exists(global)) {
    const legacy = `${legacyMacConfigDir(env)}/config.toml`;
    if (exists(legacy)) legacyGlobal = legacy;
  }
  const repo = findRepo(options.cwd);
  return {
    dir,
    global,
    legacyGlobal,
    repo: repo ? `${repo.root}/.tachikoma.toml` : null,
    local: repo ? `${repo.root}/.tachikoma.local.toml` : null,
    repoRoot: repo?.root ?? null,
    mainRepoRoot: repo?.mainRoot ?? null,
  };
}

/** The file's text, or null when it does not exist. Other read errors are ConfigErrors. */
function readIfExists(path: string, display: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(`${display}: cannot read: ${reason}`);
  }
}

/** True when a file has nothing but blank lines and comments. */
function hasSettings(text: string): boolean {
  return text.split("\n").some((line) => {
    const t = line.trim();
    return t !== "" && !t.startsWith("#");
  });
}

const warnedLegacy = new Set<string>();

/** Loads and merges every layer. Invalid values throw a {@link ConfigError} (exit 2). */
export async function loadConfig(options: LoadOptions): Promise<LoadedConfig> {
  const env = options.env ?? processEnv;
  const os = options.os ?? Deno.build.os;
  const logger = options.logger ?? defaultLog;
  const home = env("HOME");
  const display = (p: string) => displayPath(p, home);
  const files = configFiles({ cwd: options.cwd, env, os });
  const warnings: string[] = [];
  /** Warnings to log now (the legacy-location one is logged once per process). */
  const toLog: string[] = [];

  if (files.legacyGlobal) {
    const message = `reading ${display(files.legacyGlobal)}, the old macOS location; tachikoma ` +
      `now reads ${display(files.global)}. Move it: mkdir -p ${
        shellPath(display(files.dir))
      } && mv ${shellPath(display(files.legacyGlobal))} ${shellPath(display(files.global))}`;
    warnings.push(message);
    if (!warnedLegacy.has(files.legacyGlobal)) {
      warnedLegacy.add(files.legacyGlobal);
      logger.warn(message);
    }
  }

  const layers: FileLayer[] = [];
  const candidates: [FileLayer["kind"], string | null][] = [
    ["global", files.legacyGlobal ?? files.global],
    ["repo", files.repo],
    ["local", files.local],
  ];
  for (const [kind, file] of candidates) {
    if (!file) continue;
    const text = readIfExists(file, display(file));
    if (text !== null && hasSettings(text)) layers.push({ kind, file, text });
  }
  const envValues = readEnv(env);
  const names = options.envNames ??
    (options.env ? undefined : () => Object.keys(Deno.env.toObject()));
  if (names) toLog.push(...misspeltEnvVars(names()));

  let config: Config;
  let sources: Record<string, ConfigSource>;
  if (layers.length === 0 && envValues.length === 0) {
    config = defaultConfig(os);
    sources = Object.fromEntries(KEY_NAMES.map((k) => [k, { kind: "default" }]));
    for (const [key, value] of Object.entries(options.flags ?? {})) {
      if (value === undefined) continue;
      setKey(config as unknown as Record<string, unknown>, key, value);
      sources[key] = { kind: "flag", flag: `--${key.replaceAll("_", "-")}` };
    }
  } else {
    const { buildConfig } = await import("./validate.ts");
    const built = buildConfig({
      os,
      files: layers,
      env: envValues,
      flags: { ...options.flags },
      home,
      cwd: options.cwd,
      display,
    });
    config = built.config;
    sources = built.sources;
    toLog.push(...built.warnings);
  }
  for (const w of toLog) logger.warn(w);
  warnings.push(...toLog);
  registerSecret(config.truenas.api_key);

  return {
    config,
    sources,
    repoRoot: files.repoRoot,
    mainRepoRoot: files.mainRepoRoot,
    files,
    warnings,
  };
}

/** A path for a shell command line in a message: `~/…` kept unquoted when safe. */
function shellPath(path: string): string {
  if (/^[~A-Za-z0-9_./-]+$/.test(path)) return path;
  if (path.startsWith("~/")) return `~/'${path.slice(2).replaceAll("'", `'\\''`)}'`;
  return `'${path.replaceAll("'", `'\\''`)}'`;
}
