/**
 * Bases on the Incus lab (issue "Bases and forks"): a base is built once (`image build`, its
 * time and disk use reported), then, interleaved in the same run:
 *
 * - `tachikoma spawn <branch> --from <base> --no-attach` followed by `tachikoma exec -- true` in
 *   the new worktree (two `deno run` subprocesses: what a user waits for), against
 * - the raw Incus sequence on the API: copy the base's checkpoint into a new container, start
 *   it, poll its state every 50 ms for an IPv4 address, exec `true`.
 *
 * Target: spawn from a base to a working exec ≤ 1.5× the raw sequence (median). Also reported
 * (info): a fresh `spawn` (from the image, every step) to a working exec, and pixels' claimed
 * ~5 s from a base.
 *
 * Prints one JSON line per target (bench/lib.ts). Needs the lab (make lab); exits 2 without it.
 * With `BENCH_OTHER_TREE=<checkout>` the same fork is also made by that tree's `main.ts` (e.g. the
 * commit before a change), interleaved, and reported beside it (`other`).
 *
 * Run: deno run -A --frozen bench/bases_bench.ts [runs=3]; with `BENCH_VERBOSE=1` each fork's
 * `spawn -v` step lines (with their durations) go to stderr, to see where the time goes.
 *
 * @module
 */
import { RawIncus } from "./raw_incus.ts";
import { info, median, percentile, target } from "./lib.ts";
import { incusSocketHttpClient } from "../src/backends/incus/client.ts";
import { LAB_EGRESS_ALLOW, labEnv } from "../tests/integration/lab.ts";
import { freePort } from "../tests/testing/free_port.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const runs = Number(Deno.args[0] ?? 3);
const verbose = Deno.env.get("BENCH_VERBOSE") === "1";
const otherTree = Deno.env.get("BENCH_OTHER_TREE")?.replace(/\/$/, "");
const lab = labEnv();
if (!lab) {
  console.error("bases bench: the lab is not up (make lab)");
  Deno.exit(2);
}
const { socket, image } = lab;
const http = incusSocketHttpClient(socket);

const raw = new RawIncus(http);

const stamp = Date.now().toString(36);
const top = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "tk-bench-bases-" });
const repo = `${top}/tkt-benchb-${stamp}`;
const cfg = `${top}/config`;
const base = `benchb-${stamp}`;
const realHome = Deno.env.get("HOME") ?? "/root";
const env: Record<string, string> = {
  PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
  HOME: `${top}/home`,
  DENO_DIR: Deno.env.get("DENO_DIR") ?? `${realHome}/.cache/deno`,
  TACHIKOMA_CONFIG_DIR: cfg,
  TACHIKOMA_BASE_IMAGE: image,
  TACHIKOMA_INCUS_SOCKET: socket,
  TACHIKOMA_CREDENTIAL_PROXY: "false",
  // its own proxy port: never a test's (or a user's) proxy on the default one
  TACHIKOMA_CREDENTIAL_PROXY_PORT: String(freePort()),
  TACHIKOMA_CLAUDE_INSTALL: "skip",
  TACHIKOMA_EGRESS_ALLOW: LAB_EGRESS_ALLOW,
  TACHIKOMA_VM_CPUS: "1",
  TACHIKOMA_VM_MEMORY: "1024",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_AUTHOR_NAME: "bench",
  GIT_AUTHOR_EMAIL: "bench@example.invalid",
  GIT_COMMITTER_NAME: "bench",
  GIT_COMMITTER_EMAIL: "bench@example.invalid",
};

async function cli(
  args: string[],
  cwd = repo,
  main = `${ROOT}main.ts`,
): Promise<{ ms: number; stdout: string; stderr: string }> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", main, ...args],
    cwd,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // stderr's lines stamped with the ms since the process started (BENCH_VERBOSE's profile)
  let stderr = "";
  const stamped = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      const at = Math.round(performance.now() - t0);
      stderr += chunk.replace(/^(?=.)/gm, `[${String(at).padStart(5)} ms] `);
    }
  })();
  const stdout = new Response(child.stdout).text();
  const [status] = await Promise.all([child.status, stamped]);
  const ms = performance.now() - t0;
  if (!status.success) throw new Error(`tachikoma ${args.join(" ")}: ${stderr}`);
  return { ms, stdout: await stdout, stderr };
}

/** spawn (from the base, or fresh) then `exec -- true` in its worktree; returns ms and name. */
async function spawnToExec(
  branch: string,
  from?: string,
  main?: string,
): Promise<{ ms: number; name: string }> {
  // -v prints the step lines only without --json: the sandbox is then looked up by `list`
  const profile = verbose && from !== undefined;
  const spawned = await cli(
    [
      "spawn",
      branch,
      ...(from ? ["--from", from] : []),
      "--no-attach",
      profile ? "-v" : "--json",
    ],
    repo,
    main,
  );
  const doc = profile
    ? JSON.parse((await cli(["list", "--json"])).stdout).sandboxes
      .find((s: { branch: string }) => s.branch === branch)
    : JSON.parse(spawned.stdout);
  const exec = await cli(["exec", "--", "true"], doc.worktree_path, main);
  if (profile) {
    const steps = spawned.stderr.split("\n").map((l) => l.slice(0, 160));
    console.error(
      `--- spawn --from ${from}: ${Math.round(spawned.ms)} ms, exec ${Math.round(exec.ms)} ms`,
    );
    console.error(steps.join("\n"));
  }
  return { ms: spawned.ms + exec.ms, name: doc.name };
}

const made: string[] = [];
try {
  await Deno.mkdir(`${top}/home`);
  await Deno.mkdir(repo);
  await Deno.mkdir(cfg);
  await Deno.writeTextFile(
    `${cfg}/config.toml`,
    `[bases.${base}]\nimage = "${image}"\nsetup = "echo bench > /etc/tk-bench"\n`,
  );
  for (
    const args of [["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]]
  ) {
    const out = await new Deno.Command("git", { args, cwd: repo, env, clearEnv: true }).output();
    if (!out.success) throw new Error(`git ${args.join(" ")} failed`);
  }
  const build = await cli(["image", "build", base, "--json"]);
  const built = JSON.parse(build.stdout).bases[0];
  made.push(built.sandbox);
  info({
    bench: "bases",
    what: "image build of a base from the lab image (provision + setup, stop, checkpoint)",
    build_ms: Math.round(build.ms),
    // the engine's size of the checkpoint, else the root file system's, measured at build time
    size_bytes: built.size_bytes,
  });

  const samples = {
    fork: [] as number[],
    raw: [] as number[],
    fresh: [] as number[],
    other: [] as number[],
  };
  for (let i = -1; i < runs; i++) {
    // round -1 warms caches; the order alternates so neither side always goes first
    const kinds = otherTree ? ["fork", "raw", "other"] as const : ["fork", "raw"] as const;
    const order = i % 2 === 0 ? kinds : [...kinds].reverse();
    for (const kind of order) {
      if (kind === "other") {
        const r = await spawnToExec(`other-${i + 1}`, base, `${otherTree}/main.ts`);
        made.push(r.name);
        await cli(["destroy", r.name, "--force"]);
        if (i >= 0) samples.other.push(r.ms);
      } else if (kind === "fork") {
        const r = await spawnToExec(`fork-${i + 1}`, base);
        made.push(r.name);
        await cli(["destroy", r.name, "--force"]);
        if (i >= 0) samples.fork.push(r.ms);
      } else {
        const name = `tkt-benchb-raw-${stamp}-${i + 1}`;
        made.push(name);
        const ms = await raw.launchToExec(name, {
          source: { type: "copy", source: `${built.sandbox}/base`, instance_only: true },
        });
        await raw.remove(name);
        if (i >= 0) samples.raw.push(ms);
      }
    }
    if (i >= 0) {
      const fresh = await spawnToExec(`fresh-${i + 1}`);
      made.push(fresh.name);
      await cli(["destroy", fresh.name, "--force"]);
      samples.fresh.push(fresh.ms);
    }
  }
  const f = median(samples.fork);
  const r = median(samples.raw);
  target({
    bench: "bases",
    target: "spawn --from a base to a working exec vs the raw Incus copy/start/IPv4/exec (median)",
    measured_ms: f,
    baseline_ms: r,
    max_ratio: 1.5,
    note: "tachikoma side: two CLI processes (spawn --no-attach, exec -- true)",
  }, {
    runs,
    fork_p90_ms: Math.round(percentile(samples.fork, 90)),
    raw_p90_ms: Math.round(percentile(samples.raw, 90)),
  });
  info({
    bench: "bases",
    what: "fresh spawn (from the image, every provisioning step) to a working exec",
    fresh_median_ms: Math.round(median(samples.fresh)),
    fork_median_ms: Math.round(f),
    pixels_claim_ms: 5000,
  });
  if (otherTree) {
    info({
      bench: "bases",
      what: `spawn --from with ${otherTree}/main.ts, interleaved (same base, same rounds)`,
      other_median_ms: Math.round(median(samples.other)),
      other_ratio_to_raw: +(median(samples.other) / r).toFixed(3),
      fork_median_ms: Math.round(f),
    });
  }
} finally {
  // The proxy spawn started for this bench's config dir would keep the port from every later
  // run (a bench or a test) with another config dir.
  await cli(["proxy", "stop"]).catch(() => {});
  for (const name of made) await raw.remove(name);
  await Deno.remove(top, { recursive: true }).catch(() => {});
}
