/**
 * `tachikoma [branch]` / `tachikoma spawn [branch] [--no-attach] [--reprovision] [--from F]`:
 * create (or clone from a base, a sandbox or a checkpoint), restart or reuse the branch's
 * sandbox, provision it, then open a shell (unless `--no-attach`): the persistent session
 * `main` (tmux in the guest; `--no-persist`: a plain shell). The shell's exit status becomes
 * ours. With `--json` the document is printed
 * once the sandbox is ready and the shell's output goes to stderr.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { type SpawnResult, spawnSandbox } from "../core/spawn.ts";
import { forkDocument } from "../core/fork.ts";
import { type BranchPrompt, offerNewBranch } from "../core/quick_start.ts";
import { canPrompt, readLine, terminalIo } from "../lib/prompt.ts";
import { DEFAULT_SESSION } from "../core/sessions.ts";
import { parseMode } from "../core/network.ts";

/** Options from the command line. */
export interface SpawnOptions {
  branch?: string;
  attach: boolean;
  reprovision: boolean;
  /** Attach to the persistent session `main` (false: a plain shell, `--no-persist`). */
  persist?: boolean;
  /** `--from`: a base, a stopped sandbox or `sandbox:checkpoint` to clone a new sandbox from. */
  from?: string;
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
    from: forkDocument(result.from),
    egress: result.record.egress ?? null,
    attached,
  };
}

/** Runs spawn. */
export async function run(ctx: CommandContext, opts: SpawnOptions): Promise<void> {
  const egress = opts.egress === undefined ? undefined : parseMode(opts.egress);
  const deps = await ctx.app.lifecycleDeps();
  let branch = opts.branch;
  if (branch === undefined && !ctx.globals.json && canPrompt()) {
    // The quick start in the main checkout: offer a new branch instead of refusing.
    const choice = await offerNewBranch(deps, { cwd: ctx.cwd, prompt: terminalBranchPrompt });
    if (choice) branch = choice.branch;
  }
  const result = await spawnSandbox(deps, {
    cwd: ctx.cwd,
    branch,
    reprovision: opts.reprovision,
    from: opts.from,
    egress,
  });
  ctx.out.result(spawnDocument(result, opts.attach), () => {
    const line = `${VERBS[result.action]} ${result.name}, ready at ${result.address}`;
    return opts.attach ? line : `${line}\nworktree: ${result.worktree.path}`;
  });
  if (!opts.attach) return;
  const { interactiveShell } = await import("../core/interactive.ts");
  const sandbox = { backend: await deps.backend(), record: result.record };
  Deno.exitCode = await interactiveShell(deps, sandbox, {
    json: ctx.globals.json,
    signal: ctx.signal,
    session: opts.persist === false ? null : DEFAULT_SESSION,
  });
}

/** The branch prompt on the terminal (stderr, one line from stdin). */
const terminalBranchPrompt: BranchPrompt = {
  ask: async ({ message, suggestion }) =>
    await readLine(`${message ? `${message}\n` : ""}New branch name [${suggestion}]: `),
  refuse: async (reason) => await terminalIo.write(`${reason}\n`),
};
