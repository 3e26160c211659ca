/**
 * The MCP daemon (`tachikoma mcp --http`) side by side with stdio in one run: 10 clients call
 * `list_sandboxes` concurrently, against one daemon (10 HTTP sessions, SDK client over
 * streamable HTTP with the bearer token) and against 10 stdio servers (one `tachikoma mcp`
 * process per client, SDK client over stdio) — the same CLI with the memory engine
 * (`tests/testing/memory_main.ts`), the same state (20 sandboxes) and world file. Rounds
 * alternate HTTP and stdio; every call's latency counts.
 *
 * Targets: HTTP p50 ≤ 2× stdio p50 and p99 ≤ 3× stdio p99 (one daemon process serves the 10
 * clients that stdio spreads over 10 processes); the daemon's RSS after 1,000 calls is
 * ≤ 300 MiB and stops growing: from half-way to the end of 10,000 calls (6,000 with
 * `--quick`) it grows ≤ 10 % (sessions, running calls and the resumption log are bounded; the
 * JavaScript heap's garbage is collected in waves, so the RSS climbs to a plateau first).
 *
 * Output: one JSON line per measurement (`bench/lib.ts` report). Exit 1 when a target is
 * missed. Usage: `deno run -A --frozen bench/mcp_http_bench.ts [--quick]`.
 *
 * @module
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { info, median, percentile, target } from "./lib.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MAIN = `${ROOT}tests/testing/memory_main.ts`;
const QUICK = Deno.args.includes("--quick");
const CLIENTS = 10;
const ROUNDS = QUICK ? 3 : 6;
const CALLS_PER_CLIENT = QUICK ? 10 : 20;
const SANDBOXES = 20;
/** Calls over HTTP before the last RSS reading. */
const RSS_TOTAL = QUICK ? 6000 : 10_000;

interface Timed {
  client: Client;
  close(): Promise<void>;
}

async function world(dir: string): Promise<Record<string, string>> {
  const sandboxes: Record<string, unknown> = {};
  const vms: unknown[] = [];
  for (let i = 0; i < SANDBOXES; i++) {
    const name = `tachikoma-bench-b${i}`;
    sandboxes[name] = {
      state: "running",
      address_at: 0,
      created_at: "2026-05-01T12:00:00.000Z",
      shares: [],
      files: {},
      checkpoints: [],
    };
    vms.push({
      name,
      repo: "bench",
      branch: `b${i}`,
      worktree_path: `${dir}/wt-${i}`,
      backend: "memory",
      created_at: "2026-05-01T12:00:00.000Z",
      last_used: "2026-05-01T12:00:00.000Z",
      status: "running",
      ip: "127.0.0.1",
      failure: null,
    });
  }
  await Deno.mkdir(`${dir}/config`, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/world.json`,
    JSON.stringify({ sandboxes, defaults: {}, exec: { mode: "host" } }),
  );
  await Deno.writeTextFile(`${dir}/config/state.json`, JSON.stringify({ version: 2, vms }));
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: dir,
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    NO_COLOR: "1",
    TACHIKOMA_CONFIG_DIR: `${dir}/config`,
    TACHIKOMA_TEST_MEMORY_WORLD: `${dir}/world.json`,
  };
}

async function denoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return (JSON.parse(new TextDecoder().decode(out.stdout)) as { denoDir: string }).denoDir;
}

async function startDaemon(
  env: Record<string, string>,
  cwd: string,
): Promise<{ url: string; pid: number; token: string; child: Deno.ChildProcess }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--frozen",
      "--quiet",
      MAIN,
      "--json",
      "mcp",
      "--http",
      "--listen",
      "127.0.0.1:0",
    ],
    cwd,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the daemon exited before listening");
    text += value;
    try {
      const doc = JSON.parse(text) as { url: string; pid: number; token_file: string };
      reader.releaseLock();
      const token = (await Deno.readTextFile(doc.token_file)).trim();
      return { url: doc.url, pid: doc.pid, token, child };
    } catch {
      // not the whole document yet
    }
  }
}

async function httpClients(url: string, token: string): Promise<Timed[]> {
  return await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => {
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    });
    const client = new Client({ name: `bench-http-${i}`, version: "1" });
    await client.connect(transport);
    return {
      client,
      async close() {
        await transport.terminateSession().catch(() => {});
        await client.close();
      },
    };
  }));
}

async function stdioClients(env: Record<string, string>, cwd: string): Promise<Timed[]> {
  return await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => {
    const transport = new StdioClientTransport({
      command: Deno.execPath(),
      args: ["run", "-A", "--frozen", "--quiet", MAIN, "mcp"],
      cwd,
      env,
      stderr: "ignore",
    });
    const client = new Client({ name: `bench-stdio-${i}`, version: "1" });
    await client.connect(transport);
    return { client, close: () => client.close() };
  }));
}

/** Every client calls `list_sandboxes` `calls` times, all clients at once; latencies in ms. */
async function burst(clients: Timed[], calls: number): Promise<number[]> {
  const ms: number[] = [];
  await Promise.all(clients.map(async ({ client }) => {
    for (let i = 0; i < calls; i++) {
      const start = performance.now();
      const r = await client.callTool({ name: "list_sandboxes", arguments: { all: true } });
      ms.push(performance.now() - start);
      const n = (r.structuredContent as { sandboxes: unknown[] } | undefined)?.sandboxes.length;
      if (r.isError || n !== SANDBOXES) throw new Error(`list_sandboxes: ${JSON.stringify(r)}`);
    }
  }));
  return ms;
}

async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return Math.round(kb / 102.4) / 10;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

async function main(): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "tk-bench-mcp-" });
  const env = await world(dir);
  env.DENO_DIR = await denoDir();
  const daemon = await startDaemon(env, dir);
  const http = await httpClients(daemon.url, daemon.token);
  const stdio = await stdioClients(env, dir);
  const samples = { http: [] as number[], stdio: [] as number[] };
  let failed = false;
  try {
    await burst(http, 3); // warm up both
    await burst(stdio, 3);
    for (let r = 0; r < ROUNDS; r++) {
      samples.http.push(...await burst(http, CALLS_PER_CLIENT));
      samples.stdio.push(...await burst(stdio, CALLS_PER_CLIENT));
    }
    const p = (xs: number[], q: number) => round2(percentile(xs, q));
    const ratio50 = round2(median(samples.http) / median(samples.stdio));
    const ratio99 = round2(percentile(samples.http, 99) / percentile(samples.stdio, 99));
    target({
      bench: "mcp",
      target: "list_sandboxes from 10 clients: HTTP daemon vs stdio servers (p50)",
      measured_ms: median(samples.http),
      baseline_ms: median(samples.stdio),
      max_ratio: 2,
    }, { calls: samples.http.length });
    target({
      bench: "mcp",
      target: "list_sandboxes from 10 clients: HTTP daemon vs stdio servers (p99)",
      measured_ms: p(samples.http, 99),
      baseline_ms: p(samples.stdio, 99),
      max_ratio: 3,
    }, { calls: samples.http.length });
    if (ratio50 > 2 || ratio99 > 3) failed = true;

    // RSS: after 1,000 calls over HTTP in all (warm-up and rounds included), then on to
    // RSS_TOTAL calls; the heap's garbage is collected in waves, so boundedness is read as
    // the RSS no longer growing over the second half.
    let calls = 3 * CLIENTS + samples.http.length;
    const batch = async (total: number) => {
      while (calls < total) {
        const each = Math.min(20, Math.ceil((total - calls) / CLIENTS));
        await burst(http, each);
        calls += each * CLIENTS;
      }
    };
    const live = async () => {
      const r = await fetch(new URL("/status", daemon.url), {
        headers: { authorization: `Bearer ${daemon.token}` },
      });
      return await r.json() as { memory: { heap_used_mib: number }; events: { bytes: number } };
    };
    await batch(1000);
    const at1000 = await rssMiB(daemon.pid);
    const calls1000 = calls;
    await batch(RSS_TOTAL / 2);
    const atHalf = await rssMiB(daemon.pid);
    await batch(RSS_TOTAL);
    const atEnd = await rssMiB(daemon.pid);
    const end = await live();
    const growth = round2((atEnd - atHalf) / atHalf * 100);
    info({
      bench: "mcp",
      name: "daemon RSS",
      calls_first: calls1000,
      rss_mib_after_first: at1000,
      calls_half: RSS_TOTAL / 2,
      rss_mib_after_half: atHalf,
      calls_total: calls,
      rss_mib_after_total: atEnd,
      heap_used_mib_after_total: end.memory.heap_used_mib,
      resumption_log_bytes: end.events.bytes,
      second_half_growth_percent: growth,
      target: "rss after 1000 calls <= 300 MiB; second half growth <= 10 %",
    });
    if (at1000 > 300 || growth > 10) failed = true;
  } finally {
    await Promise.all([...http, ...stdio].map((c) => c.close().catch(() => {})));
    daemon.child.kill("SIGTERM");
    await daemon.child.status;
    await daemon.child.stdout.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
