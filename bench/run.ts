/**
 * `make bench`: runs every benchmark, one after the other (they must not compete for the CPU),
 * and prints every target with its ratio against the baseline measured in the same run, and
 * whether it passed. A bench that needs the Incus lab is skipped, with the reason, when the lab
 * is down. The JSON lines of the run are kept in `bench/results/<time>.jsonl`.
 *
 * Exit status: 0 when every target that ran passed; 1 when one failed or a bench broke.
 *
 * Usage: deno run -A --frozen bench/run.ts [--quick] [name…]   (names: startup spawn proxy egress mcp incus stock bases)
 *
 * @module
 */
import { labEnv, labSkipReason } from "../tests/integration/lab.ts";
import type { TargetLine } from "./lib.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** One benchmark program. */
interface Bench {
  name: string;
  file: string;
  args: string[];
  quickArgs: string[];
  /** Why it cannot run here, or null. */
  skip: () => string | null;
}

const BENCHES: Bench[] = [
  { name: "startup", file: "startup_bench.ts", args: [], quickArgs: ["10"], skip: () => null },
  { name: "spawn", file: "spawn_bench.ts", args: [], quickArgs: ["8"], skip: () => null },
  { name: "proxy", file: "proxy_bench.ts", args: [], quickArgs: ["--quick"], skip: () => null },
  { name: "egress", file: "egress_bench.ts", args: [], quickArgs: ["--quick"], skip: () => null },
  { name: "mcp", file: "mcp_http_bench.ts", args: [], quickArgs: ["--quick"], skip: () => null },
  {
    name: "incus",
    file: "incus_bench.ts",
    args: [],
    quickArgs: ["2", "6"],
    skip: () => labEnv() ? null : labSkipReason ?? "the Incus lab is not up (make lab)",
  },
  {
    name: "stock",
    file: "stock_spawn_bench.ts",
    args: [],
    quickArgs: ["2"],
    skip: () =>
      labEnv()?.imageServer ? null : labSkipReason ?? "the lab's image server is not up (make lab)",
  },
  {
    name: "bases",
    file: "bases_bench.ts",
    args: [],
    quickArgs: ["1"],
    skip: () => labEnv() ? null : labSkipReason ?? "the Incus lab is not up (make lab)",
  },
];

/** What one bench produced. */
interface Outcome {
  bench: string;
  skipped?: string;
  /** It exited non-zero or reported no target. */
  broken?: string;
  targets: TargetLine[];
  infos: Record<string, unknown>[];
}

async function runBench(b: Bench, quick: boolean, log: string[]): Promise<Outcome> {
  const skipped = b.skip();
  if (skipped) return { bench: b.name, skipped, targets: [], infos: [] };
  console.error(`bench: ${b.name} (${b.file})…`);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", `${ROOT}bench/${b.file}`, ...(quick ? b.quickArgs : b.args)],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = new TextDecoder().decode((await child.output()).stdout);
  const status = await child.status;
  const targets: TargetLine[] = [];
  const infos: Record<string, unknown>[] = [];
  for (const line of out.split("\n")) {
    if (!line.trim()) continue;
    log.push(line);
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(line);
    } catch {
      console.error(`${b.name}: ${line}`);
      continue;
    }
    if (doc.kind === "target") targets.push(doc as unknown as TargetLine);
    else infos.push(doc);
  }
  const broken = status.code !== 0
    ? `${b.file} exited ${status.code}`
    : targets.length === 0
    ? `${b.file} reported no target`
    : undefined;
  return { bench: b.name, broken, targets, infos };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

const ms = (x: number) => x >= 100 ? `${x.toFixed(0)} ms` : `${x.toFixed(2)} ms`;

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const only = Deno.args.filter((a) => !a.startsWith("--"));
  const unknown = only.filter((n) => !BENCHES.some((b) => b.name === n));
  if (unknown.length) {
    console.error(`unknown bench ${unknown.join(", ")}; known: ${BENCHES.map((b) => b.name)}`);
    Deno.exit(2);
  }
  const log: string[] = [];
  const outcomes: Outcome[] = [];
  for (const b of BENCHES) {
    if (only.length && !only.includes(b.name)) continue;
    outcomes.push(await runBench(b, quick, log));
  }
  const rows = [["BENCH", "TARGET", "MEASURED", "BASELINE", "RATIO", "MAX", "RESULT"]];
  for (const o of outcomes) {
    for (const t of o.targets) {
      rows.push([
        o.bench,
        t.target,
        ms(t.measured_ms),
        ms(t.baseline_ms),
        `${t.ratio.toFixed(2)}×`,
        `${t.max_ratio.toFixed(2)}×`,
        t.pass ? "pass" : "FAIL",
      ]);
    }
    if (o.skipped) rows.push([o.bench, "—", "", "", "", "", `skipped: ${o.skipped}`]);
    if (o.broken) rows.push([o.bench, "—", "", "", "", "", `BROKEN: ${o.broken}`]);
  }
  console.log(table(rows));
  const notes = outcomes.flatMap((o) => o.targets.filter((t) => t.note).map((t) => t.note!));
  if (notes.length) console.log(`\nlimits from time budgets: ${[...new Set(notes)].join("; ")}`);
  const infos = outcomes.flatMap((o) => o.infos);
  for (const i of infos) {
    if (typeof i.ratio === "number") {
      console.log(`info: ${i.bench}: ${i.target}: ${(i.ratio as number).toFixed(2)}×`);
    }
  }
  const all = outcomes.flatMap((o) => o.targets);
  const failed = all.filter((t) => !t.pass).length;
  const broken = outcomes.filter((o) => o.broken).length;
  const skipped = outcomes.filter((o) => o.skipped).length;
  console.log(
    `\n${all.length - failed} passed, ${failed} failed, ${skipped} bench${
      skipped === 1 ? "" : "es"
    } skipped${broken ? `, ${broken} broken` : ""}`,
  );
  try {
    await Deno.mkdir(`${ROOT}bench/results`, { recursive: true });
    const file = `${ROOT}bench/results/${new Date().toISOString().replace(/[:.]/g, "-")}.jsonl`;
    await Deno.writeTextFile(file, log.join("\n") + "\n");
    console.error(`results: ${file}`);
  } catch (error) {
    console.error(`could not keep the results: ${error}`);
  }
  if (failed || broken) Deno.exit(1);
}
