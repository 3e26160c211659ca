/**
 * Spawn from a stock image (issue "Works with the Incus a user has", performance), on the lab's
 * image server, side by side with the raw API in the same run:
 *
 * - **first pull** (`tachikoma image pull` of `lab:debian/12` after forgetting it), reported on
 *   its own;
 * - **first spawn**: bootstrap (packages installed) and the prepared image kept, reported on its
 *   own;
 * - then, interleaved, a spawn of a new branch (when it returns, a shell or exec works at once)
 *   against the raw sequence on the stock image: create with start, poll the state for IPv4
 *   every 50 ms, exec `true`. The spawn is measured twice: in this process (`spawnSandbox` with
 *   the CLI's own dependencies: what spawn does, comparable with the in-process raw sequence)
 *   and as the CLI (`tachikoma -v spawn <branch> --no-attach`, a `deno run main.ts`
 *   subprocess: what a user waits for, deno's start-up included). Target: in-process spawn
 *   median ≤ 2× raw median; the CLI's ratio is reported beside it. The spawn's step timings say
 *   where the rest goes.
 *
 * Config: credential proxy off, egress unrestricted, `claude_install = "skip"`, 1 CPU, 1 GiB (as
 * the other Incus benches). Prints one JSON line. Needs the lab with its image server.
 * Run: deno run -A --frozen bench/stock_spawn_bench.ts [runs=5]
 *
 * @module
 */
import { RawIncus } from "./raw_incus.ts";
import { info, median, percentile, target } from "./lib.ts";
import { loadConfig } from "../src/config/load.ts";
import { openLifecycleDeps } from "../src/cli/open_deps.ts";
import { spawnSandbox } from "../src/core/spawn.ts";
import type { Reporter } from "../src/lib/progress.ts";
import { IncusClient, incusSocketHttpClient } from "../src/backends/incus/client.ts";
import { labEnv } from "../tests/integration/lab.ts";
import { stockConfig, workspace } from "../tests/integration/stock_lab.ts";
import { ok } from "../tests/testing/run.ts";
import { forgetStock, removeInstances } from "../tests/integration/stock_incus.ts";

const runs = Number(Deno.args[0] ?? 5);
const lab = labEnv();
if (!lab?.imageServer) {
  console.error("stock spawn bench: the lab or its image server is not up (make lab)");
  Deno.exit(1);
}
const server = lab.imageServer;
const USER = "bench";
const http = incusSocketHttpClient(lab.socket);
const client = await IncusClient.open({ socket: lab.socket });

const raw = new RawIncus(http);

/** The sandbox a spawn created (`Created <name>, ready at …`). */
function created(stdout: string): string {
  const m = /^Created (\S+), ready at/m.exec(stdout);
  if (!m) throw new Error(`spawn printed no "Created" line: ${stdout}`);
  return m[1];
}

/** `✓ label — N ms` lines of `-v`, summed by label (numbers and names in labels dropped). */
function steps(stderr: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of stderr.matchAll(/^✓ (.+?)(?: \(.*\))? — (\d+) ms$/gm)) {
    const label = m[1].replace(/ (tachikoma|tkt)-\S+/g, "").replace(/^pulling image .*/, "pull")
      .replace(/^keeping the bootstrapped system.*/, "keeping the prepared image");
    out[label] = (out[label] ?? 0) + Number(m[2]);
  }
  return out;
}

/** Step durations of an in-process spawn. */
function timingReporter(into: Record<string, number>): Reporter {
  return {
    step(label) {
      const t = performance.now();
      const key = label.replace(/ (tachikoma|tkt)-\S+/g, "")
        .replace(/^keeping the bootstrapped system.*/, "keeping the prepared image");
      const done = () => void (into[key] = (into[key] ?? 0) + performance.now() - t);
      return { done, fail: done };
    },
    note() {},
  };
}

/** One spawn in this process, with the configuration the CLI would load. */
async function spawnInProcess(
  env: Record<string, string>,
  cwd: string,
  branch: string,
  into: Record<string, number>,
): Promise<{ ms: number; name: string }> {
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
  const t0 = performance.now();
  const loaded = await loadConfig({ cwd, env: (n) => env[n] });
  const deps = openLifecycleDeps({ loaded, reporter: timingReporter(into) });
  const result = await spawnSandbox(deps, { cwd, branch });
  const ms = performance.now() - t0;
  await (await deps.backend()).close();
  if (result.provisioning.steps[0] !== "bootstrap") throw new Error("no bootstrap step ran");
  return { ms, name: result.name };
}

const ws = await workspace({
  prefix: "benchstock",
  env: stockConfig(lab, {
    TACHIKOMA_SSH_USER: USER,
    TACHIKOMA_CREDENTIAL_PROXY: "false",
    TACHIKOMA_EGRESS: "unrestricted",
  }),
});
const made: string[] = [];
const stamp = Date.now().toString(36);
try {
  await forgetStock(client, { url: server.url, alias: server.stock, user: USER });

  let t0 = performance.now();
  const pulled = JSON.parse(ok(await ws.cli(["image", "pull", "--json"]), "pull").stdout);
  const firstPull = performance.now() - t0;

  t0 = performance.now();
  const first = ok(await ws.cli(["-v", "spawn", "first", "--no-attach"]), "first spawn");
  const firstSpawn = performance.now() - t0;
  const firstName = created(first.stdout);
  made.push(firstName);
  const firstSteps = steps(first.stderr);
  ok(await ws.cli(["destroy", firstName, "--force", "--worktree"]), "destroy");

  const samples = { inproc: [] as number[], cli: [] as number[], raw: [] as number[] };
  const stepSamples: Record<string, number[]> = {};
  const kinds = ["inproc", "raw", "cli"] as const;
  for (let i = -1; i < runs; i++) {
    // round -1 warms caches (the prepared image's first use unpacks it); the order rotates
    const k = (i + 1) % kinds.length;
    const order = [...kinds.slice(k), ...kinds.slice(0, k)];
    for (const kind of order) {
      if (kind === "raw") {
        const name = `tkt-bench-raw-${stamp}-${i + 1}`;
        made.push(name);
        const ms = await raw.launchToExec(name, {
          source: { type: "image", fingerprint: pulled.fingerprint },
          config: { "limits.cpu": "1", "limits.memory": "1024MiB" },
          start: true,
        }, 120_000);
        await removeInstances(client, [name]);
        if (i >= 0) samples.raw.push(ms);
        continue;
      }
      if (kind === "inproc") {
        const into: Record<string, number> = {};
        const { ms, name } = await spawnInProcess(ws.env, ws.repo, `p${i + 1}`, into);
        made.push(name);
        ok(await ws.cli(["destroy", name, "--force", "--worktree"]), "destroy");
        if (i < 0) continue;
        samples.inproc.push(ms);
        for (const [label, v] of Object.entries(into)) (stepSamples[label] ??= []).push(v);
        continue;
      }
      const t0 = performance.now();
      const r = ok(await ws.cli(["-v", "spawn", `c${i + 1}`, "--no-attach"]), "spawn");
      const ms = performance.now() - t0;
      const name = created(r.stdout);
      made.push(name);
      if (!/^✓ Preparing the system/m.test(r.stderr)) throw new Error("no bootstrap step ran");
      if (/keeping the bootstrapped system/.test(r.stderr)) throw new Error("not prepared");
      ok(await ws.cli(["destroy", name, "--force", "--worktree"]), "destroy");
      if (i < 0) continue;
      samples.cli.push(ms);
    }
  }
  const p = median(samples.inproc);
  const c = median(samples.cli);
  const r = median(samples.raw);
  target({
    bench: "incus_stock",
    target: "spawn from the stock image vs raw API create+start+IPv4+exec (median, in process)",
    measured_ms: p,
    baseline_ms: r,
    max_ratio: 2,
  }, {
    runs,
    spawn_p90_ms: Math.round(percentile(samples.inproc, 90)),
    raw_api_p90_ms: Math.round(percentile(samples.raw, 90)),
  });
  info({
    bench: "incus_stock",
    image: `lab:${server.stock}`,
    first_pull_ms: Math.round(firstPull),
    first_spawn_ms: Math.round(firstSpawn),
    first_spawn_steps_ms: firstSteps,
    spawn_steps_median_ms: Object.fromEntries(
      Object.entries(stepSamples).map(([k, v]) => [k, Math.round(median(v))]),
    ),
    cli_spawn_median_ms: Math.round(c),
    cli_ratio: Number((c / r).toFixed(3)),
    // deno start-up, module loading, config and state as a separate process
    cli_minus_in_process_median_ms: Math.round(c - p),
  });
} finally {
  await ws.cli(["proxy", "stop"]).catch(() => {});
  await removeInstances(client, made);
  client.close();
  http.close();
  await ws.remove();
}
