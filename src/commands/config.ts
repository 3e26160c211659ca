/**
 * `tachikoma config`: show the merged configuration with each value's source, `get`, `set`
 * (edits one TOML file, keeping the rest of it), `edit` ($VISUAL / $EDITOR) and `path`.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { renderTable } from "../lib/table.ts";
import { ConfigError, RuntimeError, UsageError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { registerSecret } from "../lib/redact.ts";
import {
  type ConfigFiles,
  configFiles,
  type ConfigSource,
  displayPath,
  getKey,
  KEY_NAMES,
  KEYS,
  type LoadedConfig,
} from "../config/mod.ts";
import { isSection, keyPath, type OsName } from "../config/defaults.ts";
import type { EnvGetter } from "../config/paths.ts";
import { suggestionSuffix } from "../config/suggest.ts";
import { writeTextAtomic } from "../config/atomic_write.ts";
import { withFileLock } from "../state/lock.ts";

/** What is shown instead of a secret. */
export const SECRET_MASK = "[REDACTED]";

/** Injectable environment for tests (default: the process's). */
export interface ConfigCommandDeps {
  env?: EnvGetter;
  os?: OsName;
}

type Scope = "global" | "repo" | "local";

const processEnv: EnvGetter = (name) => Deno.env.get(name);

/** A value as shown to users (secrets masked). */
function shown(key: string, value: unknown): unknown {
  if (value !== undefined && KEYS[key]?.secret) return SECRET_MASK;
  return value;
}

/** The configuration with secrets masked. */
function redactedConfig(loaded: LoadedConfig): Record<string, unknown> {
  const copy = structuredClone(loaded.config) as unknown as Record<string, Record<string, unknown>>;
  for (const key of KEY_NAMES) {
    if (!KEYS[key].secret) continue;
    const [a, b] = keyPath(key);
    if (b === undefined) {
      if (copy[a] !== undefined) copy[a] = SECRET_MASK as never;
    } else if (copy[a]?.[b] !== undefined) copy[a][b] = SECRET_MASK;
  }
  return copy;
}

function formatValue(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") {
    return [...value].some((c) => c < " " || c === "\x7f") ? JSON.stringify(value) : value;
  }
  if (Array.isArray(value)) return JSON.stringify(value);
  return String(value);
}

function formatSource(source: ConfigSource | undefined, home: string | undefined): string {
  if (!source) return "default";
  switch (source.kind) {
    case "global":
    case "repo":
    case "local":
      return source.file ? `${source.kind} ${displayPath(source.file, home)}` : source.kind;
    case "env":
      return `env ${source.variable ?? ""}`.trim();
    case "flag":
      return `flag ${source.flag ?? ""}`.trim();
    default:
      return source.kind;
  }
}

function table(loaded: LoadedConfig, keys: readonly string[]): string {
  const home = Deno.env.get("HOME");
  return renderTable(
    [
      { header: "KEY", value: (k: string) => k },
      { header: "VALUE", value: (k: string) => formatValue(shown(k, getKey(loaded.config, k))) },
      { header: "SOURCE", value: (k: string) => formatSource(loaded.sources[k], home) },
    ],
    [...keys],
  );
}

/** `tachikoma config`: the merged configuration with each value's source. */
export async function show(ctx: CommandContext): Promise<void> {
  const loaded = await ctx.config();
  ctx.out.result(
    { config: redactedConfig(loaded), sources: loaded.sources },
    () => table(loaded, KEY_NAMES),
  );
}

function unknownKey(key: string): UsageError {
  return new UsageError(`unknown config key ${key}${suggestionSuffix(key, KEY_NAMES)}`, {
    hint: "`tachikoma config` lists every key",
  });
}

/** `tachikoma config get KEY`: one value (`vm_cpus`, `incus.socket`) or a whole section. */
export async function get(ctx: CommandContext, key: string): Promise<void> {
  if (isSection(key)) {
    const loaded = await ctx.config();
    const keys = KEY_NAMES.filter((k) => k.startsWith(`${key}.`));
    const value = redactedConfig(loaded)[key];
    const sources = Object.fromEntries(keys.map((k) => [k, loaded.sources[k]]));
    ctx.out.result({ key, value, sources }, () => table(loaded, keys));
    return;
  }
  if (!Object.hasOwn(KEYS, key)) throw unknownKey(key);
  const loaded = await ctx.config();
  const value = shown(key, getKey(loaded.config, key));
  ctx.out.result(
    { key, value: value ?? null, source: loaded.sources[key] ?? { kind: "default" } },
    () => formatValue(value),
  );
}

function pickScope(opts: { global?: boolean; repo?: boolean; local?: boolean }): Scope {
  const chosen = (["global", "repo", "local"] as const).filter((s) => opts[s]);
  if (chosen.length > 1) {
    throw new UsageError(`use only one of ${chosen.map((s) => `--${s}`).join(", ")}`);
  }
  return chosen[0] ?? "global";
}

/** The file a scope writes to, with the mode a new one gets. */
function scopeFile(files: ConfigFiles, scope: Scope): { file: string; mode: number } {
  if (scope === "global") return { file: files.legacyGlobal ?? files.global, mode: 0o600 };
  const file = scope === "repo" ? files.repo : files.local;
  if (!file) {
    throw new UsageError(`--${scope} needs a git repository, and this directory is not in one`, {
      hint: "run it inside the repo, or use --global",
    });
  }
  return { file, mode: scope === "repo" ? 0o644 : 0o600 };
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw new ConfigError(
      `${path}: cannot read: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/**
 * `tachikoma config set KEY VALUE [--global|--repo|--local]`: validates the value against the
 * schema, then changes that one key in the TOML file (comments, order and other sections
 * kept; the file and section are created when missing) and writes it atomically.
 */
export async function set(
  ctx: CommandContext,
  key: string,
  value: string,
  opts: { global?: boolean; repo?: boolean; local?: boolean },
  deps: ConfigCommandDeps = {},
): Promise<void> {
  const scope = pickScope(opts);
  if (isSection(key)) {
    throw new UsageError(
      `${key} is a section; set one of its keys, e.g. ${
        KEY_NAMES.find((k) => k.startsWith(`${key}.`))
      }`,
    );
  }
  if (!Object.hasOwn(KEYS, key)) throw unknownKey(key);
  const env = deps.env ?? processEnv;
  const home = env("HOME");
  const files = configFiles({ cwd: ctx.cwd, env, os: deps.os });
  const { file, mode } = scopeFile(files, scope);
  const where = displayPath(file, home);

  const v = await import("../config/validate.ts");
  const { setTomlValue, tomlValue } = await import("../config/toml_edit.ts");
  const parsedValue = v.parseTextValue(key, value, key);
  if (KEYS[key].secret && typeof parsedValue === "string") registerSecret(parsedValue);

  // Read → edit → write under one lock, so concurrent `config set`s never lose an update.
  await withFileLock(`${files.dir}/locks/config.lock`, () => {
    const before = readText(file);
    const oldTable = before.trim() === "" ? {} : v.parseToml(before, where);
    const after = setTomlValue(before, keyPath(key), tomlValue(parsedValue));
    const newTable = v.parseToml(after, where);
    const expected = structuredClone(oldTable);
    setKeyDeep(expected, keyPath(key), parsedValue);
    if (!sameJson(expected, newTable)) {
      throw new RuntimeError(
        "config_edit",
        `could not change ${key} in ${where} without disturbing the rest of it; the file is unchanged`,
        { hint: "edit it with `tachikoma config edit`" },
      );
    }
    writeTextAtomic(file, after, { mode, dirMode: scope === "global" ? 0o700 : 0o755 });
    return Promise.resolve();
  });

  if (scope === "repo" && KEYS[key].secret) {
    log.warn(`${where} is committed to the repo and now holds ${key}; prefer --local or --global`);
  }
  if (scope === "repo") {
    for (const w of v.committedHostCommandWarnings(new Map([[key, parsedValue]]), where)) {
      log.warn(w);
    }
  }
  if (files.legacyGlobal && scope === "global") {
    log.warn(`${where} is the old macOS location; see the warning above on how to move it`);
  }
  await warnIfOverridden(ctx, key, file);

  const result = { key, value: shown(key, parsedValue), file, scope };
  ctx.out.result(result, () => `set ${key} = ${tomlValue(shown(key, parsedValue))} in ${where}`);
}

function setKeyDeep(target: Record<string, unknown>, path: string[], value: unknown): void {
  if (path.length === 1) {
    target[path[0]] = value;
    return;
  }
  const inner = target[path[0]];
  if (inner === null || typeof inner !== "object" || Array.isArray(inner)) {
    target[path[0]] = { [path[1]]: value };
  } else {
    (inner as Record<string, unknown>)[path[1]] = value;
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  const norm = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(norm);
    if (v instanceof Date) return v.toISOString();
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.entries(v).sort(([x], [y]) => x < y ? -1 : x > y ? 1 : 0).map((
          [k, x],
        ) => [k, norm(x)]),
      );
    }
    return typeof v === "bigint" ? String(v) : v;
  };
  return JSON.stringify(norm(a)) === JSON.stringify(norm(b));
}

/** Tells the user when a later layer hides the value just written. */
async function warnIfOverridden(ctx: CommandContext, key: string, file: string): Promise<void> {
  let loaded: LoadedConfig;
  try {
    loaded = await ctx.config();
  } catch {
    return; // another layer is broken; loading will say so on the next command
  }
  const source = loaded.sources[key];
  if (source && source.file !== file) {
    log.warn(
      `${key} is overridden by ${formatSource(source, Deno.env.get("HOME"))}, so the new value ` +
        `is not in effect here`,
    );
  }
}

/**
 * `tachikoma config edit [--repo|--local]`: opens the file in `$VISUAL`, else `$EDITOR`, else
 * `vi` (creating the directory and an empty file when missing), then validates it.
 */
export async function edit(
  ctx: CommandContext,
  opts: { repo?: boolean; local?: boolean },
  deps: ConfigCommandDeps = {},
): Promise<void> {
  const scope = pickScope({ repo: opts.repo, local: opts.local });
  const env = deps.env ?? processEnv;
  const home = env("HOME");
  const files = configFiles({ cwd: ctx.cwd, env, os: deps.os });
  const { file, mode } = scopeFile(files, scope);
  const where = displayPath(file, home);
  const dir = file.slice(0, file.lastIndexOf("/")) || "/";
  Deno.mkdirSync(dir, { recursive: true, mode: scope === "global" ? 0o700 : 0o755 });
  try {
    Deno.writeTextFileSync(file, "", { createNew: true, mode });
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }

  const editor = env("VISUAL") || env("EDITOR") || "vi";
  let status: Deno.CommandStatus;
  try {
    // Through sh so that EDITOR="code --wait" works; the file name travels as "$1".
    status = await new Deno.Command("sh", {
      args: ["-c", `${editor} "$1"`, "sh", file],
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).output();
  } catch (error) {
    throw new RuntimeError(
      "editor_failed",
      `cannot start the editor ${editor}: ${error instanceof Error ? error.message : error}`,
    );
  }
  if (!status.success) {
    throw new RuntimeError(
      "editor_failed",
      `the editor ${editor} exited with status ${status.code}; ${where} was not checked`,
    );
  }

  const text = readText(file);
  const v = await import("../config/validate.ts");
  let warnings: string[];
  try {
    const layer = v.validateFileText(text, where);
    warnings = layer.warnings;
    if (scope === "repo") warnings.push(...v.committedHostCommandWarnings(layer.values, where));
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new ConfigError(error.message, { hint: "run `tachikoma config edit` again to fix it" });
    }
    throw error;
  }
  for (const w of warnings) log.warn(w);
  ctx.out.result({ file, scope, valid: true, warnings }, () => `${where} is valid`);
}

/** `tachikoma config path`: the config files and whether each exists. */
export function path(ctx: CommandContext, deps: ConfigCommandDeps = {}): Promise<void> {
  const env = deps.env ?? processEnv;
  const home = env("HOME");
  const files = configFiles({ cwd: ctx.cwd, env, os: deps.os });
  const entry = (p: string | null) => p === null ? null : { path: p, exists: exists(p) };
  const data = {
    dir: files.dir,
    global: entry(files.global),
    legacy_global: entry(files.legacyGlobal),
    repo: entry(files.repo),
    local: entry(files.local),
    repo_root: files.repoRoot,
    main_repo_root: files.mainRepoRoot,
  };
  const rows: [string, { path: string; exists: boolean } | null][] = [
    ["global", data.global],
    ...(data.legacy_global ? [["legacy", data.legacy_global] as [string, typeof data.global]] : []),
    ["repo", data.repo],
    ["local", data.local],
  ];
  ctx.out.result(data, () =>
    renderTable(
      [
        { header: "SCOPE", value: (r: typeof rows[number]) => r[0] },
        { header: "PATH", value: (r) => r[1] ? displayPath(r[1].path, home) : undefined },
        { header: "EXISTS", value: (r) => r[1] ? (r[1].exists ? "yes" : "no") : undefined },
      ],
      rows,
    ));
  return Promise.resolve();
}

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}
