/**
 * Spawn benchmark (issue "Sandbox lifecycle core"): `tachikoma spawn <branch> --no-attach` of an
 * already running, provisioned sandbox (the reconnect path: git, state, backend lookup, a real
 * SSH banner probe against a loopback server) against `tachikoma --help`, both as
 * `deno run -A --frozen main.ts …` subprocesses, interleaved. Target: spawn's median wall time
 * at most 1.3× help's. Prints one JSON line.
 *
 * Run: deno run -A --frozen bench/spawn_bench.ts [runs]
 *
 * @module
 */
import { interleave, median, percentile, target } from "./lib.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const runs = Number(Deno.args[0] ?? 20);
const deno = Deno.execPath();
const flags = ["run", "-A", "--frozen"];

const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "tk-bench-spawn-" }));
const repo = `${dir}/myapp`;
const gitConfig = `${dir}/gitconfig`;
await Deno.writeTextFile(gitConfig, "[user]\n\tname = Bench\n\temail = bench@example.invalid\n");

// A loopback "sshd": sends an SSH banner on every connection.
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const port = (listener.addr as Deno.NetAddr).port;
const serving = (async () => {
  for await (const conn of listener) {
    conn.write(new TextEncoder().encode("SSH-2.0-OpenSSH_9.2p1 bench\r\n"))
      .catch(() => {})
      .finally(() => conn.close());
  }
})().catch(() => {});

const env: Record<string, string> = {
  HOME: dir,
  PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
  DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
  GIT_CONFIG_GLOBAL: gitConfig,
  GIT_CONFIG_NOSYSTEM: "1",
  TACHIKOMA_CONFIG_DIR: `${dir}/config`,
  TACHIKOMA_TEST_MEMORY_WORLD: `${dir}/world.json`,
  // The memory guest answers nothing: the one-time setup provisions dry (tests/testing/).
  TACHIKOMA_TEST_PROVISION: "dry",
};

async function run(cmd: string, args: string[], extra: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: repo,
    env: { ...env, ...extra },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${text(out.stderr)}`);
  return text(out.stdout);
}

try {
  await Deno.mkdir(repo);
  await run("git", ["init", "-q", "-b", "main"]);
  await run("git", ["commit", "-q", "--allow-empty", "-m", "init"]);
  await Deno.writeTextFile(
    `${dir}/world.json`,
    JSON.stringify({ defaults: { ssh: { host: "127.0.0.1", port } }, sandboxes: {} }),
  );
  // Setup: create and provision the sandbox once (the credential proxy is not part of this
  // benchmark, so provisioning injects no credential).
  const created = JSON.parse(
    await run(deno, [
      ...flags,
      `${ROOT}tests/testing/memory_main.ts`,
      "spawn",
      "bench",
      "--no-attach",
      "--json",
    ], {
      TACHIKOMA_CREDENTIAL_PROXY: "false",
    }),
  );
  if (created.action !== "created") throw new Error(`setup spawn: ${JSON.stringify(created)}`);
  const again = JSON.parse(
    await run(deno, [
      ...flags,
      `${ROOT}tests/testing/memory_main.ts`,
      "spawn",
      "bench",
      "--no-attach",
      "--json",
    ]),
  );
  if (again.action !== "reconnected" || again.provisioning.ran) {
    throw new Error(`not the reconnect path: ${JSON.stringify(again)}`);
  }

  const samples = await interleave([
    { name: "help", cmd: deno, args: [...flags, `${ROOT}main.ts`, "--help"], env, cwd: repo },
    {
      name: "spawn",
      cmd: deno,
      args: [...flags, `${ROOT}tests/testing/memory_main.ts`, "spawn", "bench", "--no-attach"],
      env,
      cwd: repo,
    },
  ], runs);
  const [help, spawn] = samples.map((s) => median(s.ms));
  target({
    bench: "spawn",
    target: "spawn of a running, provisioned sandbox vs tachikoma --help (median)",
    measured_ms: spawn,
    baseline_ms: help,
    max_ratio: 1.3,
  }, { runs, spawn_p90_ms: Math.round(percentile(samples[1].ms, 90) * 10) / 10 });
} finally {
  listener.close();
  await serving;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
