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

/** A performance target: a measurement against its baseline from the same run, as a ratio. */
export interface TargetLine {
  kind: "target";
  /** The bench file's subject (`startup`, `proxy`…). */
  bench: string;
  /** What is compared with what, e.g. `--help vs deno run of an empty script (median)`. */
  target: string;
  measured_ms: number;
  baseline_ms: number;
  /** measured / baseline. */
  ratio: number;
  /** The target: ratio ≤ max_ratio. */
  max_ratio: number;
  pass: boolean;
  /** How max_ratio was set (e.g. from an added-time budget). */
  note?: string;
}

const round = (x: number, digits = 3) => Number(x.toFixed(digits));

/**
 * Reports a target (`kind: "target"` JSON line; bench/run.ts collects them) and returns it.
 * `extra` adds detail fields (samples, percentiles) to the line.
 */
export function target(
  fields: {
    bench: string;
    target: string;
    measured_ms: number;
    baseline_ms: number;
    max_ratio: number;
    note?: string;
  },
  extra: Record<string, unknown> = {},
): TargetLine {
  const ratio = fields.measured_ms / fields.baseline_ms;
  const line: TargetLine = {
    kind: "target",
    ...fields,
    measured_ms: round(fields.measured_ms),
    baseline_ms: round(fields.baseline_ms),
    ratio: round(ratio),
    max_ratio: round(fields.max_ratio),
    pass: Number.isFinite(ratio) && ratio <= fields.max_ratio,
  };
  report({ ...line, ...extra });
  return line;
}

/**
 * The ratio limit equivalent to "at most `addedMs` more than the baseline": a target given as
 * an added-time budget, checked as a ratio against the same run's baseline.
 */
export function budgetRatio(baselineMs: number, addedMs: number): number {
  return 1 + addedMs / baselineMs;
}

/** Reports a measurement that is information only (`kind: "info"`). */
export function info(fields: Record<string, unknown>): void {
  report({ kind: "info", ...fields });
}
