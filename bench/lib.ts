/**
 * Benchmark helpers: run commands side by side, interleaved, and compare medians. Machines here
 * are noisy, so every target is a ratio against a baseline measured in the same run.
 *
 * @module
 */

/** A command to time. */
export interface BenchCommand {
  name: string;
  cmd: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
}

/** Timing samples in milliseconds. */
export interface Samples {
  name: string;
  ms: number[];
}

/** Runs a command once and returns its wall time in ms; throws on a non-zero exit. */
export async function timeOnce(c: BenchCommand): Promise<number> {
  const start = performance.now();
  const out = await new Deno.Command(c.cmd, {
    args: c.args,
    env: c.env,
    cwd: c.cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - start;
  if (!out.success) {
    throw new Error(`${c.name} exited ${out.code}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return ms;
}

/** Runs every command `runs` times, interleaved (a, b, c, a, b, c…), after `warmup` rounds. */
export async function interleave(
  commands: BenchCommand[],
  runs: number,
  warmup = 2,
): Promise<Samples[]> {
  for (let i = 0; i < warmup; i++) for (const c of commands) await timeOnce(c);
  const samples = commands.map((c) => ({ name: c.name, ms: [] as number[] }));
  for (let i = 0; i < runs; i++) {
    for (const [j, c] of commands.entries()) samples[j].ms.push(await timeOnce(c));
  }
  return samples;
}

/** The p-th percentile (0–100) of `values`. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

/** The median of `values`. */
export function median(values: number[]): number {
  return percentile(values, 50);
}

/** One result line: JSON on stdout, so runs can be collected. */
export function report(result: Record<string, unknown>): void {
  console.log(JSON.stringify(result));
}
