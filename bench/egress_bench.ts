/**
 * The cost of per-sandbox egress enforcement on the proxied path, side by side in one run. The
 * proxy is the real CLI (`tachikoma proxy start`, its own process), the upstream the local
 * fixture (tests/fixtures/upstream.ts, its own process); only loopback is used. Two sandboxes
 * of the same state file, each with its own token:
 *
 * - `off`: egress `unrestricted` (with an explicit entry for `localhost`: every mode refuses a
 *   loopback target that no entry names);
 * - `on`: egress `allowlist`, a list of host names, suffixes and CIDRs with the upstream's host
 *   last (the policy scans the whole list).
 *
 * The proxy makes and logs a decision (one line in the sandbox's egress log) for every tunnel
 * and every plain-HTTP request in every mode; what differs is the policy that decides.
 * Requests name the host (`localhost`, as guests name theirs), so both sandboxes resolve it.
 *
 * 1. CONNECT (how guests reach HTTPS hosts through `HTTPS_PROXY`): one tunnel per request, on
 *    a new connection — `CONNECT localhost:PORT` with `Proxy-Authorization: Basic`, then a
 *    `GET /plain/…` inside the tunnel, read to the end. Target: p50 with enforcement on within
 *    +0.2 ms of enforcement off (max ratio = 1 + 0.2 / off p50).
 * 2. Plain HTTP (`HTTP_PROXY`): absolute-URI `GET` on a kept-alive connection to the proxy,
 *    one decision per request. Same target.
 *
 * Sequential, on and off interleaved, after a warm-up. Output: JSON lines (`bench/lib.ts`).
 * Usage: `deno run -A --frozen bench/egress_bench.ts [--quick]`; bench/run.ts runs it.
 *
 * @module
 */
import { type Child, freePort, readUntil, startUpstream, stopper } from "./children.ts";
import { budgetRatio, info, median, percentile, target } from "./lib.ts";
import { EgressPolicy, systemResolver } from "../src/proxy/egress.ts";
import { FileEgressLog, readEgressLog } from "../src/proxy/egress_log.ts";
import { ensureToken } from "../src/proxy/tokens.ts";
import { CLI_FROM_SOURCE } from "../tests/testing/run.ts";

const QUICK = Deno.args.includes("--quick");
const N = QUICK ? 300 : 2000;
const WARMUP = 200;
const BUDGET_MS = 0.2;
const HOST = "localhost";

/** The `on` sandbox's allow list: the upstream's host last, so the policy scans it all. */
const ALLOW = [
  "github.com",
  "*.githubusercontent.com",
  ".npmjs.org",
  "pypi.org:443",
  "files.pythonhosted.org",
  "140.82.112.0/20",
  "crates.io",
  "deb.debian.org",
  HOST,
];

/** A process of the bench and how to stop it. */
/** The proxy, with the two sandboxes in its state; returns each sandbox's token. */
async function startProxy(upstreamPort: number): Promise<{
  child: Child;
  port: number;
  dir: string;
  tokens: { on: string; off: string };
}> {
  const dir = await Deno.makeTempDir({ prefix: "tk-egress-bench-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/config.toml`,
    `backend = "incus"\ncredential_proxy_bind = "127.0.0.1"\ncredential_proxy_port = ${port}\n` +
      `credential_proxy_upstream = "http://127.0.0.1:${upstreamPort}"\n`,
  );
  const vm = (name: string, egress: { mode: string; allow: string[] }) => ({
    name,
    ip: "127.0.0.1",
    repo_root: dir,
    worktree_path: dir,
    egress,
  });
  await Deno.writeTextFile(
    `${dir}/state.json`,
    JSON.stringify({
      version: 2,
      vms: [
        vm("tk-egress-off", { mode: "unrestricted", allow: [HOST] }),
        vm("tk-egress-on", { mode: "allowlist", allow: ALLOW }),
      ],
    }),
  );
  const tokens = {
    off: await ensureToken(dir, "tk-egress-off"),
    on: await ensureToken(dir, "tk-egress-on"),
  };
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      ...CLI_FROM_SOURCE,
      "--quiet",
      "proxy",
      "start",
      "--json",
    ],
    env: {
      TACHIKOMA_CONFIG_DIR: dir,
      ANTHROPIC_API_KEY: "sk-ant-api03-BENCHKEY-not-a-real-key",
      CLAUDE_CODE_OAUTH_TOKEN: "",
    },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  // The JSON result document is pretty-printed; read until it closes.
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  await readUntil(reader, (t) => t.trimEnd().endsWith("}"), "the proxy");
  reader.releaseLock();
  const child = stopper(proc, () => Deno.remove(dir, { recursive: true }));
  return { port, dir, tokens, child };
}

const encoder = new TextEncoder();

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let n = 0;
  while (n < bytes.length) n += await conn.write(bytes.subarray(n));
}

/** One tunnel: CONNECT, a GET inside it read to the end; returns its time (ms). */
async function tunnel(proxyPort: number, upstreamPort: number, token: string): Promise<number> {
  const authority = `${HOST}:${upstreamPort}`;
  const start = performance.now();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxyPort });
  try {
    conn.setNoDelay(true);
    await writeAll(
      conn,
      encoder.encode(
        `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n` +
          `Proxy-Authorization: Basic ${btoa(`tachikoma:${token}`)}\r\n\r\n`,
      ),
    );
    const decoder = new TextDecoder();
    const buf = new Uint8Array(4096);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) throw new Error(`CONNECT: closed after ${JSON.stringify(head)}`);
      head += decoder.decode(buf.subarray(0, n));
    }
    if (!head.startsWith("HTTP/1.1 200")) throw new Error(`CONNECT: ${head.split("\r\n")[0]}`);
    await writeAll(
      conn,
      encoder.encode(
        `GET /plain/bench HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`,
      ),
    );
    let body = head.slice(head.indexOf("\r\n\r\n") + 4);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      body += decoder.decode(buf.subarray(0, n));
    }
    if (!body.startsWith("HTTP/1.1 200") || !body.includes("plain GET /plain/bench")) {
      throw new Error(`tunnel GET: ${body.split("\r\n")[0]}`);
    }
  } finally {
    conn.close();
  }
  return performance.now() - start;
}

/** One absolute-URI GET through the proxy on `client`'s kept-alive connection (ms). */
async function plain(client: Deno.HttpClient, upstreamPort: number): Promise<number> {
  const start = performance.now();
  const res = await fetch(`http://${HOST}:${upstreamPort}/plain/bench`, { client });
  const text = await res.text();
  if (res.status !== 200 || !text.startsWith("plain GET")) {
    throw new Error(`plain GET: ${res.status} ${text.slice(0, 200)}`);
  }
  return performance.now() - start;
}

/** Runs `on` and `off` interleaved (warm-up first) and reports the target and the p99s. */
async function compare(
  what: string,
  run: { on: () => Promise<number>; off: () => Promise<number> },
): Promise<void> {
  for (let i = 0; i < WARMUP; i++) {
    await run.off();
    await run.on();
  }
  const on: number[] = [];
  const off: number[] = [];
  for (let i = 0; i < N; i++) {
    // Alternate which goes first, so neither always follows the other.
    if (i % 2 === 0) {
      off.push(await run.off());
      on.push(await run.on());
    } else {
      on.push(await run.on());
      off.push(await run.off());
    }
  }
  const offP50 = percentile(off, 50);
  target({
    bench: "egress",
    target: `${what}: enforcement on (allowlist) vs off (unrestricted) (p50)`,
    measured_ms: percentile(on, 50),
    baseline_ms: offP50,
    max_ratio: budgetRatio(offP50, BUDGET_MS),
    note: `the budget: at most ${BUDGET_MS} ms added`,
  }, { n: N, added_p50_ms: +(percentile(on, 50) - offP50).toFixed(3) });
  info({
    bench: "egress",
    target: `${what}: enforcement on vs off (p99)`,
    measured_ms: +percentile(on, 99).toFixed(3),
    baseline_ms: +percentile(off, 99).toFixed(3),
    ratio: +(percentile(on, 99) / percentile(off, 99)).toFixed(3),
    n: N,
  });
}

/**
 * Every request of both sandboxes was decided and logged (allowed): the comparison measured
 * enforcement, not a shortcut. Throws otherwise.
 */
async function checkLogs(dir: string): Promise<void> {
  const expected = 2 * (WARMUP + N);
  const counts: Record<string, number> = {};
  for (const sandbox of ["tk-egress-on", "tk-egress-off"]) {
    const { entries } = await readEgressLog(dir, sandbox);
    const allowed = entries.filter((e) => e.verdict === "allowed" && e.host === HOST).length;
    if (allowed !== expected || entries.length !== expected) {
      throw new Error(
        `${sandbox}: ${entries.length} egress log lines, ${allowed} allowed; expected ${expected}`,
      );
    }
    counts[sandbox] = allowed;
  }
  info({ bench: "egress", target: "egress log lines per sandbox (all allowed)", ...counts });
}

/**
 * Where the time goes, in this process: one decision of each policy (the policy alone, with a
 * fixed answer for the name), one lookup of the name with the system resolver (the proxy does
 * it in both modes), one egress log line. Each is the median of several rounds' means, the
 * rounds interleaved.
 */
async function parts(): Promise<void> {
  const runs = QUICK ? 300 : 1000;
  const on = new EgressPolicy("allowlist", ALLOW);
  const off = new EgressPolicy("unrestricted", [HOST]);
  const fixed = () => Promise.resolve(["127.0.0.1"]);
  const dir = await Deno.makeTempDir({ prefix: "tk-egress-bench-log-" });
  try {
    const log = new FileEgressLog(dir);
    const entry = {
      time: new Date().toISOString(),
      sandbox: "tk-egress-on",
      method: "CONNECT",
      host: HOST,
      port: 443,
      verdict: "allowed" as const,
    };
    const subjects: Record<string, () => Promise<unknown>> = {
      decide_allowlist_ms: () => on.decide(HOST, 443, fixed),
      decide_unrestricted_ms: () => off.decide(HOST, 443, fixed),
      resolve_ms: () => systemResolver(HOST),
      log_line_ms: () => log.record(entry),
    };
    const means: Record<string, number[]> = {};
    for (let round = 0; round < 6; round++) {
      for (const [name, f] of Object.entries(subjects)) {
        const start = performance.now();
        for (let i = 0; i < runs; i++) await f();
        // The first round warms up.
        if (round > 0) (means[name] ??= []).push((performance.now() - start) / runs);
      }
    }
    const out: Record<string, number> = {};
    for (const [name, m] of Object.entries(means)) out[name] = +median(m).toFixed(4);
    info({ bench: "egress", target: "in-process cost per request (ms)", ...out, runs });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const up = await startUpstream();
const proxy = await startProxy(up.port);
const clients = {
  on: Deno.createHttpClient({
    proxy: {
      url: `http://127.0.0.1:${proxy.port}`,
      basicAuth: { username: "tachikoma", password: proxy.tokens.on },
    },
  }),
  off: Deno.createHttpClient({
    proxy: {
      url: `http://127.0.0.1:${proxy.port}`,
      basicAuth: { username: "tachikoma", password: proxy.tokens.off },
    },
  }),
};
try {
  await compare("CONNECT tunnel + GET through the proxy", {
    on: () => tunnel(proxy.port, up.port, proxy.tokens.on),
    off: () => tunnel(proxy.port, up.port, proxy.tokens.off),
  });
  await compare("plain-HTTP GET through the proxy", {
    on: () => plain(clients.on, up.port),
    off: () => plain(clients.off, up.port),
  });
  await checkLogs(proxy.dir);
  await parts();
} finally {
  clients.on.close();
  clients.off.close();
  await proxy.child.stop();
  await up.child.stop();
}
