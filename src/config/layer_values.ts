/**
 * How a layer's values enter the merged configuration: paths resolved (`~`, relative to the file
 * that holds them), and `table` keys merged by entry name while every other key is replaced.
 *
 * @module
 */
import { getKey, KEYS, type KeySpec, setKey } from "./defaults.ts";
import { resolvePath } from "../lib/paths.ts";
import { gatedAmong } from "./gate.ts";
import type { ConfigSource, FileLayer, IgnoredSetting } from "./types.ts";

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}

/** Where relative paths of a layer are resolved: the layer's directory, and the home for `~`. */
export interface PathBase {
  /** Directory relative paths are resolved against. */
  base: string;
  /** Home directory `~` expands to; `~` stays as written without it. */
  home: string | undefined;
}

/** Expands `~` and resolves relative paths of path-typed keys against `base`. */
export function resolvePathValue(spec: KeySpec, value: unknown, where: PathBase): unknown {
  if (spec.type === "table") return resolveTablePaths(spec, value, where);
  const { base, home } = where;
  if (!spec.path) return value;
  const one = (v: unknown): unknown => {
    if (typeof v !== "string" || v === "") return v;
    let s = v;
    if (home && (s === "~" || s.startsWith("~/"))) s = home + s.slice(1);
    if (s.startsWith("/")) return s;
    if (spec.path === "command" && !s.includes("/")) return s;
    return resolvePath(base, s);
  };
  return Array.isArray(value) ? value.map(one) : one(value);
}

function resolveTablePaths(spec: KeySpec, value: unknown, where: PathBase): unknown {
  if (!spec.pathFields || !isTable(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(value)) {
    if (!isTable(entry)) {
      out[name] = entry;
      continue;
    }
    const copy = { ...entry };
    for (const field of spec.pathFields) {
      if (copy[field] === undefined) continue;
      copy[field] = resolvePathValue({ type: "string", path: "path" }, copy[field], where);
    }
    out[name] = copy;
  }
  return out;
}

/**
 * Sets a key in the merged configuration: a `table` key merges by entry name (a later layer's
 * entry replaces an earlier one of the same name), every other key is replaced.
 */
export function mergeKey(merged: Record<string, unknown>, key: string, value: unknown): void {
  if (KEYS[key].type === "table" && isTable(value)) {
    const before = getKey(merged, key);
    setKey(merged, key, { ...(isTable(before) ? before : {}), ...value });
  } else {
    setKey(merged, key, value);
  }
}

/** A merge under way: the values so far, where each came from, what untrusted files could not set. */
export interface LayerMerge {
  merged: Record<string, unknown>;
  sources: Record<string, ConfigSource>;
  ignored: IgnoredSetting[];
}

/**
 * Merges the values of one config file over `into`: paths resolved against the file's directory
 * (and `~` against `home`); the gated keys of an untrusted repo file set aside in `ignored`.
 */
export function mergeFileLayer(
  into: LayerMerge,
  file: { layer: FileLayer; values: Map<string, unknown>; home: string | undefined },
): void {
  const { layer, values, home } = file;
  const base = layer.file.slice(0, layer.file.lastIndexOf("/")) || "/";
  const gated = layer.kind === "global" || layer.trusted ? [] : gatedAmong(values.keys());
  for (const [key, value] of values) {
    const resolved = resolvePathValue(KEYS[key], value, { base, home });
    if (gated.includes(key)) {
      into.ignored.push({
        key,
        value: resolved,
        kind: layer.kind as "repo" | "local",
        file: layer.file,
      });
      continue;
    }
    mergeKey(into.merged, key, resolved);
    into.sources[key] = { kind: layer.kind, file: layer.file };
  }
}
