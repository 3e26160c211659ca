/**
 * Runs the real CLI (`deno run main.ts …`) as a subprocess for CLI-level tests.
 *
 * @module
 */
import { type Run, run } from "../../testing/run.ts";

/** What a CLI run produced. */
export type CliResult = Run;

const MAIN = new URL("../../../main.ts", import.meta.url).pathname;
const MEMORY_MAIN = new URL("../../testing/memory_main.ts", import.meta.url).pathname;

/**
 * Runs `main.ts` with `args`; env is added to a minimal clean environment. With
 * `TACHIKOMA_TEST_MEMORY_WORLD` in env, the entry point with the memory engine runs instead.
 */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; stdin?: string } = {},
): Promise<CliResult> {
  const home = options.env?.HOME ?? Deno.makeTempDirSync({ prefix: "tk-home-" });
  return await run(
    Deno.execPath(),
    [
      "run",
      "--allow-all",
      "--frozen",
      options.env?.TACHIKOMA_TEST_MEMORY_WORLD ? MEMORY_MAIN : MAIN,
      ...args,
    ],
    {
      cwd: options.cwd,
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: home,
        TACHIKOMA_CONFIG_DIR: `${home}/.config/tachikoma`,
        DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
        ...options.env,
      },
      stdin: options.stdin,
    },
  );
}
