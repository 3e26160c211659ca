/**
 * The environment layer: `TACHIKOMA_<KEY>` (upper-cased; section keys as
 * `TACHIKOMA_<SECTION>_<KEY>`, e.g. `TACHIKOMA_INCUS_SOCKET`), and the coercion of text values
 * (from the environment or `tachikoma config set`) to a key's type. No zod here.
 *
 * @module
 */
import { KEY_NAMES, KEYS, type KeySpec } from "./defaults.ts";
import type { EnvGetter } from "./paths.ts";
import { didYouMean } from "./suggest.ts";

/** The prefix of every configuration variable. */
export const ENV_PREFIX = "TACHIKOMA_";

/** The variable that sets `key` (`incus.socket` → `TACHIKOMA_INCUS_SOCKET`). */
export function envVarName(key: string): string {
  return ENV_PREFIX + key.replace(".", "_").toUpperCase();
}

/** Variable name → key, for every key. */
export const ENV_VARS: ReadonlyMap<string, string> = new Map(
  KEY_NAMES.map((key) => [envVarName(key), key]),
);

/** `TACHIKOMA_*` variables that are not configuration keys and never warned about. */
export function isReservedEnvVar(name: string): boolean {
  return name === "TACHIKOMA_CONFIG_DIR" || name.startsWith("TACHIKOMA_TEST_") ||
    name.startsWith("TACHIKOMA_LAB_");
}

/** One configuration value found in the environment (still text). */
export interface EnvValue {
  key: string;
  variable: string;
  raw: string;
}

/**
 * The configuration variables that are set (non-empty), in key order. An empty value counts
 * as unset (so `TACHIKOMA_VM_CPUS= tachikoma …` falls back to the files).
 */
export function readEnv(env: EnvGetter): EnvValue[] {
  const found: EnvValue[] = [];
  for (const [variable, key] of ENV_VARS) {
    if (isReservedEnvVar(variable)) continue;
    const raw = env(variable);
    if (raw !== undefined && raw !== "") found.push({ key, variable, raw });
  }
  return found;
}

/**
 * Warnings for `TACHIKOMA_*` variables that look like a misspelt configuration variable
 * (`TACHIKOMA_VM_CPU` → did you mean `TACHIKOMA_VM_CPUS`?). Others are left alone: tools and
 * tests use their own `TACHIKOMA_*` variables.
 */
export function misspeltEnvVars(names: Iterable<string>): string[] {
  const known = [...ENV_VARS.keys()].map((v) => v.slice(ENV_PREFIX.length));
  const warnings: string[] = [];
  for (const name of names) {
    if (!name.startsWith(ENV_PREFIX) || ENV_VARS.has(name) || isReservedEnvVar(name)) continue;
    const guess = didYouMean(name.slice(ENV_PREFIX.length), known);
    if (guess !== undefined) {
      warnings.push(
        `environment variable ${name} is not a tachikoma setting (did you mean ${ENV_PREFIX}${guess}?); ignored`,
      );
    }
  }
  return warnings;
}

/** A failed coercion: what was expected (the caller adds where). */
export class CoercionError extends Error {}

const TRUE = new Set(["true", "1", "yes"]);
const FALSE = new Set(["false", "0", "no"]);

/**
 * Turns text into a value of the key's type: booleans from true/false/1/0/yes/no (any case),
 * integers from decimal digits, arrays from a TOML array literal (`["a", "b"]`) or a
 * comma-separated list (`a, b`), tables from a TOML inline table, strings as they are. Throws
 * {@link CoercionError}. `parseTomlArray` parses a TOML value literal (smol-toml, passed in to
 * keep it lazy).
 */
export function coerce(
  raw: string,
  spec: KeySpec,
  parseTomlArray: (literal: string) => unknown,
): unknown {
  switch (spec.type) {
    case "boolean": {
      const v = raw.trim().toLowerCase();
      if (TRUE.has(v)) return true;
      if (FALSE.has(v)) return false;
      throw new CoercionError(`expected boolean (true/false/1/0/yes/no), got ${quoted(raw)}`);
    }
    case "integer": {
      const v = raw.trim().replaceAll("_", "");
      if (!/^[+-]?\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
        throw new CoercionError(`expected integer, got ${quoted(raw)}`);
      }
      return Number(v);
    }
    case "string[]": {
      const v = raw.trim();
      if (v.startsWith("[")) {
        let parsed: unknown;
        try {
          parsed = parseTomlArray(v);
        } catch {
          throw new CoercionError(`expected a TOML array like ["a", "b"], got ${quoted(raw)}`);
        }
        if (!Array.isArray(parsed)) {
          throw new CoercionError(`expected a TOML array like ["a", "b"], got ${quoted(raw)}`);
        }
        return parsed;
      }
      return v.split(",").map((s) => s.trim()).filter((s) => s !== "");
    }
    case "table": {
      let parsed: unknown;
      try {
        parsed = parseTomlArray(raw.trim());
      } catch {
        parsed = undefined;
      }
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new CoercionError(
          `expected a TOML inline table like {name = {url = "https://…"}}, got ${quoted(raw)}`,
        );
      }
      return parsed;
    }
    case "string":
      return raw;
  }
}

/** `"text"` with escapes, cut to a readable length: safe on one line. */
export function quoted(text: string, max = 60): string {
  const cut = [...text].length > max ? [...text].slice(0, max).join("") + "…" : text;
  return JSON.stringify(cut);
}

/** The spec of `key`, or undefined for an unknown key. */
export function keySpec(key: string): KeySpec | undefined {
  return Object.hasOwn(KEYS, key) ? KEYS[key] : undefined;
}
