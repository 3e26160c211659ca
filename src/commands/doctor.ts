/**
 * `tachikoma doctor`: checks this machine and prints one line per check.
 * Exits 1 when a required check fails.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { renderTable } from "../lib/table.ts";
import { runChecks } from "../doctor/mod.ts";
import { defaultRunner } from "../lib/process.ts";
import { configDir, homeDir } from "../config/paths.ts";
import { errorMessage, RuntimeError } from "../lib/errors.ts";
import type { Config } from "../config/schema.ts";

/** Runs the checks. */
export async function run(ctx: CommandContext): Promise<void> {
  let config: Config | null = null;
  let configError: string | undefined;
  try {
    config = (await ctx.config()).config;
  } catch (error) {
    configError = errorMessage(error);
  }
  const results = await runChecks({
    runner: defaultRunner,
    config,
    configError,
    stateDir: configDir(),
    home: homeDir(),
    os: Deno.build.os,
    arch: Deno.build.arch,
  });
  const failed = results.filter((r) => !r.ok && r.required);
  ctx.out.result(
    { ok: failed.length === 0, checks: results.map((r) => ({ ...r, required: !!r.required })) },
    () =>
      renderTable([
        {
          header: "",
          value: (r: typeof results[number]) => r.ok ? "ok" : r.required ? "FAIL" : "warn",
        },
        { header: "CHECK", value: (r) => r.name },
        {
          header: "RESULT",
          value: (r) => r.ok ? r.message : `${r.message}${r.hint ? ` — ${r.hint}` : ""}`,
        },
      ], results),
  );
  if (failed.length) {
    throw new RuntimeError(
      "doctor_failed",
      `${failed.length} required check${failed.length === 1 ? "" : "s"} failed: ${
        failed.map((f) => f.name).join(", ")
      }`,
    );
  }
}
