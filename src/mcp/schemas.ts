/**
 * Argument and result schemas shared by several tools (zod 4; the SDK publishes them as JSON
 * Schema), and the conversion of core views into result documents.
 *
 * @module
 */
import { z } from "zod";
import type { SandboxView } from "../core/inventory.ts";

/** The `sandbox` argument: any form the CLI's `[name]` accepts. */
export const sandboxArg = z.string().min(1).describe(
  "Which sandbox: its full name (e.g. tachikoma-myapp-feature-x, as list_sandboxes and " +
    "spawn_sandbox return it), a branch name of the repo, or a unique prefix of either.",
);

/** The optional `repo` argument of the sandbox tools. */
export const repoArg = z.string().min(1).optional().describe(
  "Host path of the git repository that branch names and prefixes refer to (absolute, or " +
    "relative to the directory tachikoma mcp was started in). Default: that directory.",
);

/** A sandbox's provisioning record. */
const provisionedSchema = z.object({
  version: z.number().int().describe("provisioning recipe version"),
  last_step: z.string().nullable().describe("last completed step"),
  complete: z.boolean().describe("every step completed"),
}).nullable();

/** One sandbox as list_sandboxes and sandbox_status return it. */
export const sandboxViewSchema = z.object({
  name: z.string(),
  repo: z.string().describe("repository directory name"),
  branch: z.string(),
  status: z.enum([
    "running",
    "stopped",
    "suspended",
    "starting",
    "stopping",
    "failed",
    "creating",
    "missing",
    "unknown",
  ]).describe(
    "live status: missing = the engine no longer has it; unknown = the engine could not be asked",
  ),
  recorded_status: z.string().describe("status in tachikoma's state file"),
  ip: z.string().nullable().describe("address while running"),
  worktree_path: z.string().describe("the branch's git worktree on the host"),
  repo_root: z.string().nullable(),
  backend: z.string(),
  created_at: z.string(),
  last_used: z.string(),
  failure: z.string().nullable().describe("why it failed, when status is failed"),
  provisioned: provisionedSchema,
  created_by: z.enum(["cli", "mcp"]).describe(
    "mcp: made by these tools; the MCP daemon's reaper stops it when idle and deletes it " +
      "when old (`[mcp] idle_stop_after`, `hard_destroy_after`)",
  ),
  reaped: z.object({
    action: z.enum(["stopped", "destroyed"]),
    at: z.string(),
    reason: z.string(),
  }).nullable().describe("what the reaper last did to it; spawn_sandbox brings it back"),
  code_sync: z.object({
    mode: z.literal("git"),
    guest_head: z.string().nullable(),
    ahead: z.number().int().nullable().describe("sandbox commits the host branch lacks"),
    behind: z.number().int().nullable().describe("host branch commits the sandbox lacks"),
    checked_at: z.string(),
  }).nullable().describe(
    "code by git (the engine cannot mount the host; pull_sandbox brings commits back): " +
      "where the branch stood when last checked; null: the worktree is shared",
  ),
});

/** The result document of one sandbox. */
export type SandboxDoc = z.output<typeof sandboxViewSchema>;

/** Picks exactly the published fields of a core view. */
export function sandboxDoc(view: SandboxView): SandboxDoc {
  return {
    name: view.name,
    repo: view.repo,
    branch: view.branch,
    status: view.status,
    recorded_status: view.recorded_status,
    ip: view.ip,
    worktree_path: view.worktree_path,
    repo_root: view.repo_root,
    backend: view.backend,
    created_at: view.created_at,
    last_used: view.last_used,
    failure: view.failure,
    provisioned: view.provisioned
      ? {
        version: view.provisioned.version,
        last_step: view.provisioned.last_step,
        complete: view.provisioned.complete,
      }
      : null,
    created_by: view.created_by,
    reaped: view.reaped ? { ...view.reaped } : null,
    code_sync: view.code_sync ? { ...view.code_sync } : null,
  };
}
