/**
 * `tachikoma pr [name] [--name N] [--draft] [--title T] [--base B]`: commit the sandbox
 * worktree's changes, push the branch and open a pull request, all on the host (the sandbox
 * itself is not touched, and need not be running). See `src/core/pr.ts`.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { checkPrOptions, openPullRequest } from "../core/pr.ts";
import { pullFirst } from "../core/code_sync.ts";
import { UsageError } from "../lib/errors.ts";
import { defaultRunner } from "../lib/process.ts";
import { log } from "../lib/log.ts";

/** Options from the command line. */
export interface PrCommandOptions {
  /** The `[name]` argument. */
  name?: string;
  /** `--name` (tachikoma compatibility). */
  nameFlag?: string;
  draft: boolean;
  title?: string;
  base?: string;
}

/** Runs pr. */
export async function run(ctx: CommandContext, opts: PrCommandOptions): Promise<void> {
  if (opts.name !== undefined && opts.nameFlag !== undefined && opts.name !== opts.nameFlag) {
    throw new UsageError(
      `two different sandboxes given: ${JSON.stringify(opts.name)} and --name ` +
        JSON.stringify(opts.nameFlag),
      { hint: "give one of them" },
    );
  }
  const options = { draft: opts.draft, title: opts.title, base: opts.base };
  checkPrOptions(options);
  const service = await ctx.app.service();
  const record = await service.resolve(opts.name ?? opts.nameFlag);
  // Code by git: the sandbox's commits come to the host branch first.
  const pulled = await pullFirst(service, record);
  if (pulled?.notice) log.info(pulled.notice);
  const result = await openPullRequest(
    { runner: defaultRunner, reporter: ctx.progress, signal: ctx.signal },
    record,
    options,
  );
  await service.touch(record.name);
  if (!result.created) log.info(`a pull request for ${result.branch} was already open`);
  ctx.out.result(result, () => `PR: ${result.url}`);
}
