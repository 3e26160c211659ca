/**
 * Startup benchmark (issues "Project foundation", "Foundation, second pass"): `tachikoma --help`
 * and `tachikoma list --json --all` with 1,000 state entries, against `deno run` of an empty
 * script, interleaved in one run. Target: each at most 1.3× the baseline's median wall time.
 *
 * `list` runs through tests/testing/memory_main.ts (the in-memory engine stands in for Incus);
 * `memory_engine_1000` is that engine alone (open the world file, list it) in a process of its
 * own, so its share of the `list` row can be told apart from the CLI's. See bench/README.md.
 *
 * Run: deno run -A --frozen bench/startup_bench.ts [runs]
 *
 * @module
 */
import { info, interleave, median, percentile, target } from "./lib.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const runs = Number(Deno.args[0] ?? 30);

const dir = await Deno.makeTempDir({ prefix: "tk-bench-startup-" });
const now = new Date().toISOString();
const vms = Array.from({ length: 1000 }, (_, i) => ({
  name: `tachikoma-app-branch-${i}`,
  repo: "app",
  branch: `branch-${i}`,
  worktree_path: `/src/app-branch-${i}`,
  created_at: now,
  last_used: now,
  status: i % 2 ? "running" : "stopped",
  ip: i % 2 ? `10.0.${Math.floor(i / 250)}.${i % 250}` : null,
  // The engine that is open: memory_main.ts opens the memory world under every engine name,
  // and that engine calls itself `memory`. Records of another backend would all take the
  // "belongs to another backend" path (status unknown, a warning) and skip the live merge.
  backend: "memory",
}));
await Deno.mkdir(`${dir}/config`, { recursive: true });
await Deno.writeTextFile(`${dir}/config/state.json`, JSON.stringify({ version: 2, vms }, null, 2));
const world = {
  sandboxes: Object.fromEntries(
    vms.map((v) => [v.name, { state: v.status, address_at: v.ip ? 0 : null }]),
  ),
};
await Deno.writeTextFile(`${dir}/world.json`, JSON.stringify(world));

const env = {
  HOME: dir,
  TACHIKOMA_CONFIG_DIR: `${dir}/config`,
  TACHIKOMA_TEST_MEMORY_WORLD: `${dir}/world.json`,
  PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
  DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
};
const deno = Deno.execPath();
const flags = ["run", "-A", "--frozen"];

// The row must exercise the real path: every entry merged with the engine's live state, no
// warning. Checked once before timing, so the bench cannot drift back to the `unknown` path.
{
  const out = await new Deno.Command(deno, {
    args: [...flags, `${ROOT}tests/testing/memory_main.ts`, "list", "--json", "--all"],
    env,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success || stderr.trim() !== "") throw new Error(`list --json: ${stderr}`);
  const doc = JSON.parse(new TextDecoder().decode(out.stdout));
  const live = doc.sandboxes.filter((s: { status: string; recorded_status: string }) =>
    s.status === s.recorded_status && s.status !== "unknown"
  );
  if (doc.sandboxes.length !== vms.length || live.length !== vms.length) {
    throw new Error(`list --json: ${live.length} of ${doc.sandboxes.length} merged live`);
  }
}
const samples = await interleave([
  { name: "baseline", cmd: deno, args: [...flags, `${ROOT}bench/empty.ts`], env, cwd: dir },
  { name: "help", cmd: deno, args: [...flags, `${ROOT}main.ts`, "--help"], env, cwd: dir },
  {
    name: "list_json_1000",
    cmd: deno,
    args: [...flags, `${ROOT}tests/testing/memory_main.ts`, "list", "--json", "--all"],
    env,
    cwd: dir,
  },
  {
    name: "memory_engine_1000",
    cmd: deno,
    args: [...flags, `${ROOT}bench/memory_list.ts`],
    env,
    cwd: dir,
  },
], runs);
const base = median(samples[0].ms);
for (const s of samples.slice(1)) {
  if (s.name === "memory_engine_1000") {
    // The test engine's own cost inside list_json_1000 (not production code): for reading it.
    info({
      bench: "startup",
      name: "memory engine alone: open the world, list 1,000",
      median_ms: +median(s.ms).toFixed(1),
      ratio_to_baseline: +(median(s.ms) / base).toFixed(2),
    });
    continue;
  }
  target({
    bench: "startup",
    target: `${s.name === "help" ? "tachikoma --help" : "tachikoma list --json, 1,000 entries"}` +
      " vs deno run of an empty script (median)",
    measured_ms: median(s.ms),
    baseline_ms: base,
    max_ratio: 1.3,
  }, { runs, p90_ms: +percentile(s.ms, 90).toFixed(1) });
}
await Deno.remove(dir, { recursive: true });
