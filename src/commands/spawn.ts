/**
 * `tachikoma [branch]` / `tachikoma spawn [branch] [--no-attach] [--reprovision]`: create,
 * restart or reuse the branch's sandbox, provision it, then open a shell (unless
 * `--no-attach`). The shell's exit status becomes ours. With `--json` the document is printed
 * once the sandbox is ready and the shell's output goes to stderr.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { type SpawnResult, spawnSandbox } from "../core/spawn.ts";
import { parseMode } from "../core/network.ts";

/** Options from the command line. */
export interface SpawnOptions {
  branch?: string;
  attach: boolean;
  reprovision: boolean;
  /** `--egress MODE`. */
  egress?: string;
}

const VERBS = {
  created: "Created",
  started: "Started",
  resumed: "Resumed",
  reconnected: "Reconnected to",
} as const;

/** The `--json` document of spawn (see docs/json.md). */
export function spawnDocument(result: SpawnResult, attached: boolean): Record<string, unknown> {
  return {
    name: result.name,
    action: result.action,
    status: "running",
    repo: result.record.repo,
    branch: result.record.branch,
    worktree_path: result.worktree.path,
    worktree: {
      action: result.worktree.action,
      branch_created: result.worktree.branchCreated,
      base: result.worktree.base,
      tracking: result.worktree.tracking,
    },
    ip: result.address,
    ssh: { host: result.endpoint.host, port: result.endpoint.port },
    provisioning: result.provisioning,
    egress: result.record.egress ?? null,
    attached,
  };
}

/** Runs spawn. */
export async function run(ctx: CommandContext, opts: SpawnOptions): Promise<void> {
  const egress = opts.egress === undefined ? undefined : parseMode(opts.egress);
  const deps = await ctx.app.lifecycleDeps();
  const result = await spawnSandbox(deps, {
    cwd: ctx.cwd,
    branch: opts.branch,
    reprovision: opts.reprovision,
    egress,
  });
  ctx.out.result(spawnDocument(result, opts.attach), () => {
    const line = `${VERBS[result.action]} ${result.name}, ready at ${result.address}`;
    return opts.attach ? line : `${line}\nworktree: ${result.worktree.path}`;
  });
  if (!opts.attach) return;
  const { interactiveShell } = await import("../core/interactive.ts");
  Deno.exitCode = await interactiveShell(deps, await deps.backend(), result.record, {
    json: ctx.globals.json,
    signal: ctx.signal,
  });
}
