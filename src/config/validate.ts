/**
 * Parsing and validating configuration layers with zod and smol-toml. `load.ts` imports this
 * module lazily, only when a config file or a `TACHIKOMA_*` variable exists.
 *
 * Every problem names where it is: `<file>:<line>: <key>: <problem>` for files,
 * `<file>:<line>:<column>: TOML syntax error: …` for bad TOML, `<VARIABLE>: <problem>` for
 * the environment.
 *
 * @module
 */
import { parse, TomlError } from "smol-toml";
import type { z } from "zod/mini";
import { ConfigError } from "../lib/errors.ts";
import { defaultConfig } from "./default_config.ts";
import { isSection, KEY_NAMES, KEYS, type KeySpec, type OsName, SECTIONS } from "./defaults.ts";
import { coerce, CoercionError, type EnvValue, keySpec, quoted } from "./env.ts";
import { mergeFileLayer, mergeKey, resolvePathValue } from "./layer_values.ts";
import {
  type Config,
  ConfigSchema,
  IncusSectionSchema,
  McpSectionSchema,
  TartSectionSchema,
  TruenasSectionSchema,
} from "./schema.ts";
import { suggestionSuffix } from "./suggest.ts";
import { checkBases } from "./bases.ts";
import { findKeyLine } from "./toml_scan.ts";
import type { ConfigSource, FileLayer, IgnoredSetting } from "./types.ts";

export type { FileLayer, IgnoredSetting } from "./types.ts";

/** Everything {@link buildConfig} needs. */
export interface BuildInput {
  os: OsName;
  files: FileLayer[];
  env: EnvValue[];
  flags: Record<string, unknown>;
  /** For `~` in path values. */
  home?: string;
  /** Base of relative paths in the environment. */
  cwd: string;
  /** How a path is shown in messages (e.g. with `~` for the home directory). */
  display: (path: string) => string;
}

/** The merged, validated configuration. */
export interface BuildResult {
  config: Config;
  sources: Record<string, ConfigSource>;
  /** Warnings (unknown keys…); the caller logs them. */
  warnings: string[];
  /** Gated values of untrusted repo files, not applied. */
  ignored: IgnoredSetting[];
}

/** A layer's validated values by key, plus warnings. */
export interface ValidatedLayer {
  values: Map<string, unknown>;
  warnings: string[];
}

const SECTION_SCHEMAS: Record<string, z.ZodMiniObject> = {
  tart: TartSectionSchema,
  incus: IncusSectionSchema,
  truenas: TruenasSectionSchema,
  mcp: McpSectionSchema,
};

/** The zod schema of one key (`vm_cpus`, `incus.socket`). */
export function fieldSchema(key: string): z.ZodMiniType {
  const dot = key.indexOf(".");
  if (dot === -1) return ConfigSchema.shape[key as keyof typeof ConfigSchema.shape];
  return SECTION_SCHEMAS[key.slice(0, dot)].shape[key.slice(dot + 1)] as z.ZodMiniType;
}

/** Parses TOML text; a syntax error becomes a ConfigError naming file, line and column. */
export function parseToml(text: string, where: string): Record<string, unknown> {
  try {
    return parse(text) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof TomlError) {
      const reason = error.message.split("\n")[0].replace(/^Invalid TOML document:\s*/, "");
      throw new ConfigError(
        `${where}:${error.line}:${error.column}: TOML syntax error: ${reason}`,
      );
    }
    throw error;
  }
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}

/** `string "four"`, `integer 4`, `boolean true`, … for "got" in messages. */
export function describeValue(value: unknown, secret = false): string {
  const kind = typeof value === "string"
    ? "string"
    : typeof value === "number"
    ? (Number.isInteger(value) ? "integer" : "float")
    : typeof value === "bigint"
    ? "integer"
    : typeof value === "boolean"
    ? "boolean"
    : Array.isArray(value)
    ? "array"
    : value instanceof Date
    ? "datetime"
    : "table";
  if (secret) return `${kind} (value hidden)`;
  if (kind === "table") return "table";
  return `${kind} ${shortValue(value)}`;
}

function shortValue(value: unknown): string {
  if (typeof value === "string") return quoted(value);
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) {
    const text = JSON.stringify(value);
    return text.length > 60 ? text.slice(0, 60) + "…]" : text;
  }
  if (value !== null && typeof value === "object") {
    const text = JSON.stringify(value);
    return text.length > 60 ? text.slice(0, 60) + "…}" : text;
  }
  return String(value);
}

/** How a key's type is named in messages. */
export function typeLabel(spec: KeySpec): string {
  if (spec.choices) return `one of ${spec.choices.map((c) => `"${c}"`).join(", ")}`;
  return spec.type === "string[]" ? "array of strings" : spec.type;
}

const FORMATS: Record<string, string> = {
  url: "a URL",
  ipv4: "an IPv4 address",
  ipv6: "an IPv6 address",
};

function valueAt(value: unknown, path: PropertyKey[]): unknown {
  let v = value;
  for (const p of path) v = (v as Record<PropertyKey, unknown>)?.[p];
  return v;
}

/** One problem with a value: a sub-path (`[0]` for an array item, else "") and the text. */
export interface ValueProblem {
  subPath: string;
  problem: string;
  /** The names in the sub-path (table entries and fields), for finding its line. */
  keys: string[];
}

function issueText(issue: z.core.$ZodIssue, spec: KeySpec, value: unknown): string {
  const secret = spec.secret === true;
  const got = valueAt(value, issue.path);
  const gotShort = secret ? "(value hidden)" : shortValue(got);
  switch (issue.code) {
    case "invalid_type": {
      const expected = issue.path.length === 0
        ? typeLabel({ type: spec.type })
        : issue.expected === "number" || issue.expected === "int"
        ? "integer"
        : issue.expected === "object"
        ? "table"
        : String(issue.expected);
      return `expected ${expected}, got ${describeValue(got, secret)}`;
    }
    case "too_small":
      if (issue.origin === "string") return `expected a non-empty string, got ""`;
      return `expected ${issue.origin === "array" ? "at least" : "a value >="} ${
        String(issue.minimum)
      }${issue.origin === "array" ? " items" : ""}, got ${gotShort}`;
    case "too_big":
      return `expected a value <= ${String(issue.maximum)}, got ${gotShort}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${
        typeof got === "string" ? gotShort : describeValue(got, secret)
      }`;
    case "unrecognized_keys":
      return `unknown ${issue.keys.length > 1 ? "fields" : "field"} ${
        issue.keys.map((k) => JSON.stringify(k)).join(", ")
      }`;
    case "invalid_key": {
      const key = issue.path[issue.path.length - 1];
      const inner = issue.issues[0]?.message ?? issue.message;
      return `invalid name ${JSON.stringify(String(key))}: ${inner}`;
    }
    case "invalid_format":
      if (issue.format === "url" && /https/.test(issue.message)) {
        return `expected an https:// URL, got ${gotShort}`;
      }
      if (issue.format in FORMATS) return `expected ${FORMATS[issue.format]}, got ${gotShort}`;
      return `${issue.message} (got ${gotShort})`;
    case "invalid_union": {
      const formats = issue.errors.flat().filter((i) => i.code === "invalid_format").map((i) =>
        FORMATS[(i as z.core.$ZodIssueInvalidStringFormat).format] ?? i.message
      );
      if (formats.length === issue.errors.length && typeof got === "string") {
        return `expected ${formats.join(" or ")}, got ${gotShort}`;
      }
      const first = issue.errors.flat()[0];
      return first ? issueText({ ...first, path: issue.path }, spec, value) : issue.message;
    }
    default:
      return `${issue.message} (got ${gotShort})`;
  }
}

/** Checks one value against its key's schema; null when valid. */
export function checkValue(key: string, value: unknown): ValueProblem | null {
  const spec = KEYS[key];
  const result = fieldSchema(key).safeParse(value);
  if (result.success) return null;
  const issue = result.error.issues[0];
  const subPath = issue.path.map((p) => typeof p === "number" ? `[${p}]` : `.${String(p)}`)
    .join("");
  const keys = issue.path.filter((p) => typeof p === "string") as string[];
  return { subPath, problem: issueText(issue, spec, value), keys };
}

/**
 * Validates one parsed file: unknown keys and sections become warnings (with a did-you-mean)
 * and are dropped; the first invalid value throws a ConfigError naming file, line, key,
 * expected type and the value found.
 */
export function validateTable(
  table: Record<string, unknown>,
  text: string,
  where: string,
): ValidatedLayer {
  const values = new Map<string, unknown>();
  const warnings: string[] = [];
  const errors: string[] = [];
  const where0 = where;
  const at = (path: string[]) => {
    const line = findKeyLine(text, path);
    return line === undefined ? where : `${where}:${line}`;
  };
  const check = (key: string, value: unknown, path: string[]) => {
    const problem = checkValue(key, value);
    if (!problem) values.set(key, value);
    else {
      // Inside a table entry, the line of the entry's field when the text has it.
      const inner = problem.keys.length > 0
        ? findKeyLine(text, [...path, ...problem.keys])
        : undefined;
      const where = inner === undefined ? at(path) : `${where0}:${inner}`;
      errors.push(`${where}: ${key}${problem.subPath}: ${problem.problem}`);
    }
  };
  for (const [name, value] of Object.entries(table)) {
    if (isSection(name)) {
      if (!isTable(value)) {
        errors.push(`${at([name])}: ${name}: expected table, got ${describeValue(value)}`);
        continue;
      }
      for (const [sub, subValue] of Object.entries(value)) {
        const key = `${name}.${sub}`;
        if (Object.hasOwn(KEYS, key)) check(key, subValue, [name, sub]);
        else {
          const section = KEY_NAMES.filter((k) => k.startsWith(`${name}.`));
          warnings.push(
            `${at([name, sub])}: unknown key ${key}, ignored${suggestionSuffix(key, section)}`,
          );
        }
      }
    } else if (Object.hasOwn(KEYS, name)) {
      check(name, value, [name]);
    } else if (isTable(value)) {
      warnings.push(
        `${at([name])}: unknown section [${name}], ignored${
          suggestionSuffix(name, SECTIONS).replace(/did you mean (\w+)\?/, "did you mean [$1]?")
        }`,
      );
    } else {
      warnings.push(
        `${at([name])}: unknown key ${name}, ignored${suggestionSuffix(name, KEY_NAMES)}`,
      );
    }
  }
  if (errors.length > 0) {
    const more = errors.length > 1
      ? ` (and ${errors.length - 1} more problem${errors.length > 2 ? "s" : ""})`
      : "";
    throw new ConfigError(errors[0] + more);
  }
  return { values, warnings };
}

/** Parses and validates one file's text. */
export function validateFileText(text: string, where: string): ValidatedLayer {
  return validateTable(parseToml(text, where), text, where);
}

/** Parses a TOML array literal (for `TACHIKOMA_*` arrays and `config set`). */
export function parseTomlArray(literal: string): unknown {
  return parse(`v = ${literal}`).v;
}

/**
 * Turns text (from a variable or the command line) into a valid value for `key`, or throws a
 * ConfigError starting with `label` (the variable name, or the key).
 */
export function parseTextValue(key: string, raw: string, label: string): unknown {
  const spec = keySpec(key);
  if (!spec) {
    throw new ConfigError(`${label}: unknown key ${key}${suggestionSuffix(key, KEY_NAMES)}`);
  }
  let value: unknown;
  try {
    value = coerce(raw, spec, parseTomlArray);
  } catch (error) {
    if (error instanceof CoercionError) throw new ConfigError(`${label}: ${error.message}`);
    throw error;
  }
  const problem = checkValue(key, value);
  if (problem) throw new ConfigError(`${label}${problem.subPath}: ${problem.problem}`);
  return value;
}

/** Merges and validates every layer: defaults < files (in order) < environment < flags. */
export function buildConfig(input: BuildInput): BuildResult {
  const merged = defaultConfig(input.os) as unknown as Record<string, unknown>;
  const sources: Record<string, ConfigSource> = {};
  for (const key of KEY_NAMES) sources[key] = { kind: "default" };
  const warnings: string[] = [];
  const ignored: IgnoredSetting[] = [];

  for (const layer of input.files) {
    const { values, warnings: w } = validateFileText(layer.text, input.display(layer.file));
    warnings.push(...w);
    mergeFileLayer({ merged, sources, ignored }, { layer, values, home: input.home });
  }
  for (const { key, variable, raw } of input.env) {
    const value = parseTextValue(key, raw, variable);
    mergeKey(
      merged,
      key,
      resolvePathValue(KEYS[key], value, { base: input.cwd, home: input.home }),
    );
    sources[key] = { kind: "env", variable };
  }
  for (const [key, value] of Object.entries(input.flags)) {
    if (value === undefined) continue;
    const problem = checkValue(key, value);
    const flag = `--${key.replaceAll("_", "-")}`;
    if (problem) throw new ConfigError(`${flag}${problem.subPath}: ${problem.problem}`);
    mergeKey(merged, key, value);
    sources[key] = { kind: "flag", flag };
  }
  const result = ConfigSchema.safeParse(merged);
  if (!result.success) {
    throw new ConfigError(`invalid configuration: ${result.error.issues[0].message}`);
  }
  const basesFrom = sources.bases;
  checkBases(
    result.data.bases,
    basesFrom?.file ? input.display(basesFrom.file) : undefined,
  );
  return { config: result.data, sources, warnings, ignored };
}
