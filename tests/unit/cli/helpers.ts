/**
 * Runs the real CLI (`deno run main.ts …`) as a subprocess for CLI-level tests.
 *
 * @module
 */

/** What a CLI run produced. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

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
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--frozen",
      options.env?.TACHIKOMA_TEST_MEMORY_WORLD ? MEMORY_MAIN : MAIN,
      ...args,
    ],
    cwd: options.cwd,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: home,
      TACHIKOMA_CONFIG_DIR: `${home}/.config/tachikoma`,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
      ...options.env,
    },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
