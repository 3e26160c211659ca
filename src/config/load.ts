/**
 * Loading the layered configuration: built-in defaults < user config
 * (`$TACHIKOMA_CONFIG_DIR` or `$XDG_CONFIG_HOME/tachikoma` or `~/.config/tachikoma`, then
 * `config.toml`; on macOS the old `~/Library/Application Support/tachikoma/config.toml` is
 * read when the new one is absent) < `<repo>/.tachikoma.toml` < `<repo>/.tachikoma.local.toml`
 * < `TACHIKOMA_<KEY>` variables < command-line flags.
 *
 * `<repo>` is the main checkout, never a linked worktree (`repo_files.ts`). Gated keys of a
 * repo file take effect only when that exact content is trusted (`trust_store.ts`, `gate.ts`);
 * otherwise one warning line names the file and the ignored keys, before anything else runs.
 *
 * Startup speed: when no config file has content and no configuration variable is set, the
 * result is built from `defaults.ts` alone. Otherwise the values are checked by hand
 * (`fast_build.ts`, smol-toml for files); zod (`validate.ts`) is imported only when one of them
 * fails those checks or is unknown, to say exactly what is wrong.
 *
 * @module
 */
import { ConfigError } from "../lib/errors.ts";
import { log as defaultLog, type Logger } from "../lib/log.ts";
import { registerSecret } from "../lib/redact.ts";
import { KEY_NAMES, type OsName, setKey } from "./defaults.ts";
import { defaultConfig } from "./default_config.ts";
import { fastBuildConfig } from "./fast_build.ts";
import { misspeltEnvVars, readEnv } from "./env.ts";
import { configDir, type EnvGetter, legacyMacConfigDir, paths } from "./paths.ts";
import { gatedAmong, untrustedWarning } from "./gate.ts";
import { REPO_CONFIG_NAMES, repoConfigPlace } from "./repo_files.ts";
import type { Config } from "./schema.ts";
import {
  isTrusted,
  readTrustStore,
  sha256Hex,
  trustKey,
  type TrustStore,
  TrustStoreError,
} from "./trust_store.ts";
import type { ConfigSource, FileLayer, IgnoredSetting } from "./types.ts";
import { dirname } from "../lib/paths.ts";

export type { ConfigSource, ConfigSourceKind, IgnoredSetting } from "./types.ts";

/** The config files that apply in a directory. */
export interface ConfigFiles {
  /** The tachikoma config/state directory. */
  dir: string;
  /** `<dir>/config.toml`. */
  global: string;
  /** The old macOS file, when it is the one being read (the new one is absent). */
  legacyGlobal: string | null;
  /**
   * `<main checkout>/.tachikoma.toml`, or null outside a repo (and when the main checkout of
   * a linked worktree cannot be told safely: `repoProblem`).
   */
  repo: string | null;
  /** `<main checkout>/.tachikoma.local.toml`, or null like `repo`. */
  local: string | null;
  /** Top of the checkout around cwd (a linked worktree's own top), or null. */
  repoRoot: string | null;
  /** The main checkout (differs from repoRoot in a linked worktree), or null. */
  mainRepoRoot: string | null;
  /** The linked worktree around cwd, whose own config files are never read, or null. */
  worktree: string | null;
  /** Why no repo config file is read although cwd is in a repo, or null. */
  repoProblem: string | null;
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
  /** Warnings already logged (unknown keys, untrusted repo files…). */
  warnings: string[];
  /** Gated values of untrusted repo files: read, shown by `tachikoma config`, never applied. */
  ignored: IgnoredSetting[];
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
  const place = repoConfigPlace(options.cwd, { stateFile: paths(dir).state });
  const root = place.root;
  return {
    dir,
    global,
    legacyGlobal,
    repo: root ? `${root}/${REPO_CONFIG_NAMES[0]}` : null,
    local: root ? `${root}/${REPO_CONFIG_NAMES[1]}` : null,
    repoRoot: place.location?.root ?? null,
    mainRepoRoot: place.via === "state" || place.via === "git_file"
      ? root
      : place.location?.mainRoot ?? null,
    worktree: place.worktree,
    repoProblem: place.problem,
  };
}

/** A config file's bytes, or null when it does not exist; other read errors are ConfigErrors naming `display`. */
export function readIfExists(path: string, display: string): Uint8Array | null {
  try {
    return Deno.readFileSync(path);
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
/** Untrusted-file warnings already logged, per logger: one line per file per command. */
const warnedUntrusted = new WeakMap<Logger, Set<string>>();

/** Logs `message` once per logger. */
function warnOnce(logger: Logger, message: string): void {
  let seen = warnedUntrusted.get(logger);
  if (!seen) warnedUntrusted.set(logger, seen = new Set());
  if (seen.has(message)) return;
  seen.add(message);
  logger.warn(message);
}

/** The trust store, or an empty one (with a warning) when it is broken. */
function trustStoreOrEmpty(dir: string, logger: Logger, warnings: string[]): TrustStore {
  try {
    return readTrustStore(dir);
  } catch (error) {
    if (!(error instanceof TrustStoreError)) throw error;
    const message = `${error.message}; every repo config file counts as untrusted until it is ` +
      "fixed or removed";
    warnings.push(message);
    warnOnce(logger, message);
    return { version: 1, files: {} };
  }
}

/** Loads and merges every layer. Invalid values throw a {@link ConfigError} (exit 2). */
export async function loadConfig(options: LoadOptions): Promise<LoadedConfig> {
  // One read of the process environment (each lookup would be a call into the runtime).
  const snapshot = options.env ? undefined : Deno.env.toObject();
  const env: EnvGetter = options.env ?? ((name) => snapshot![name]);
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

  if (files.repoProblem) {
    const message =
      `cannot tell which main checkout ${display(files.worktree ?? options.cwd)} belongs ` +
      `to (${files.repoProblem}); no repo config file is read`;
    warnings.push(message);
    warnOnce(logger, message);
  }
  if (files.worktree) {
    const own = REPO_CONFIG_NAMES.map((n) => `${files.worktree}/${n}`).filter(exists);
    if (own.length > 0) {
      logger.debug(
        `not reading ${own.map(display).join(", ")}: a worktree's own config files are never ` +
          "read" + (files.repo ? ` (repo config comes from ${display(dirname(files.repo))})` : ""),
      );
    }
  }

  const layers: FileLayer[] = [];
  const candidates: [FileLayer["kind"], string | null][] = [
    ["global", files.legacyGlobal ?? files.global],
    ["repo", files.repo],
    ["local", files.local],
  ];
  let store: TrustStore | null = null;
  for (const [kind, file] of candidates) {
    if (!file) continue;
    const bytes = readIfExists(file, display(file));
    if (bytes === null) continue;
    const text = new TextDecoder().decode(bytes);
    if (!hasSettings(text)) continue;
    if (kind === "global") {
      layers.push({ kind, file, text });
      continue;
    }
    // The hash is of the very bytes that are parsed: no window between checking and using.
    store ??= trustStoreOrEmpty(files.dir, logger, warnings);
    const trusted = isTrusted(store, trustKey(file), await sha256Hex(bytes));
    layers.push({ kind, file, text, trusted });
  }
  const envValues = readEnv(env);
  const names = options.envNames ??
    (snapshot ? () => Object.keys(snapshot) : undefined);
  if (names) toLog.push(...misspeltEnvVars(names()));

  let config: Config;
  let sources: Record<string, ConfigSource>;
  let ignored: IgnoredSetting[] = [];
  if (layers.length === 0 && envValues.length === 0) {
    config = defaultConfig(os);
    sources = Object.fromEntries(KEY_NAMES.map((k) => [k, { kind: "default" }]));
    for (const [key, value] of Object.entries(options.flags ?? {})) {
      if (value === undefined) continue;
      setKey(config as unknown as Record<string, unknown>, key, value);
      sources[key] = { kind: "flag", flag: `--${key.replaceAll("_", "-")}` };
    }
  } else {
    const input = {
      os,
      files: layers,
      env: envValues,
      flags: { ...options.flags },
      home,
      cwd: options.cwd,
      display,
    };
    // zod only when a value needs it (fast_build.ts); its messages say what is wrong.
    const built = await fastBuildConfig(input) ??
      (await import("./validate.ts")).buildConfig(input);
    config = built.config;
    sources = built.sources;
    ignored = built.ignored;
    toLog.push(...built.warnings);
  }
  for (const w of toLog) logger.warn(w);
  warnings.push(...toLog);
  for (const file of new Set(ignored.map((i) => i.file))) {
    const keys = gatedAmong(ignored.filter((i) => i.file === file).map((i) => i.key));
    const message = untrustedWarning(display(file), keys);
    warnings.push(message);
    warnOnce(logger, message);
  }
  registerSecret(config.truenas.api_key);

  return {
    config,
    sources,
    repoRoot: files.repoRoot,
    mainRepoRoot: files.mainRepoRoot,
    files,
    warnings,
    ignored,
  };
}

/** A path for a shell command line in a message: `~/…` kept unquoted when safe. */
function shellPath(path: string): string {
  if (/^[~A-Za-z0-9_./-]+$/.test(path)) return path;
  if (path.startsWith("~/")) return `~/'${path.slice(2).replaceAll("'", `'\\''`)}'`;
  return `'${path.replaceAll("'", `'\\''`)}'`;
}
