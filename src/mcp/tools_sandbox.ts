/**
 * Sandbox lifecycle tools: spawn_sandbox, list_sandboxes, sandbox_status, halt_sandbox,
 * destroy_sandbox. Each calls the same core service as the CLI command of the same name.
 *
 * @module
 */
import { z } from "zod";
import { BACKENDS } from "../config/defaults.ts";
import { repoArg, sandboxArg, sandboxDoc, sandboxViewSchema } from "./schemas.ts";
import { changes, READ_ONLY, type ToolSpec } from "./tooling.ts";

const spawnInput = {
  repo: repoArg.describe(
    "Host path of the git repository to work on (absolute, or relative to the directory " +
      "tachikoma mcp was started in). Default: that directory.",
  ),
  branch: z.string().min(1).optional().describe(
    "Branch to get a sandbox for. Default: the repo's current branch. A branch that does not " +
      "exist yet is created from the current HEAD.",
  ),
  backend: z.enum(BACKENDS).optional().describe(
    "Sandbox engine. Default: the configured one (incus on Linux, tart on macOS).",
  ),
  reprovision: z.boolean().optional().describe(
    "Re-run the provisioning steps whose inputs changed (normally only new sandboxes are provisioned).",
  ),
  from: z.string().min(1).optional().describe(
    "Clone a new sandbox from a base (see `tachikoma image list`), a stopped sandbox, or a " +
      "sandbox's checkpoint (`sandbox:label`) instead of creating it from the image: only the " +
      "per-branch provisioning runs. Not used when the branch's sandbox exists.",
  ),
  egress: z.enum(["unrestricted", "agent", "allowlist", "none"]).optional().describe(
    "The sandbox's egress mode, kept for it (network_set changes it later). Default: the mode " +
      "it has, else the configured one. In every mode but unrestricted it reaches only the " +
      "host proxy.",
  ),
};

const spawnOutput = {
  name: z.string().describe("sandbox name: pass it as `sandbox` to the other tools"),
  status: z.literal("running"),
  action: z.enum(["created", "started", "resumed", "reconnected"]),
  address: z.string().describe("the sandbox's IP address"),
  repo: z.string(),
  branch: z.string(),
  branch_created: z.boolean().describe("the branch did not exist and was created"),
  worktree_path: z.string().describe(
    "host path of the branch's worktree; it is /mnt/tachikoma/code inside the sandbox",
  ),
  ssh: z.object({ host: z.string(), port: z.number().int() }),
  provisioning: z.object({
    ran: z.boolean(),
    reason: z.string().nullable(),
    steps: z.array(z.string()),
  }),
};

/** spawn_sandbox */
export const spawnTool: ToolSpec<typeof spawnInput, typeof spawnOutput> = {
  name: "spawn_sandbox",
  title: "Spawn a sandbox for a branch",
  description:
    "Create, start or reuse the isolated Linux sandbox of a git branch and wait until it is " +
    "ready (booted, reachable, provisioned). The branch gets its own git worktree on the host, " +
    "mounted read-write at /mnt/tachikoma/code in the sandbox. Idempotent: calling it for a " +
    "running sandbox just reconnects. Can take minutes for a new sandbox; sends progress " +
    "notifications when the request has a progressToken. Never opens a shell: use " +
    "exec_in_sandbox and the file tools with the returned name.",
  input: spawnInput,
  output: spawnOutput,
  annotations: changes(false, true),
  async run(args, call) {
    const service = await call.service({ repo: args.repo, backend: args.backend });
    const result = await service.spawn({
      branch: args.branch,
      reprovision: args.reprovision,
      from: args.from,
      egress: args.egress,
      // A sandbox made here is the MCP daemon's reaper's to stop and delete.
      createdBy: "mcp",
    });
    // Provisioning can take minutes: the sandbox counts as used when it is handed over.
    await service.touch(result.name);
    return {
      data: {
        name: result.name,
        status: "running",
        action: result.action,
        address: result.address,
        repo: result.record.repo,
        branch: result.record.branch,
        branch_created: result.worktree.branchCreated,
        worktree_path: result.worktree.path,
        ssh: { host: result.endpoint.host, port: result.endpoint.port },
        provisioning: {
          ran: result.provisioning.ran,
          reason: result.provisioning.reason,
          steps: result.provisioning.steps,
        },
      },
    };
  },
};

const listInput = {
  repo: repoArg.describe(
    "Only the sandboxes of this repository (host path). Default: the repository tachikoma mcp " +
      "was started in, or every sandbox when it was not started in one.",
  ),
  all: z.boolean().optional().describe("List the sandboxes of every repository."),
};

const listOutput = {
  sandboxes: z.array(sandboxViewSchema),
  warnings: z.array(z.string()).describe("e.g. the engine could not be reached"),
};

/** list_sandboxes */
export const listTool: ToolSpec<typeof listInput, typeof listOutput> = {
  name: "list_sandboxes",
  title: "List sandboxes",
  description: "List tachikoma's sandboxes with their live status (running, stopped, failed, " +
    "missing…), branch, address and worktree path.",
  input: listInput,
  output: listOutput,
  annotations: READ_ONLY,
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    const result = await service.list({ all: args.all ?? false });
    return {
      data: { sandboxes: result.sandboxes.map(sandboxDoc), warnings: result.warnings },
    };
  },
};

const nameInput = { sandbox: sandboxArg, repo: repoArg };

const statusOutput = { sandbox: sandboxViewSchema, warnings: z.array(z.string()) };

/** sandbox_status */
export const statusTool: ToolSpec<typeof nameInput, typeof statusOutput> = {
  name: "sandbox_status",
  title: "Show one sandbox",
  description: "Show one sandbox: live status, address, branch, worktree path, provisioning.",
  input: nameInput,
  output: statusOutput,
  annotations: READ_ONLY,
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    const result = await service.status(args.sandbox);
    return { data: { sandbox: sandboxDoc(result.sandbox), warnings: result.warnings } };
  },
};

const haltOutput = {
  name: z.string(),
  status: z.enum(["stopped", "suspended"]),
  previous: z.string().describe("live state before (missing: the engine no longer had it)"),
};

/** halt_sandbox */
export const haltTool: ToolSpec<typeof nameInput, typeof haltOutput> = {
  name: "halt_sandbox",
  title: "Stop a sandbox",
  description: "Stop a sandbox (graceful shutdown, forced after a timeout). Its disk and " +
    "worktree are kept; spawn_sandbox starts it again.",
  input: nameInput,
  output: haltOutput,
  annotations: changes(false, true),
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    const result = await service.halt(args.sandbox);
    return { data: { name: result.name, status: result.status, previous: result.previous } };
  },
};

const destroyInput = {
  ...nameInput,
  worktree: z.boolean().optional().describe(
    "Also remove the branch's worktree on the host when it has no uncommitted changes " +
      "(the branch itself is kept).",
  ),
};

const destroyOutput = {
  name: z.string(),
  was_missing: z.boolean().describe("the engine no longer had it; only the state entry went"),
  worktree_path: z.string(),
  worktree_removed: z.boolean(),
  worktree_kept_reason: z.string().nullable(),
};

/** destroy_sandbox */
export const destroyTool: ToolSpec<typeof destroyInput, typeof destroyOutput> = {
  name: "destroy_sandbox",
  title: "Delete a sandbox",
  description: "Delete a sandbox and its state entry for good: everything inside it that is " +
    "not in the worktree (/mnt/tachikoma/code) is lost. The worktree stays on the host unless " +
    "`worktree` is true and it is clean.",
  input: destroyInput,
  output: destroyOutput,
  annotations: changes(true, false),
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    const [record] = await service.destroyTargets({ name: args.sandbox });
    const outcome = await service.destroy(record, { worktree: args.worktree ?? false });
    return { data: { ...outcome } };
  },
};

const pullOutput = {
  name: z.string(),
  branch: z.string(),
  mode: z.enum(["share", "git"]).describe(
    "share: the sandbox mounts the host worktree (nothing to pull); git: code by git",
  ),
  action: z.enum(["shared", "up_to_date", "fast_forward", "behind"]),
  from: z.string().nullable().describe("host branch head before"),
  to: z.string().nullable().describe("host branch head after"),
  guest_head: z.string().nullable(),
  commits: z.number().int().describe("commits the host branch gained"),
  worktree_updated: z.boolean(),
  ref: z.string().nullable().describe("private host ref holding the sandbox's branch"),
  notice: z.string().nullable(),
};

/** pull_sandbox */
export const pullTool: ToolSpec<typeof nameInput, typeof pullOutput> = {
  name: "pull_sandbox",
  title: "Bring a sandbox's commits to the host branch",
  description: "For a sandbox whose engine cannot mount the host (code by git: remote Incus, " +
    "TrueNAS): fast-forwards the host branch (and its worktree) to the sandbox's commits on " +
    "the branch. Diverged histories are refused with both commits named; nothing is changed. " +
    "A sandbox that shares the host worktree has nothing to pull.",
  input: nameInput,
  output: pullOutput,
  annotations: changes(false, true),
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    const record = await service.resolve(args.sandbox);
    const { pullSandbox } = await import("../core/code_sync.ts");
    const result = await pullSandbox(service.deps, record);
    return { data: { ...result } };
  },
};
