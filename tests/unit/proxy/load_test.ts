/**
 * Load and abuse against the real proxy process (`tachikoma proxy start`, its memory measured
 * from /proc): a client that reads slowly (backpressure keeps the proxy's memory flat), and 200
 * concurrent streaming requests (all complete, nothing hangs, no connection or file descriptor
 * leaks, peak memory bounded).
 */
import { assert, assertEquals } from "@std/assert";
import { POOL_IDLE_PER_HOST } from "../../../src/proxy/server.ts";
import { ensureToken } from "../../../src/proxy/tokens.ts";
import { startFakeUpstream } from "../../fixtures/upstream.ts";
import { CLI_FROM_SOURCE } from "../../testing/run.ts";

const MiB = 1024 * 1024;
const linux = Deno.build.os === "linux";
if (!linux) console.error("load_test: needs /proc (Linux); skipped");

interface ProxyProcess {
  port: number;
  pid: number;
  /** `Authorization` with the token of the sandbox the requests come from. */
  auth: Record<string, string>;
  stop(): Promise<void>;
}

async function startProxyProcess(upstreamUrl: string): Promise<ProxyProcess> {
  const dir = await Deno.makeTempDir({ prefix: "tk-proxy-load-" });
  await Deno.writeTextFile(
    `${dir}/config.toml`,
    `backend = "incus"\ncredential_proxy_bind = "127.0.0.1"\ncredential_proxy_port = 1\n` +
      `credential_proxy_upstream = "${upstreamUrl}"\n`,
  );
  await Deno.writeTextFile(
    `${dir}/state.json`,
    JSON.stringify({
      version: 2,
      vms: [{ name: "tk-load", ip: "127.0.0.1", repo_root: dir, worktree_path: dir }],
    }),
  );
  const token = await ensureToken(dir, "tk-load");
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...CLI_FROM_SOURCE,
      "--quiet",
      "proxy",
      "start",
      "--port",
      String(port),
      "--json",
    ],
    env: {
      TACHIKOMA_CONFIG_DIR: dir,
      ANTHROPIC_API_KEY: "sk-ant-api03-LOADTEST-not-a-key",
      CLAUDE_CODE_OAUTH_TOKEN: "",
    },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.trimEnd().endsWith("}")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the proxy exited before listening");
    text += value;
  }
  reader.releaseLock();
  return {
    port,
    pid: child.pid,
    auth: { authorization: `Bearer ${token}` },
    async stop() {
      child.kill("SIGTERM");
      await child.stdout.cancel().catch(() => {});
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** VmRSS and VmHWM (peak) of a process, in bytes. */
function memory(pid: number): { rss: number; peak: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)![1]) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

/** Resets the peak RSS counter (Linux: write 5 to clear_refs). */
function resetPeak(pid: number): void {
  try {
    Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
  } catch {
    // not permitted: the peak then covers the whole life of the process
  }
}

function openFds(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return cond();
}

Deno.test({
  name: "load: a slow reader gets backpressure, not a growing buffer in the proxy",
  ignore: !linux,
  async fn() {
    const upstream = startFakeUpstream({ record: false });
    const proxy = await startProxyProcess(upstream.url);
    try {
      // Warm up (the client's and the proxy's connection pools keep a connection open each),
      // then take the baseline.
      await (await fetch(`http://127.0.0.1:${proxy.port}/v1/bytes?n=${4 * MiB}`, {
        headers: proxy.auth,
      })).arrayBuffer();
      const fdsBefore = openFds(proxy.pid);
      resetPeak(proxy.pid);
      const before = memory(proxy.pid);
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
      await conn.write(
        new TextEncoder().encode(
          `GET /v1/bytes?n=${512 * MiB} HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\n` +
            `Authorization: ${proxy.auth.authorization}\r\n\r\n`,
        ),
      );
      const buf = new Uint8Array(16 * 1024);
      let consumed = 0;
      const started = performance.now();
      // 16 KiB every 10 ms for ~2 s (≈3 MB) while the upstream could send 512 MiB.
      while (performance.now() - started < 2000) {
        const n = await conn.read(buf);
        if (n === null) break;
        consumed += n;
        await new Promise((r) => setTimeout(r, 10));
      }
      const produced = upstream.produced() - 4 * MiB;
      const after = memory(proxy.pid);
      conn.close();
      console.error(
        `slow reader: consumed ${(consumed / MiB).toFixed(1)} MiB, upstream produced ${
          (produced / MiB).toFixed(1)
        } MiB, proxy RSS ${(before.rss / MiB).toFixed(1)} → peak ${
          (after.peak / MiB).toFixed(1)
        } MiB`,
      );
      assert(produced - consumed < 48 * MiB, `the proxy ran ahead: ${produced - consumed} bytes`);
      assert(
        after.peak - before.rss < 32 * MiB,
        `proxy peak RSS grew by ${after.peak - before.rss}`,
      );
      assert(
        await waitFor(() => openFds(proxy.pid) <= fdsBefore, 5000),
        `descriptors leaked: ${fdsBefore} → ${openFds(proxy.pid)}`,
      );
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  },
});

Deno.test({
  name: "load: 200 concurrent streaming requests all complete; nothing leaks",
  ignore: !linux,
  async fn() {
    const upstream = startFakeUpstream({
      record: false,
      firstEventDelayMs: 20,
      eventIntervalMs: 5,
      deltas: 20,
    });
    const proxy = await startProxyProcess(upstream.url);
    const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    try {
      const body = JSON.stringify({
        model: "claude-test",
        max_tokens: 8,
        stream: true,
        messages: [],
      });
      const one = async () => {
        const res = await fetch(`http://127.0.0.1:${proxy.port}/v1/messages`, {
          method: "POST",
          headers: { "content-type": "application/json", ...proxy.auth },
          body,
          client,
        });
        const text = await res.text();
        return res.status === 200 && text.includes("event: message_stop") &&
          (text.match(/event: content_block_delta/g) ?? []).length === 20;
      };
      await Promise.all(Array.from({ length: 20 }, one));
      const fdsBefore = openFds(proxy.pid);
      resetPeak(proxy.pid);
      const before = memory(proxy.pid);
      const started = performance.now();
      const results = await Promise.all(Array.from({ length: 200 }, one));
      const ms = performance.now() - started;
      const after = memory(proxy.pid);
      console.error(
        `200 streams: ${results.filter((r) => r).length} complete in ${
          ms.toFixed(0)
        } ms, proxy RSS ${(before.rss / MiB).toFixed(1)} → peak ${
          (after.peak / MiB).toFixed(1)
        } MiB`,
      );
      assertEquals(results.filter((r) => !r).length, 0);
      assert(ms < 20_000, `took ${ms} ms`);
      assert(
        after.peak - before.rss < 96 * MiB,
        `proxy peak RSS grew by ${after.peak - before.rss}`,
      );
      // Idle upstream connections stay pooled, up to POOL_IDLE_PER_HOST.
      assert(
        await waitFor(() => openFds(proxy.pid) <= fdsBefore + POOL_IDLE_PER_HOST, 5000),
        `descriptors leaked: ${fdsBefore} → ${openFds(proxy.pid)}`,
      );
    } finally {
      client.close();
      await proxy.stop();
      await upstream.close();
    }
  },
});
