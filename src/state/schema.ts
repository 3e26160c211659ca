/**
 * The state file's shape. Compatible with tachikoma's `state.json` (`version`, `vms[]` with
 * name, repo, branch, worktree_path, created_at, last_used, status, ip); new fields are
 * optional so tachikoma's files load unchanged.
 *
 * @module
 */

/** Current state file format version written by this tachikoma. */
export const STATE_VERSION = 2;

/** Recorded status of a sandbox. `failed` carries `failure`. */
export type RecordStatus = "running" | "stopped" | "suspended" | "failed" | "creating";

/** Provisioning progress of a sandbox. */
export interface ProvisionRecord {
  /** Version of the provisioning recipe that ran. */
  version: number;
  /** Name of the last step that completed, or null when none did. */
  last_step: string | null;
  /** True when every step completed. */
  complete: boolean;
  /** Per-step input fingerprints the steps ran with (drives `--reprovision`). */
  fingerprints?: Record<string, string>;
}

/** Who made a sandbox: `mcp` for the MCP tools; absent for the CLI (and older records). */
export type CreatedBy = "mcp";

/** What the MCP daemon's reaper last did to a sandbox made over MCP. */
export interface ReapRecord {
  /** `stopped`: idle past `[mcp] idle_stop_after`; `destroyed`: older than `hard_destroy_after`. */
  action: "stopped" | "destroyed";
  /** RFC 3339 UTC. */
  at: string;
  /** Why, in words (`idle for 1h2m (idle_stop_after 1h)`). */
  reason: string;
}

/** A sandbox's own egress policy (`network set/allow/deny`, `spawn --egress`). */
export interface EgressRecord {
  mode: "unrestricted" | "agent" | "allowlist" | "none";
  /** `egress_allow` entries (normalised). */
  allow: string[];
}

/**
 * Where a code-by-git sandbox's branch stands (engines that cannot mount the host), as spawn,
 * `pull` or `status` last saw it; `list` shows it without asking the guest.
 */
export interface CodeSyncRecord {
  mode: "git";
  /** The guest's branch head then (null: not known). */
  guest_head: string | null;
  /** Guest commits the host branch lacked / host commits the guest lacked (null: not known). */
  ahead: number | null;
  behind: number | null;
  /** RFC 3339 UTC. */
  checked_at: string;
}

/** One sandbox tachikoma manages. */
export interface SandboxRecord {
  name: string;
  /** Repo directory name (not slugified). */
  repo: string;
  branch: string;
  worktree_path: string;
  /** RFC 3339 UTC. */
  created_at: string;
  /** RFC 3339 UTC; updated by every command that uses the sandbox. */
  last_used: string;
  status: RecordStatus;
  ip: string | null;
  /** Backend that holds it (absent in tachikoma files: `tart`). */
  backend?: string;
  /** Absolute repo root on the host. */
  repo_root?: string;
  provisioned?: ProvisionRecord;
  /** Why it is `failed`. */
  failure?: string | null;
  /** `mcp` when the MCP tools created it (only those are reaped); absent: the CLI did. */
  created_by?: CreatedBy;
  /** The reaper's last action on it (cleared when it is spawned again). */
  reaped?: ReapRecord;
  /** Its egress policy; absent (older records): its repository's configuration decides. */
  egress?: EgressRecord;
  /** Code by git (the engine cannot mount the host): where the branch stands; absent: shared. */
  code_sync?: CodeSyncRecord;
}

/** The whole state file. */
export interface StateFile {
  version: number;
  vms: SandboxRecord[];
}

/** Backend assumed for records that name none (tachikoma's files): `tart`. */
export const DEFAULT_RECORD_BACKEND = "tart";

/** Every {@link RecordStatus}, for validation and help text. */
export const RECORD_STATUSES: readonly RecordStatus[] = [
  "running",
  "stopped",
  "suspended",
  "failed",
  "creating",
];

/** The state file's JSON does not have the expected shape. `path` locates the bad value. */
export class StateShapeError extends Error {
  /** Where in the document, e.g. `vms[3].status`. */
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = "StateShapeError";
    this.path = path;
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") {
    return JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value);
  }
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const REQUIRED_STRINGS = ["name", "repo", "branch", "worktree_path", "created_at", "last_used"];
// RFC 3339 date-time (as chrono and Date#toISOString write it).
const RFC3339 = /^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)$/;
const STATUS_SET = new Set<string>(RECORD_STATUSES);
const CREATED_BY = new Set<string>(["mcp"]);
const REAP_ACTIONS = new Set<string>(["stopped", "destroyed"]);
const EGRESS_MODES = new Set<string>(["unrestricted", "agent", "allowlist", "none"]);

function isEgress(value: unknown): boolean {
  return isObject(value) && typeof value.mode === "string" && EGRESS_MODES.has(value.mode) &&
    Array.isArray(value.allow) && value.allow.every((a) => typeof a === "string");
}

const COUNT = (v: unknown) =>
  v === null || (typeof v === "number" && Number.isInteger(v) && v >= 0);

function isCodeSync(value: unknown): boolean {
  return isObject(value) && value.mode === "git" &&
    (value.guest_head === null ||
      (typeof value.guest_head === "string" && /^[0-9a-f]{40,64}$/.test(value.guest_head))) &&
    COUNT(value.ahead) && COUNT(value.behind) &&
    typeof value.checked_at === "string" && RFC3339.test(value.checked_at);
}

function isReaped(value: unknown): boolean {
  return isObject(value) && typeof value.action === "string" && REAP_ACTIONS.has(value.action) &&
    typeof value.at === "string" && RFC3339.test(value.at) && typeof value.reason === "string";
}

function isProvisioned(value: unknown): boolean {
  if (!isObject(value)) return false;
  const { version, last_step, complete, fingerprints } = value;
  if (typeof version !== "number" || !Number.isFinite(version)) return false;
  if (last_step !== null && typeof last_step !== "string") return false;
  if (typeof complete !== "boolean") return false;
  if (fingerprints === undefined) return true;
  if (!isObject(fingerprints)) return false;
  for (const key in fingerprints) if (typeof fingerprints[key] !== "string") return false;
  return true;
}

/** The fast check (one boolean expression, no allocation): the path taken for valid files. */
function isValidRecord(value: unknown): value is Record<string, unknown> {
  if (!isObject(value)) return false;
  const { name, ip, backend, repo_root, provisioned, failure, created_by, reaped, egress } = value;
  const sync = value.code_sync;
  return typeof name === "string" && name !== "" &&
    typeof value.repo === "string" &&
    typeof value.branch === "string" &&
    typeof value.worktree_path === "string" &&
    typeof value.created_at === "string" && RFC3339.test(value.created_at) &&
    typeof value.last_used === "string" && RFC3339.test(value.last_used) &&
    typeof value.status === "string" && STATUS_SET.has(value.status) &&
    (ip === undefined || ip === null || typeof ip === "string") &&
    (backend === undefined || (typeof backend === "string" && backend !== "")) &&
    (repo_root === undefined || typeof repo_root === "string") &&
    (provisioned === undefined || isProvisioned(provisioned)) &&
    (failure === undefined || failure === null || typeof failure === "string") &&
    (created_by === undefined || (typeof created_by === "string" && CREATED_BY.has(created_by))) &&
    (reaped === undefined || isReaped(reaped)) &&
    (egress === undefined || isEgress(egress)) &&
    (sync === undefined || isCodeSync(sync));
}

function explainProvisioned(value: unknown, at: string): void {
  if (!isObject(value)) throw new StateShapeError(at, `expected an object, got ${describe(value)}`);
  if (typeof value.version !== "number" || !Number.isFinite(value.version)) {
    throw new StateShapeError(`${at}.version`, `expected a number, got ${describe(value.version)}`);
  }
  if (value.last_step !== null && typeof value.last_step !== "string") {
    throw new StateShapeError(
      `${at}.last_step`,
      `expected a string or null, got ${describe(value.last_step)}`,
    );
  }
  if (typeof value.complete !== "boolean") {
    throw new StateShapeError(
      `${at}.complete`,
      `expected true or false, got ${describe(value.complete)}`,
    );
  }
  const fp = value.fingerprints;
  if (fp !== undefined) {
    if (!isObject(fp)) {
      throw new StateShapeError(`${at}.fingerprints`, `expected an object, got ${describe(fp)}`);
    }
    for (const key in fp) {
      if (typeof fp[key] !== "string") {
        throw new StateShapeError(
          `${at}.fingerprints.${key}`,
          `expected a string, got ${describe(fp[key])}`,
        );
      }
    }
  }
}

/** The slow path: says exactly what is wrong with an invalid record (always throws). */
function explainRecord(value: unknown, at: string): never {
  if (!isObject(value)) throw new StateShapeError(at, `expected an object, got ${describe(value)}`);
  for (const key of REQUIRED_STRINGS) {
    const v = value[key];
    if (typeof v !== "string") {
      throw new StateShapeError(
        `${at}.${key}`,
        v === undefined ? "missing" : `expected a string, got ${describe(v)}`,
      );
    }
  }
  if (value.name === "") throw new StateShapeError(`${at}.name`, "empty");
  for (const key of ["created_at", "last_used"]) {
    if (!RFC3339.test(value[key] as string)) {
      throw new StateShapeError(
        `${at}.${key}`,
        `expected an RFC 3339 time, got ${describe(value[key])}`,
      );
    }
  }
  if (typeof value.status !== "string" || !STATUS_SET.has(value.status)) {
    throw new StateShapeError(
      `${at}.status`,
      `expected one of ${RECORD_STATUSES.join("|")}, got ${describe(value.status)}`,
    );
  }
  if (value.ip !== undefined && value.ip !== null && typeof value.ip !== "string") {
    throw new StateShapeError(`${at}.ip`, `expected a string or null, got ${describe(value.ip)}`);
  }
  if (
    value.backend !== undefined && (typeof value.backend !== "string" || value.backend === "")
  ) {
    throw new StateShapeError(
      `${at}.backend`,
      `expected a backend name, got ${describe(value.backend)}`,
    );
  }
  if (value.repo_root !== undefined && typeof value.repo_root !== "string") {
    throw new StateShapeError(
      `${at}.repo_root`,
      `expected a string, got ${describe(value.repo_root)}`,
    );
  }
  if (value.provisioned !== undefined) explainProvisioned(value.provisioned, `${at}.provisioned`);
  if (value.failure !== undefined && value.failure !== null && typeof value.failure !== "string") {
    throw new StateShapeError(
      `${at}.failure`,
      `expected a string or null, got ${describe(value.failure)}`,
    );
  }
  if (
    value.created_by !== undefined &&
    (typeof value.created_by !== "string" || !CREATED_BY.has(value.created_by))
  ) {
    throw new StateShapeError(
      `${at}.created_by`,
      `expected "mcp" or no value, got ${describe(value.created_by)}`,
    );
  }
  if (value.egress !== undefined && !isEgress(value.egress)) {
    throw new StateShapeError(
      `${at}.egress`,
      `expected {mode: unrestricted|agent|allowlist|none, allow: [strings]}, got ${
        describe(value.egress)
      }`,
    );
  }
  if (value.reaped !== undefined && !isReaped(value.reaped)) {
    throw new StateShapeError(
      `${at}.reaped`,
      `expected {action: "stopped"|"destroyed", at: RFC 3339 time, reason: string}, got ${
        describe(value.reaped)
      }`,
    );
  }
  if (value.code_sync !== undefined && !isCodeSync(value.code_sync)) {
    throw new StateShapeError(
      `${at}.code_sync`,
      `expected {mode: "git", guest_head: commit id|null, ahead: count|null, behind: ` +
        `count|null, checked_at: RFC 3339 time}, got ${describe(value.code_sync)}`,
    );
  }
  throw new StateShapeError(at, "invalid record");
}

/**
 * Checks one record in place and normalises it: a missing `ip` becomes null and a missing
 * `backend` becomes {@link DEFAULT_RECORD_BACKEND}. Unknown fields are left untouched so they
 * survive a rewrite. Throws {@link StateShapeError} naming the bad field.
 */
export function validateRecord(value: unknown, at = "record"): SandboxRecord {
  if (!isValidRecord(value)) explainRecord(value, at);
  if (value.ip === undefined) value.ip = null;
  if (value.backend === undefined) value.backend = DEFAULT_RECORD_BACKEND;
  return value as unknown as SandboxRecord;
}

/**
 * Checks a parsed state document in place (see {@link validateRecord}) and returns it typed.
 * Accepts tachikoma's version 1 files and this tachikoma's version {@link STATE_VERSION}; any
 * invalid record makes the whole document invalid. Unknown fields are preserved. The caller
 * decides what to do with a version newer than {@link STATE_VERSION}.
 */
export function validateStateFile(value: unknown): StateFile {
  if (!isObject(value)) {
    throw new StateShapeError("(root)", `expected an object, got ${describe(value)}`);
  }
  const version = value.version;
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
    throw new StateShapeError("version", `expected a positive integer, got ${describe(version)}`);
  }
  const vms = value.vms;
  if (!Array.isArray(vms)) {
    throw new StateShapeError(
      "vms",
      vms === undefined ? "missing" : `expected an array, got ${describe(vms)}`,
    );
  }
  for (let i = 0; i < vms.length; i++) validateRecord(vms[i], `vms[${i}]`);
  return value as unknown as StateFile;
}
