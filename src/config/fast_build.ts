/**
 * Merging the configuration layers without zod, when every value passes its hand-written check
 * (`fast_check.ts`): the path of every command for a user with a valid config file or
 * `TACHIKOMA_*` variables. Anything else — an unknown key (it needs a warning with its line), a
 * value a check refuses, text that does not parse — gives null, and `load.ts` runs the zod path
 * (`validate.ts`), which says what is wrong exactly as before. Same result as
 * `validate.ts`'s `buildConfig` (`tests/unit/config/fast_check_test.ts` compares the two).
 *
 * smol-toml is imported only when a file (or an array/table variable) needs parsing.
 *
 * @module
 */
import { checkBases } from "./bases.ts";
import { isSection, KEYS } from "./defaults.ts";
import { defaultConfig } from "./default_config.ts";
import { coerce } from "./env.ts";
import { fastCheck, isPlainTable } from "./fast_check.ts";
import { mergeFileLayer, mergeKey, resolvePathValue } from "./layer_values.ts";
import type { ConfigSource, IgnoredSetting } from "./types.ts";
import type { BuildInput, BuildResult } from "./validate.ts";

type TomlParse = (text: string) => Record<string, unknown>;

/** The values of one parsed file by key, or null when the zod path must look at it. */
function fileValues(table: Record<string, unknown>): Map<string, unknown> | null {
  const values = new Map<string, unknown>();
  for (const name of Object.keys(table)) {
    const value = table[name];
    if (isSection(name)) {
      if (!isPlainTable(value)) return null;
      for (const sub of Object.keys(value)) {
        const key = `${name}.${sub}`;
        if (!fastCheck(key, value[sub])) return null;
        values.set(key, value[sub]);
      }
    } else {
      if (!fastCheck(name, value)) return null;
      values.set(name, value);
    }
  }
  return values;
}

/**
 * The merged configuration of `input` (see `validate.ts` `buildConfig`), or null when a value
 * needs the zod path. Never throws for bad input: that is the zod path's to report.
 */
export async function fastBuildConfig(input: BuildInput): Promise<BuildResult | null> {
  let toml: TomlParse | undefined;
  const parseToml = async (text: string): Promise<Record<string, unknown> | null> => {
    if (!toml) {
      const { parse } = await import("smol-toml");
      toml = (t) => parse(t) as Record<string, unknown>;
    }
    try {
      return toml(text);
    } catch {
      return null;
    }
  };

  const merged = defaultConfig(input.os) as unknown as Record<string, unknown>;
  const sources: Record<string, ConfigSource> = {};
  for (const key of Object.keys(KEYS)) sources[key] = { kind: "default" };
  const ignored: IgnoredSetting[] = [];

  for (const layer of input.files) {
    const table = await parseToml(layer.text);
    const values = table && fileValues(table);
    if (!values) return null;
    mergeFileLayer({ merged, sources, ignored }, { layer, values, home: input.home });
  }
  for (const { key, variable, raw } of input.env) {
    const spec = KEYS[key];
    const literal = spec.type === "table" ||
      (spec.type === "string[]" && raw.trim().startsWith("["));
    let value: unknown;
    if (literal) {
      const parsed = await parseToml(`v = ${raw.trim()}`);
      if (!parsed) return null;
      // coerce's own checks of the parsed literal (array, table), as the zod path has them.
      try {
        value = coerce(raw, spec, () => parsed.v);
      } catch {
        return null;
      }
    } else {
      try {
        value = coerce(raw, spec, () => {
          throw new Error("unreachable: no TOML literal");
        });
      } catch {
        return null;
      }
    }
    if (!fastCheck(key, value)) return null;
    mergeKey(merged, key, resolvePathValue(spec, value, { base: input.cwd, home: input.home }));
    sources[key] = { kind: "env", variable };
  }
  for (const [key, value] of Object.entries(input.flags)) {
    if (value === undefined) continue;
    if (!fastCheck(key, value)) return null;
    mergeKey(merged, key, value);
    sources[key] = { kind: "flag", flag: `--${key.replaceAll("_", "-")}` };
  }
  // What the schema's defaults add to image server entries.
  const incus = merged.incus as { image_servers: Record<string, { protocol?: string }> };
  for (const entry of Object.values(incus.image_servers)) entry.protocol ??= "simplestreams";
  const config = merged as unknown as BuildResult["config"];
  const basesFrom = sources.bases;
  checkBases(config.bases, basesFrom?.file ? input.display(basesFrom.file) : undefined);
  return { config, sources, warnings: [], ignored };
}
