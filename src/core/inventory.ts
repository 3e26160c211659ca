/**
 * What `list` and `status` show: state records merged with the backend's live view. A record
 * whose sandbox the engine no longer has is `missing`; when the engine cannot be reached (or
 * the record belongs to another backend) the status is `unknown` and a warning says why —
 * listing never fails because of the engine.
 *
 * @module
 */
import type { Backend, SandboxInfo } from "../backends/backend.ts";
import type {
  CodeSyncRecord,
  ProvisionRecord,
  ReapRecord,
  SandboxRecord,
} from "../state/schema.ts";
import { DEFAULT_RECORD_BACKEND } from "../state/schema.ts";
import { errorMessage } from "../lib/errors.ts";

/** Status shown by list/status. */
export type ViewStatus =
  | "running"
  | "stopped"
  | "suspended"
  | "starting"
  | "stopping"
  | "failed"
  | "creating"
  | "missing"
  | "unknown";

/** One sandbox as list/status print it (the `--json` shape, see docs/json.md). */
export interface SandboxView {
  name: string;
  repo: string;
  branch: string;
  /** Live status merged with the record (see the module doc). */
  status: ViewStatus;
  /** What state.json says. */
  recorded_status: SandboxRecord["status"];
  ip: string | null;
  worktree_path: string;
  repo_root: string | null;
  backend: string;
  created_at: string;
  last_used: string;
  /** Why it failed (status `failed`), else null. */
  failure: string | null;
  provisioned: ProvisionRecord | null;
  /** `mcp`: made by the MCP tools (the MCP daemon's reaper may stop and delete it). */
  created_by: "cli" | "mcp";
  /** What the reaper last did to it, else null. */
  reaped: ReapRecord | null;
  /**
   * Code by git (the engine cannot mount the host): where the guest's branch stood against the
   * host branch when last checked; null: the worktree is shared.
   */
  code_sync: CodeSyncRecord | null;
}

/** The live view of the engine, or why there is none. */
export type LiveView = { ok: true; byName: Map<string, SandboxInfo> } | {
  ok: false;
  reason: string;
};

/** Asks the engine for every sandbox; never throws. */
export async function liveView(backend: () => Promise<Backend>): Promise<LiveView> {
  try {
    const list = await (await backend()).list();
    return { ok: true, byName: new Map(list.map((s) => [s.name, s])) };
  } catch (error) {
    return { ok: false, reason: errorMessage(error) };
  }
}

/** The repository a list is scoped to by default (see {@link listSandboxes}). */
export interface RepoScope {
  /** The main checkout's root (records with `repo_root` match on it). */
  mainRoot: string;
  /** The repo's name (older records, without `repo_root`, match on it). */
  name: string;
}

/** What {@link listSandboxes} reads: the service's dependencies, or the CLI's lean `list`. */
export interface ListSources {
  /** The state file's records. */
  records(): Promise<readonly SandboxRecord[]>;
  /** The configured engine (opened once; a failure makes every status `unknown`). */
  backend(): Promise<Backend>;
  /** The configuration's engine name: used when the engine cannot be opened. */
  configuredBackend: string;
  /** The repo around the working directory, or null outside one. */
  repo(): Promise<RepoScope | null>;
}

/** Which records a list shows: one repo by name, every one, or (default) the current repo's. */
export interface ListScope {
  repo?: string;
  all?: boolean;
}

/**
 * Records merged with live status, and the warnings to show. Default scope: the repo around the
 * working directory inside one, else every repo. The engine is asked while the state is read
 * (an API call; a file of every sandbox); with nothing to show its answer is not used.
 */
export async function listSandboxes(
  sources: ListSources,
  scope: ListScope = {},
): Promise<{ sandboxes: SandboxView[]; warnings: string[] }> {
  const asked = liveView(sources.backend);
  let records = await sources.records();
  if (scope.repo !== undefined) {
    records = records.filter((r) => r.repo === scope.repo);
  } else if (!scope.all) {
    const repo = await sources.repo();
    if (repo) {
      records = records.filter((r) =>
        r.repo_root ? r.repo_root === repo.mainRoot : r.repo === repo.name
      );
    }
  }
  const answer = await asked;
  const live: LiveView = records.length ? answer : { ok: true, byName: new Map() };
  const name = await sources.backend().then((b) => b.name, () => sources.configuredBackend);
  const sandboxes = new Array<SandboxView>(records.length);
  for (let i = 0; i < records.length; i++) sandboxes[i] = viewOf(records[i], live, name);
  return { sandboxes, warnings: records.length ? liveWarnings(records, live, name) : [] };
}

/** Merges one record with the live view. */
export function viewOf(record: SandboxRecord, live: LiveView, backendName: string): SandboxView {
  const recordBackend = record.backend ?? DEFAULT_RECORD_BACKEND;
  let status: ViewStatus;
  let ip: string | null = record.ip;
  if (!live.ok || recordBackend !== backendName) {
    status = "unknown";
  } else {
    const info = live.byName.get(record.name);
    if (!info) {
      status = "missing";
      ip = null;
    } else if (record.status === "failed" && info.state === "stopped") {
      status = "failed";
      ip = null;
    } else {
      status = info.state === "unknown" ? "unknown" : info.state;
      ip = info.state === "running" ? info.addresses[0] ?? record.ip : null;
    }
  }
  return {
    name: record.name,
    repo: record.repo,
    branch: record.branch,
    status,
    recorded_status: record.status,
    ip,
    worktree_path: record.worktree_path,
    repo_root: record.repo_root ?? null,
    backend: recordBackend,
    created_at: record.created_at,
    last_used: record.last_used,
    failure: record.failure ?? null,
    provisioned: record.provisioned ?? null,
    created_by: record.created_by ?? "cli",
    reaped: record.reaped ?? null,
    code_sync: record.code_sync ?? null,
  };
}

/** Warnings for a list: the engine was unreachable, or some records belong to another one. */
export function liveWarnings(
  records: readonly SandboxRecord[],
  live: LiveView,
  backendName: string,
): string[] {
  const warnings: string[] = [];
  if (!live.ok) {
    warnings.push(`cannot reach the ${backendName} backend (${live.reason}); status is unknown`);
    return warnings;
  }
  const others = new Set(
    records.map((r) => r.backend ?? DEFAULT_RECORD_BACKEND).filter((b) => b !== backendName),
  );
  for (const other of others) {
    warnings.push(
      `some sandboxes belong to the ${other} backend; their status is unknown with ${backendName}`,
    );
  }
  return warnings;
}

/** `YYYY-MM-DD HH:MM` in UTC (tachikoma's list/status format). */
export function shortTime(rfc3339: string): string {
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return rfc3339;
  return d.toISOString().slice(0, 16).replace("T", " ");
}

/** `↑2 ↓0` for a code-by-git sandbox (`?` for a count not known), `-` for a shared one. */
export function syncText(sync: CodeSyncRecord | null): string {
  if (!sync) return "-";
  return `↑${sync.ahead ?? "?"} ↓${sync.behind ?? "?"}`;
}
