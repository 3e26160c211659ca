/**
 * `tachikoma destroy|delete [name] [--force] [--all] [--worktree]`: delete sandboxes and their
 * state entries. Asks for confirmation on a terminal; without a terminal it refuses unless
 * `--force`. `--worktree` also removes each worktree when it is clean (never the main
 * checkout, never uncommitted work); the branch is kept.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import type { DestroyOutcome } from "../core/service_types.ts";
import { UsageError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { confirm } from "../lib/prompt.ts";

/** Options from the command line. */
export interface DestroyOptions {
  name?: string;
  force: boolean;
  all: boolean;
  worktree: boolean;
}

/** Runs destroy. */
export async function run(ctx: CommandContext, opts: DestroyOptions): Promise<void> {
  const service = await ctx.app.service();
  const targets = await service.destroyTargets({ name: opts.name, all: opts.all });
  if (targets.length === 0) {
    ctx.out.result({ destroyed: [], aborted: false }, () => "No sandboxes to destroy.");
    return;
  }
  for (const t of targets) {
    // Code by git: commits only the guest has are lost with it (as last checked).
    const ahead = t.code_sync?.ahead ?? 0;
    if (ahead > 0) {
      log.warn(
        `${t.name} had ${ahead} commit${ahead === 1 ? "" : "s"} the host branch lacks when last ` +
          `checked: \`tachikoma pull ${t.name}\` first keeps them`,
      );
    }
  }
  if (!opts.force) {
    if (!Deno.stdin.isTerminal()) {
      throw new UsageError("refusing to destroy without confirmation: stdin is not a terminal", {
        hint: "pass --force",
      });
    }
    const names = targets.map((t) => `${t.name} (${t.branch})`).join(", ");
    const extra = opts.worktree ? " and its clean worktree" : "";
    if (!await confirm(`Destroy ${names}${extra}? [y/N] `)) {
      log.info("Aborted");
      ctx.out.result({ destroyed: [], aborted: true }, () => undefined);
      return;
    }
  }
  const destroyed: DestroyOutcome[] = [];
  for (const record of targets) {
    const outcome = await service.destroy(record, { worktree: opts.worktree });
    destroyed.push(outcome);
    if (opts.worktree && !outcome.worktree_removed) {
      log.warn(`kept the worktree ${outcome.worktree_path}: ${outcome.worktree_kept_reason}`);
    }
  }
  ctx.out.result(
    { destroyed, aborted: false },
    () =>
      destroyed.map((d) =>
        `Destroyed ${d.name}${d.worktree_removed ? ` and removed ${d.worktree_path}` : ""}`
      ).join("\n"),
  );
}
