/**
 * How configuration is shown by `tachikoma config`: secrets masked, values on one line, sources
 * named, and the gated values of untrusted repo files listed as ignored.
 *
 * @module
 */
import { renderTable } from "../lib/table.ts";
import { getKey, KEY_NAMES, keyPath, KEYS } from "./defaults.ts";
import { onePath } from "./gate.ts";
import { displayPath, type LoadedConfig } from "./load.ts";
import type { ConfigSource, IgnoredSetting } from "./types.ts";

/** What is shown instead of a secret. */
export const SECRET_MASK = "[REDACTED]";

/** A value as shown to users (secrets masked). */
export function shownValue(key: string, value: unknown): unknown {
  if (value !== undefined && KEYS[key]?.secret) return SECRET_MASK;
  return value;
}

/** The configuration with secrets masked. */
export function redactedConfig(loaded: LoadedConfig): Record<string, unknown> {
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

/** An ignored setting as JSON (`value` masked when secret). */
export function ignoredJson(
  item: IgnoredSetting,
): { key: string; value: unknown; kind: string; file: string; reason: string } {
  return {
    key: item.key,
    value: shownValue(item.key, item.value),
    kind: item.kind,
    file: item.file,
    reason: "not trusted",
  };
}

/**
 * A value on one line: strings as they are (JSON-quoted with control characters), arrays and
 * tables as JSON.
 */
export function formatValue(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") {
    return [...value].some((c) => c < " " || c === "\x7f") ? JSON.stringify(value) : value;
  }
  if (Array.isArray(value) || typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Where a value came from, for humans: `repo ~/src/app/.tachikoma.toml`, `env VAR`, … */
export function formatSource(source: ConfigSource | undefined, home: string | undefined): string {
  if (!source) return "default";
  switch (source.kind) {
    case "global":
    case "repo":
    case "local":
      return source.file
        ? `${source.kind} ${onePath(displayPath(source.file, home))}`
        : source.kind;
    case "env":
      return `env ${source.variable ?? ""}`.trim();
    case "flag":
      return `flag ${source.flag ?? ""}`.trim();
    default:
      return source.kind;
  }
}

/**
 * The `KEY VALUE SOURCE` table of `keys`; each gated value an untrusted repo file sets follows
 * its key's row, with the source `ignored: <kind> <file> (not trusted)`.
 */
export function configTable(
  loaded: LoadedConfig,
  keys: readonly string[],
  home: string | undefined,
): string {
  type Row = { key: string; value: unknown; source: string };
  const rows: Row[] = [];
  for (const key of keys) {
    rows.push({
      key,
      value: shownValue(key, getKey(loaded.config, key)),
      source: formatSource(loaded.sources[key], home),
    });
    for (const item of loaded.ignored.filter((i) => i.key === key)) {
      rows.push({
        key,
        value: shownValue(key, item.value),
        source: `ignored: ${item.kind} ${onePath(displayPath(item.file, home))} (not trusted)`,
      });
    }
  }
  return renderTable<Row>(
    [
      { header: "KEY", value: (r) => r.key },
      { header: "VALUE", value: (r) => formatValue(r.value) },
      { header: "SOURCE", value: (r) => r.source },
    ],
    rows,
  );
}
