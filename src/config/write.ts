/**
 * Changing config files for `tachikoma config set` and `config edit`, and the file list of
 * `config path`. A set changes one key in place (comments, order and other sections kept),
 * validated first and written atomically under a lock; an edit runs the user's editor and
 * validates the result. A repo file that was trusted before tachikoma's edit stays trusted.
 *
 * @module
 */
import { ConfigError, RuntimeError, UsageError } from "../lib/errors.ts";
import { withFileLock } from "../lib/file_lock.ts";
import { registerSecret } from "../lib/redact.ts";
import { writeTextAtomic } from "./atomic_write.ts";
import { isSection, KEY_NAMES, keyPath, KEYS, type OsName } from "./defaults.ts";
import { formatSource, shownValue } from "./display.ts";
import { gatedAmong, isGated, onePath } from "./gate.ts";
import {
  type ConfigFiles,
  configFiles,
  displayPath,
  type LoadedConfig,
  readIfExists,
} from "./load.ts";
import type { EnvGetter } from "./paths.ts";
import { suggestionSuffix } from "./suggest.ts";
import { keepTrust } from "./trust_ops.ts";

/** Which file a change goes to. */
export type Scope = "global" | "repo" | "local";

/** Where: the directory and environment a change is made from. */
export interface WriteContext {
  cwd: string;
  env: EnvGetter;
  os?: OsName;
}

/** What {@link setValue} did. */
export interface SetResult {
  key: string;
  /** The parsed, typed value (secrets masked). */
  value: unknown;
  /** The value as TOML (secrets masked). */
  toml: string;
  file: string;
  scope: Scope;
  /** Repo files: whether the file is trusted after the change (null for the user config). */
  trusted: boolean | null;
  /** Things the user should know (already worded; the caller logs them). */
  warnings: string[];
}

/** What {@link editFile} did. */
export interface EditResult {
  file: string;
  scope: Scope;
  valid: true;
  warnings: string[];
  /** Repo files: whether the file is trusted after the edit (null for the user config). */
  trusted: boolean | null;
}

/** The unknown-key error, with a did-you-mean. */
export function unknownKey(key: string): UsageError {
  return new UsageError(`unknown config key ${key}${suggestionSuffix(key, KEY_NAMES)}`, {
    hint: "`tachikoma config` lists every key",
  });
}

/** The one scope of `--global`/`--repo`/`--local` (default global); two is a usage error. */
export function pickScope(opts: { global?: boolean; repo?: boolean; local?: boolean }): Scope {
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
    if (files.repoProblem) {
      throw new UsageError(
        `--${scope}: cannot tell which main checkout this worktree belongs to ` +
          `(${files.repoProblem})`,
        { hint: "run it in the main checkout" },
      );
    }
    throw new UsageError(`--${scope} needs a git repository, and this directory is not in one`, {
      hint: "run it inside the repo, or use --global",
    });
  }
  return { file, mode: scope === "repo" ? 0o644 : 0o600 };
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

/** The note for a repo file that stays untrusted while it sets gated keys. */
function untrustedNote(where: string, gated: string[]): string {
  return `${where} is not trusted: ${gated.join(", ")} from it take${
    gated.length > 1 ? "" : "s"
  } effect only once you trust it (review the file, then run \`tachikoma config trust\`)`;
}

/**
 * `config set KEY VALUE`: validates the value against the schema, then changes that one key in
 * the scope's file (comments, order and other sections kept; the file and section are created
 * when missing) and writes it atomically — all under `<config dir>/locks/config.lock`, so
 * concurrent sets never lose an update.
 */
export async function setValue(
  ctx: WriteContext,
  input: { key: string; value: string; scope: Scope },
): Promise<SetResult> {
  const { key, value, scope } = input;
  if (isSection(key)) {
    throw new UsageError(
      `${key} is a section; set one of its keys, e.g. ${
        KEY_NAMES.find((k) => k.startsWith(`${key}.`))
      }`,
    );
  }
  if (!Object.hasOwn(KEYS, key)) throw unknownKey(key);
  const home = ctx.env("HOME");
  const files = configFiles({ cwd: ctx.cwd, env: ctx.env, os: ctx.os });
  const { file, mode } = scopeFile(files, scope);
  const where = onePath(displayPath(file, home));

  const v = await import("./validate.ts");
  const { setTomlValue, tomlValue } = await import("./toml_edit.ts");
  const parsedValue = v.parseTextValue(key, value, key);
  if (KEYS[key].secret && typeof parsedValue === "string") registerSecret(parsedValue);

  const warnings: string[] = [];
  const trusted = await withFileLock(`${files.dir}/locks/config.lock`, async () => {
    const beforeBytes = readIfExists(file, onePath(file));
    const before = beforeBytes === null ? "" : new TextDecoder().decode(beforeBytes);
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
    if (scope === "global") return null;
    return await keepTrust(files.dir, {
      file,
      before: beforeBytes,
      after: new TextEncoder().encode(after),
    });
  });

  if (scope === "repo" && KEYS[key].secret) {
    warnings.push(
      `${where} is committed to the repo and now holds ${key}; prefer --local or --global`,
    );
  }
  if (scope === "repo" && isGated(key)) {
    warnings.push(
      `${where} is committed: whoever clones the repo gets this ${key}, but it has no effect ` +
        "for them until they trust the file",
    );
  }
  if (trusted === false && isGated(key)) warnings.push(untrustedNote(where, [key]));
  if (files.legacyGlobal && scope === "global") {
    warnings.push(`${where} is the old macOS location; see the warning above on how to move it`);
  }
  const shown = shownValue(key, parsedValue);
  return { key, value: shown, toml: tomlValue(shown), file, scope, trusted, warnings };
}

/**
 * The warning when a later layer hides the value just written to `file` (null when it is in
 * effect, or when it is an untrusted file's gated value: that has its own note).
 */
export function overrideWarning(
  loaded: LoadedConfig,
  written: { key: string; file: string; home: string | undefined },
): string | null {
  const { key, file, home } = written;
  const source = loaded.sources[key];
  if (!source || source.file === file) return null;
  if (loaded.ignored.some((i) => i.file === file && i.key === key)) return null;
  return `${key} is overridden by ${formatSource(source, home)}, so the new value is not in ` +
    "effect here";
}

/** Runs the editor on a file; resolves to its exit status. */
export type EditorRunner = (editor: string, file: string) => Promise<Deno.CommandStatus>;

/** The real editor: through `sh` so that `EDITOR="code --wait"` works; the file is `"$1"`. */
export async function runEditor(editor: string, file: string): Promise<Deno.CommandStatus> {
  return await new Deno.Command("sh", {
    args: ["-c", `${editor} "$1"`, "sh", file],
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).output();
}

/**
 * `config edit`: opens the scope's file in `$VISUAL`, else `$EDITOR`, else `vi` (creating the
 * directory and an empty file when missing), then validates it. A repo file that was trusted
 * before the edit (or new) is trusted after it.
 */
export async function editFile(
  ctx: WriteContext,
  scope: Scope,
  editorRunner: EditorRunner = runEditor,
): Promise<EditResult> {
  const home = ctx.env("HOME");
  const files = configFiles({ cwd: ctx.cwd, env: ctx.env, os: ctx.os });
  const { file, mode } = scopeFile(files, scope);
  const where = onePath(displayPath(file, home));
  const dir = file.slice(0, file.lastIndexOf("/")) || "/";
  Deno.mkdirSync(dir, { recursive: true, mode: scope === "global" ? 0o700 : 0o755 });
  try {
    Deno.writeTextFileSync(file, "", { createNew: true, mode });
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
  const before = readIfExists(file, onePath(file));

  const editor = ctx.env("VISUAL") || ctx.env("EDITOR") || "vi";
  let status: Deno.CommandStatus;
  try {
    status = await editorRunner(editor, file);
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

  const after = readIfExists(file, onePath(file)) ?? new Uint8Array();
  const v = await import("./validate.ts");
  let layer: { values: Map<string, unknown>; warnings: string[] };
  try {
    layer = v.validateFileText(new TextDecoder().decode(after), where);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new ConfigError(error.message, { hint: "run `tachikoma config edit` again to fix it" });
    }
    throw error;
  }
  const warnings = [...layer.warnings];
  let trusted: boolean | null = null;
  if (scope !== "global") {
    trusted = await keepTrust(files.dir, { file, before, after });
    const gated = gatedAmong(layer.values.keys());
    if (!trusted && gated.length > 0) warnings.push(untrustedNote(where, gated));
  }
  return { file, scope, valid: true, warnings, trusted };
}

/** One file of `config path`. */
export interface PathEntry {
  path: string;
  exists: boolean;
}

/** What `config path` shows. */
export interface ConfigPaths {
  dir: string;
  global: PathEntry;
  legacy_global: PathEntry | null;
  repo: PathEntry | null;
  local: PathEntry | null;
  repo_root: string | null;
  main_repo_root: string | null;
}

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** The config files for a directory and whether each exists. */
export function configPaths(ctx: WriteContext): ConfigPaths {
  const files = configFiles({ cwd: ctx.cwd, env: ctx.env, os: ctx.os });
  const entry = (p: string | null) => p === null ? null : { path: p, exists: exists(p) };
  return {
    dir: files.dir,
    global: entry(files.global)!,
    legacy_global: entry(files.legacyGlobal),
    repo: entry(files.repo),
    local: entry(files.local),
    repo_root: files.repoRoot,
    main_repo_root: files.mainRepoRoot,
  };
}
