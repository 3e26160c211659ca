/**
 * Tolerant parsing of tart's JSON and text outputs (see `tart-contract.md` §5).
 *
 * Tart's field set drifted across releases: `SizeOnDisk` (2.15–2.30) became `Accessed` (2.31+),
 * `Source` was `oci` before 2.11 and `OCI` after, `Size` is an integer in `list` but a string in
 * `get`, and `Running` is deprecated in favour of `State`. Key order is not guaranteed and `/` is
 * escaped as `\/`. These parsers accept every variant, ignore unknown fields and treat `State` as
 * the truth (falling back to `Running` only when `State` is absent, as in tart < 1.8).
 *
 * @module
 */
import { RuntimeError } from "../../lib/errors.ts";

/** A VM state as tart reports it (lowercased); `unknown` for anything else. */
export type TartState = "running" | "suspended" | "stopped" | "unknown";

/** One entry of `tart list --format json`. */
export interface TartListEntry {
  /** Local VM name, or an OCI `host/ns:tag` / `host/ns@sha256:…` name. */
  name: string;
  /** `local` or `oci` (normalised to lowercase). */
  source: "local" | "oci";
  state: TartState;
  /** Apparent size in GB, when reported. */
  diskGb?: number;
  /** Allocated size in GB, when reported. */
  sizeGb?: number;
  /** Last access time (ISO-8601), tart ≥ 2.31. */
  accessed?: string;
  /** Allocated size in GB as reported by tart 2.15–2.30. */
  sizeOnDiskGb?: number;
}

/** `tart get NAME --format json`. */
export interface TartVmDetails {
  /** `linux` or `darwin` (absent before tart 2.8). */
  os?: string;
  cpu?: number;
  /** Memory in MB. */
  memoryMb?: number;
  diskGb?: number;
  diskFormat?: string;
  /** Allocated size in GB (a string with 3 decimals in tart ≥ 2.6.1, a number before). */
  sizeGb?: number;
  display?: string;
  state: TartState;
}

type Json = Record<string, unknown>;

function parseJson(stdout: string, what: string): unknown {
  const text = stdout.trim();
  try {
    return JSON.parse(text);
  } catch (error) {
    const excerpt = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    throw new RuntimeError(
      "tart_output",
      `could not parse the output of \`tart ${what}\` as JSON (${(error as Error).message}): ${
        JSON.stringify(excerpt)
      }`,
      { hint: "check `tart --version`; tachikoma supports tart 1.8 and later" },
    );
  }
}

function num(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string" && value.trim() !== "") {
    const n = Number(value.trim());
    if (Number.isFinite(n)) return n;
  }
  return undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** Normalises a `State` value (any case), falling back to the deprecated `Running` flag. */
export function parseState(state: unknown, running?: unknown): TartState {
  if (typeof state === "string") {
    const s = state.trim().toLowerCase();
    if (s === "running" || s === "suspended" || s === "stopped") return s;
    return "unknown";
  }
  if (typeof running === "boolean") return running ? "running" : "stopped";
  return "unknown";
}

function field(entry: Json, key: string): unknown {
  if (key in entry) return entry[key];
  // Tolerate a differently-cased key (never seen from tart, but cheap to accept).
  const lower = key.toLowerCase();
  for (const k of Object.keys(entry)) if (k.toLowerCase() === lower) return entry[k];
  return undefined;
}

/**
 * Parses `tart list --format json`. Entries without a string `Name` are skipped; an empty or
 * whitespace-only output is an empty list.
 */
export function parseList(stdout: string): TartListEntry[] {
  if (stdout.trim() === "") return [];
  const data = parseJson(stdout, "list --format json");
  if (!Array.isArray(data)) {
    throw new RuntimeError(
      "tart_output",
      "`tart list --format json` did not print a JSON array",
    );
  }
  const out: TartListEntry[] = [];
  for (const item of data) {
    if (item === null || typeof item !== "object" || Array.isArray(item)) continue;
    const entry = item as Json;
    const name = str(field(entry, "Name"));
    if (name === undefined || name === "") continue;
    const source = str(field(entry, "Source"))?.toLowerCase() === "oci" ? "oci" : "local";
    const parsed: TartListEntry = {
      name,
      source,
      state: parseState(field(entry, "State"), field(entry, "Running")),
    };
    const disk = num(field(entry, "Disk"));
    if (disk !== undefined) parsed.diskGb = disk;
    const size = num(field(entry, "Size"));
    if (size !== undefined) parsed.sizeGb = size;
    const accessed = str(field(entry, "Accessed"));
    if (accessed !== undefined) parsed.accessed = accessed;
    const sizeOnDisk = num(field(entry, "SizeOnDisk"));
    if (sizeOnDisk !== undefined) parsed.sizeOnDiskGb = sizeOnDisk;
    out.push(parsed);
  }
  return out;
}

/** Parses `tart get NAME --format json` (a single object). */
export function parseGet(stdout: string): TartVmDetails {
  const data = parseJson(stdout, "get --format json");
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new RuntimeError("tart_output", "`tart get --format json` did not print a JSON object");
  }
  const entry = data as Json;
  const details: TartVmDetails = {
    state: parseState(field(entry, "State"), field(entry, "Running")),
  };
  const os = str(field(entry, "OS"));
  if (os !== undefined) details.os = os.toLowerCase();
  const cpu = num(field(entry, "CPU"));
  if (cpu !== undefined) details.cpu = cpu;
  const memory = num(field(entry, "Memory"));
  if (memory !== undefined) details.memoryMb = memory;
  const disk = num(field(entry, "Disk"));
  if (disk !== undefined) details.diskGb = disk;
  const diskFormat = str(field(entry, "DiskFormat"));
  if (diskFormat !== undefined) details.diskFormat = diskFormat;
  const size = num(field(entry, "Size"));
  if (size !== undefined) details.sizeGb = size;
  const display = str(field(entry, "Display"));
  if (display !== undefined) details.display = display;
  return details;
}

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Parses `tart ip` output: the first non-empty line when it is a dotted-quad IPv4, else null. */
export function parseIp(stdout: string): string | null {
  const line = stdout.split("\n").map((l) => l.trim()).find((l) => l !== "");
  if (line === undefined) return null;
  return IPV4_RE.test(line) ? line : null;
}

/** True when `value` is a dotted-quad IPv4 address. */
export function isIpv4(value: string): boolean {
  return IPV4_RE.test(value);
}

/** Parses `tart --version` (e.g. `2.32.1`, or `SNAPSHOT` for a local build). */
export function parseVersion(stdout: string): string {
  return stdout.trim().split("\n")[0]?.trim() ?? "";
}
