/**
 * Incus backend benchmarks on the lab (issue "Incus lab and backend"), each against a baseline
 * measured in the same run, interleaved:
 *
 * 1. A new sandbox from the cached image to "exec works" through the backend (create, start,
 *    wait for an IPv4 address, exec `true`) against the raw sequence done directly on the API
 *    (launch with start=true, poll the state for IPv4 every 50 ms, exec `true` without
 *    websockets). Target: backend median ≤ 1.3× raw median.
 * 2. `tachikoma exec -- true` (a `deno run -A --frozen main.ts` subprocess, in the worktree of
 *    a spawned sandbox) against `bench/incus_exec_bare.ts`, a Deno program started the same way
 *    that does one bare API exec of `true` (issue "Foundation, second pass"). Target: the median
 *    difference ≤ 60 ms. Also reported: `exec --raw -- true` (no login shell), the bare API
 *    exec from this process (no runtime start), the backend's get + exec in this process, and
 *    `deno run` of an empty script. With `BENCH_OTHER_TREE=<checkout>` the same `exec -- true`
 *    of that tree's `main.ts` (e.g. the commit before a change) runs interleaved too (`other`).
 *
 * Prints one JSON line per target (bench/lib.ts). Needs the lab (make lab); exits 2 without it.
 * Run: deno run -A --frozen bench/incus_bench.ts [launch_runs=5] [exec_runs=15] (0 skips one)
 *
 * @module
 */
import { RawIncus } from "./raw_incus.ts";
import { budgetRatio, median, percentile, target, timeOnce } from "./lib.ts";
import { IncusBackend, IncusClient } from "../src/backends/incus/mod.ts";
import { incusSocketHttpClient } from "../src/backends/incus/client.ts";
import { systemClock } from "../src/lib/clock.ts";
import { LAB_EGRESS_ALLOW, labEnv } from "../tests/integration/lab.ts";
import { freePort } from "../tests/testing/free_port.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const launchRuns = Number(Deno.args[0] ?? 5);
const execRuns = Number(Deno.args[1] ?? 15);
const otherTree = Deno.env.get("BENCH_OTHER_TREE");
const lab = labEnv();
if (!lab) {
  console.error("incus bench: the lab is not up (make lab)");
  Deno.exit(2);
}
const { socket, image } = lab;

// --- the raw API, as directly as it gets -----------------------------------------------------
// Without an idle pool (see incusSocketHttpClient): Incus stalls on silent pooled connections.
const http = incusSocketHttpClient(socket);

const raw = new RawIncus(http);

/** The raw launch: create with start, IPv4, exec `true`. */
function rawLaunchToExec(name: string): Promise<number> {
  return raw.launchToExec(name, {
    source: { type: "image", alias: image },
    config: { "limits.cpu": "1", "limits.memory": "512MiB" },
    start: true,
  });
}

// --- the backend ---------------------------------------------------------------------------
const backend = new IncusBackend(await IncusClient.open({ socket }), {
  endpoint: { socket },
  cpus: 1,
  memoryMb: 512,
  sshUser: "admin",
  sshPort: 22,
});

async function backendLaunchToExec(name: string): Promise<number> {
  const t0 = performance.now();
  await backend.create(name, { image });
  await backend.start(name, { shares: [] });
  await backend.waitForAddress(name, { clock: systemClock, deadline: systemClock.now() + 60_000 });
  const r = await backend.exec(name, { argv: ["true"] });
  if (r.code !== 0) throw new Error(`true exited ${r.code}`);
  return performance.now() - t0;
}

const stamp = Date.now().toString(36);
const made: string[] = [];

async function launchBench(): Promise<void> {
  const samples = { backend: [] as number[], raw: [] as number[] };
  for (let i = -1; i < launchRuns; i++) {
    // round -1 warms caches; the order alternates so neither side always goes first
    const order = i % 2 === 0 ? ["backend", "raw"] as const : ["raw", "backend"] as const;
    for (const kind of order) {
      const name = `tkt-bench-${kind[0]}-${stamp}-${i + 1}`;
      made.push(name);
      const ms = kind === "backend" ? await backendLaunchToExec(name) : await rawLaunchToExec(name);
      await backend.delete(name);
      if (i >= 0) samples[kind].push(ms);
    }
  }
  const b = median(samples.backend);
  const r = median(samples.raw);
  target({
    bench: "incus",
    target: "new sandbox to a working exec: backend vs the raw API sequence (median)",
    measured_ms: b,
    baseline_ms: r,
    max_ratio: 1.3,
  }, {
    runs: launchRuns,
    backend_p90_ms: Math.round(percentile(samples.backend, 90)),
    raw_api_p90_ms: Math.round(percentile(samples.raw, 90)),
  });
}

async function execBench(): Promise<void> {
  const top = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "tk-bench-incus-" });
  const repo = `${top}/tkt-bench-${stamp}`;
  const realHome = Deno.env.get("HOME") ?? "/root";
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: `${top}/home`,
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${realHome}/.cache/deno`,
    TACHIKOMA_CONFIG_DIR: `${top}/config`,
    TACHIKOMA_BASE_IMAGE: image,
    TACHIKOMA_INCUS_SOCKET: socket,
    TACHIKOMA_CREDENTIAL_PROXY: "false",
    TACHIKOMA_CLAUDE_INSTALL: "skip",
    TACHIKOMA_EGRESS_ALLOW: LAB_EGRESS_ALLOW,
    // its own proxy port: never a test's (or a user's) proxy on the default one
    TACHIKOMA_CREDENTIAL_PROXY_PORT: String(freePort()),
    TACHIKOMA_VM_CPUS: "1",
    TACHIKOMA_VM_MEMORY: "1024",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_AUTHOR_NAME: "bench",
    GIT_AUTHOR_EMAIL: "bench@example.invalid",
    GIT_COMMITTER_NAME: "bench",
    GIT_COMMITTER_EMAIL: "bench@example.invalid",
  };
  const deno = Deno.execPath();
  const cli = (args: string[], cwd: string) =>
    new Deno.Command(deno, {
      args: ["run", "-A", "--frozen", `${ROOT}main.ts`, ...args],
      cwd,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  let name = "";
  try {
    await Deno.mkdir(`${top}/home`);
    await Deno.mkdir(repo);
    for (
      const args of [["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]]
    ) {
      const out = await new Deno.Command("git", { args, cwd: repo, env, clearEnv: true }).output();
      if (!out.success) throw new Error(`git ${args.join(" ")} failed`);
    }
    const spawned = await cli(
      ["spawn", "bench", "--backend", "incus", "--no-attach", "--json"],
      repo,
    );
    if (!spawned.success) throw new Error(`spawn: ${new TextDecoder().decode(spawned.stderr)}`);
    const doc = JSON.parse(new TextDecoder().decode(spawned.stdout));
    name = doc.name;
    const worktree: string = doc.worktree_path;
    const tk = {
      name: "tachikoma exec -- true",
      cmd: deno,
      args: ["run", "-A", "--frozen", `${ROOT}main.ts`, "exec", "--", "true"],
      env,
      cwd: worktree,
    };
    const tkRaw = { ...tk, name: "tachikoma exec --raw -- true", args: [...tk.args] };
    tkRaw.args.splice(tkRaw.args.indexOf("exec") + 1, 0, "--raw");
    const other = otherTree === undefined ? undefined : {
      ...tk,
      name: "other tree: exec -- true",
      args: tk.args.map((a) =>
        a.endsWith("/main.ts") ? `${otherTree.replace(/\/$/, "")}/main.ts` : a
      ),
    };
    const bare = {
      name: "bare API exec",
      cmd: deno,
      args: ["run", "-A", "--frozen", `${ROOT}bench/incus_exec_bare.ts`, socket, name],
      env,
      cwd: worktree,
    };
    const empty = {
      name: "deno empty",
      cmd: deno,
      args: ["run", "-A", "--frozen", `${ROOT}bench/empty.ts`],
      env,
      cwd: worktree,
    };
    const samples = {
      tk: [] as number[],
      bare: [] as number[],
      api: [] as number[],
      empty: [] as number[],
      backend: [] as number[],
      raw: [] as number[],
      other: [] as number[],
    };
    for (let i = -2; i < execRuns; i++) {
      // the order alternates so neither tree always runs first
      const o1 = other && i % 2 === 0 ? await timeOnce(other) : 0;
      const t = await timeOnce(tk);
      const o2 = other && i % 2 !== 0 ? await timeOnce(other) : 0;
      const bareMs = await timeOnce(bare);
      const r = await timeOnce(tkRaw);
      let t0 = performance.now();
      await raw.execTrue(name);
      const a = performance.now() - t0;
      // what the backend adds in-process: the state check the CLI makes, then the exec
      t0 = performance.now();
      await backend.get(name);
      await backend.exec(name, { argv: ["true"] });
      const b = performance.now() - t0;
      const e = await timeOnce(empty);
      if (i >= 0) {
        samples.tk.push(t);
        samples.bare.push(bareMs);
        samples.api.push(a);
        samples.empty.push(e);
        samples.backend.push(b);
        samples.raw.push(r);
        if (other) samples.other.push(o1 + o2);
      }
    }
    const tkm = median(samples.tk);
    const barem = median(samples.bare);
    target({
      bench: "incus",
      target: "tachikoma exec -- true vs a Deno program doing one bare API exec of true (median)",
      measured_ms: tkm,
      baseline_ms: barem,
      max_ratio: budgetRatio(barem, 60),
      note: "the budget: at most 60 ms more than the bare exec program",
    }, {
      runs: execRuns,
      tachikoma_exec_p90_ms: Math.round(percentile(samples.tk, 90)),
      bare_exec_process_median_ms: Math.round(barem),
      exec_raw_median_ms: Math.round(median(samples.raw)),
      ...(other ? { other_tree_exec_median_ms: Math.round(median(samples.other)) } : {}),
      api_exec_in_process_median_ms: Math.round(median(samples.api)),
      backend_get_and_exec_median_ms: Math.round(median(samples.backend)),
      deno_empty_script_median_ms: Math.round(median(samples.empty)),
    });
  } finally {
    if (name) await cli(["destroy", name, "--force"], repo).catch(() => {});
    await cli(["proxy", "stop"], repo).catch(() => {});
    if (name) await backend.delete(name).catch(() => {});
    await Deno.remove(top, { recursive: true }).catch(() => {});
  }
}

try {
  if (launchRuns > 0) await launchBench();
  if (execRuns > 0) await execBench();
} finally {
  for (const n of made) await backend.delete(n).catch(() => {});
  await backend.close();
  http.close();
}
