/**
 * `tachikoma config`: show the merged configuration with each value's source, `get`, `set`,
 * `edit`, `path` and `trust`. Parse → call (`src/config/`) → print.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { renderTable } from "../lib/table.ts";
import { UsageError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { displayPath, getKey, KEY_NAMES, KEYS } from "../config/mod.ts";
import { isSection, type OsName } from "../config/defaults.ts";
import type { EnvGetter } from "../config/paths.ts";
import {
  configTable,
  formatValue,
  ignoredJson,
  redactedConfig,
  shownValue,
} from "../config/display.ts";
import { onePath } from "../config/gate.ts";
import {
  configPaths,
  editFile,
  overrideWarning,
  pickScope,
  setValue,
  unknownKey,
} from "../config/write.ts";
import { listTrust, revokeTrust, trustFiles } from "../config/trust_ops.ts";

export { SECRET_MASK } from "../config/display.ts";

/** Injectable environment for tests (default: the process's). */
export interface ConfigCommandDeps {
  env?: EnvGetter;
  os?: OsName;
}

const processEnv: EnvGetter = (name) => Deno.env.get(name);

function where(deps: ConfigCommandDeps, ctx: CommandContext) {
  return { cwd: ctx.cwd, env: deps.env ?? processEnv, os: deps.os };
}

/** `tachikoma config`: the merged configuration with each value's source. */
export async function show(ctx: CommandContext): Promise<void> {
  const loaded = await ctx.config();
  ctx.out.result(
    {
      config: redactedConfig(loaded),
      sources: loaded.sources,
      ignored: loaded.ignored.map(ignoredJson),
    },
    () => configTable(loaded, KEY_NAMES, Deno.env.get("HOME")),
  );
}

/** `tachikoma config get KEY`: one value (`vm_cpus`, `incus.socket`) or a whole section. */
export async function get(ctx: CommandContext, key: string): Promise<void> {
  if (!isSection(key) && !Object.hasOwn(KEYS, key)) throw unknownKey(key);
  const loaded = await ctx.config();
  const keys = isSection(key) ? KEY_NAMES.filter((k) => k.startsWith(`${key}.`)) : [key];
  const found = loaded.ignored.filter((i) => keys.includes(i.key)).map(ignoredJson);
  const ignored = found.length > 0 ? { ignored: found } : {};
  if (isSection(key)) {
    const sources = Object.fromEntries(keys.map((k) => [k, loaded.sources[k]]));
    ctx.out.result(
      { key, value: redactedConfig(loaded)[key], sources, ...ignored },
      () => configTable(loaded, keys, Deno.env.get("HOME")),
    );
    return;
  }
  const value = shownValue(key, getKey(loaded.config, key));
  ctx.out.result(
    { key, value: value ?? null, source: loaded.sources[key] ?? { kind: "default" }, ...ignored },
    () => formatValue(value),
  );
}

/** What `config set` was given: the key, the value and the scope flags. */
export interface SetRequest {
  key: string;
  value: string;
  global?: boolean;
  repo?: boolean;
  local?: boolean;
}

/** `tachikoma config set KEY VALUE [--global|--repo|--local]`. */
export async function set(
  ctx: CommandContext,
  request: SetRequest,
  deps: ConfigCommandDeps = {},
): Promise<void> {
  const { key, value } = request;
  const w = where(deps, ctx);
  const r = await setValue(w, { key, value, scope: pickScope(request) });
  for (const message of r.warnings) log.warn(message);
  await warnIfOverridden(ctx, { key, file: r.file, home: w.env("HOME") });
  ctx.out.result(
    { key: r.key, value: r.value, file: r.file, scope: r.scope, trusted: r.trusted },
    () => `set ${key} = ${r.toml} in ${onePath(displayPath(r.file, w.env("HOME")))}`,
  );
}

/** Tells the user when a later layer hides the value just written. */
async function warnIfOverridden(
  ctx: CommandContext,
  written: { key: string; file: string; home: string | undefined },
): Promise<void> {
  const { key, file, home } = written;
  // A broken layer is not this command's business: loading will say so on the next command.
  const loaded = await ctx.config().catch(() => null);
  const message = loaded && overrideWarning(loaded, key, file, home);
  if (message) log.warn(message);
}

/** `tachikoma config edit [--repo|--local]`: $VISUAL / $EDITOR / vi, then validation. */
export async function edit(
  ctx: CommandContext,
  opts: { repo?: boolean; local?: boolean },
  deps: ConfigCommandDeps = {},
): Promise<void> {
  const w = where(deps, ctx);
  const r = await editFile(w, pickScope({ repo: opts.repo, local: opts.local }));
  for (const message of r.warnings) log.warn(message);
  ctx.out.result(
    r,
    () => `${onePath(displayPath(r.file, w.env("HOME")))} is valid`,
  );
}

/** `tachikoma config path`: the config files and whether each exists. */
export function path(ctx: CommandContext, deps: ConfigCommandDeps = {}): Promise<void> {
  const w = where(deps, ctx);
  const home = w.env("HOME");
  const data = configPaths(w);
  type Row = [string, { path: string; exists: boolean } | null];
  const rows: Row[] = [
    ["global", data.global],
    ...(data.legacy_global ? [["legacy", data.legacy_global] as Row] : []),
    ["repo", data.repo],
    ["local", data.local],
  ];
  ctx.out.result(data, () =>
    renderTable<Row>(
      [
        { header: "SCOPE", value: (r) => r[0] },
        { header: "PATH", value: (r) => r[1] ? onePath(displayPath(r[1].path, home)) : undefined },
        { header: "EXISTS", value: (r) => r[1] ? (r[1].exists ? "yes" : "no") : undefined },
      ],
      rows,
    ));
  return Promise.resolve();
}

/**
 * `tachikoma config trust [file…]`, `--list`, `--revoke [file…]`: trust the exact content of
 * the repo's config files (default: the current repo's that exist), list, or forget.
 */
export async function trust(
  ctx: CommandContext,
  request: { files: string[]; list?: boolean; revoke?: boolean },
  deps: ConfigCommandDeps = {},
): Promise<void> {
  const { files, ...opts } = request;
  const w = where(deps, ctx);
  const home = w.env("HOME");
  const show = (p: string) => onePath(displayPath(p, home));
  if (opts.list && opts.revoke) throw new UsageError("use only one of --list, --revoke");
  if (opts.list) {
    if (files.length > 0) throw new UsageError("--list takes no file");
    const entries = await listTrust(w);
    ctx.out.result(
      { trusted: entries },
      () =>
        entries.length === 0 ? "nothing is trusted" : renderTable(
          [
            { header: "FILE", value: (e: typeof entries[number]) => show(e.file) },
            { header: "SHA256", value: (e) => e.sha256.slice(0, 12) },
            { header: "TRUSTED AT", value: (e) => e.trusted_at },
            { header: "STATUS", value: (e) => e.status },
          ],
          entries,
        ),
    );
    return;
  }
  if (opts.revoke) {
    const revoked = await revokeTrust(w, files);
    ctx.out.result(
      { revoked },
      () =>
        revoked.map((r) =>
          r.revoked ? `revoked ${show(r.file)}` : `${show(r.file)} was not trusted`
        )
          .join("\n"),
    );
    return;
  }
  const trusted = await trustFiles(w, files);
  ctx.out.result({ trusted }, () =>
    trusted.map((t) => {
      const head = `${t.previous === "same" ? "already trusted" : "trusted"} ${show(t.file)} ` +
        `(sha256 ${t.sha256.slice(0, 12)})`;
      if (t.gated.length === 0) return `${head}: it sets no gated keys`;
      const lines = t.gated.map((g) => `  ${g.key} = ${JSON.stringify(g.value)}  (${g.why})`);
      return [`${head}; it sets:`, ...lines].join("\n");
    }).join("\n"));
}
