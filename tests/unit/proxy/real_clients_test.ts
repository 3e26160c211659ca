/**
 * Clients we did not write, pointed at the proxy: curl (as a client of the API, and using the
 * proxy as its HTTP proxy, plain and with CONNECT), git (a clone over HTTP through the proxy,
 * as the guest's `http_proxy` gives it), Python's urllib and Deno's fetch (proxy taken from
 * the environment), and the official @anthropic-ai/sdk streaming a message. Each sends the
 * sandbox's token the way the guest environment hands it over: `ANTHROPIC_AUTH_TOKEN` for the
 * API, `http://tachikoma:<token>@host:port` for proxying.
 */
import Anthropic from "@anthropic-ai/sdk";
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { EgressPolicy } from "../../../src/proxy/egress.ts";
import { PROXY_USER } from "../../../src/proxy/guest_env.ts";
import { API_KEY, type Harness, SANDBOX_A, startHarness, TOKEN_A, TOKEN_B } from "./helpers.ts";

function has(cmd: string, args: string[]): boolean {
  try {
    return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}
const hasCurl = has("curl", ["--version"]);
const hasGit = has("git", ["--version"]);
const hasPython = has("python3", ["-c", "import urllib.request"]);
for (const [tool, ok] of [["curl", hasCurl], ["git", hasGit], ["python3", hasPython]] as const) {
  if (!ok) console.error(`real_clients_test: ${tool} is not installed; its tests are skipped`);
}

const NO_PROXY_ENV = {
  http_proxy: "",
  https_proxy: "",
  HTTP_PROXY: "",
  HTTPS_PROXY: "",
  ALL_PROXY: "",
  NO_PROXY: "",
  no_proxy: "",
};

/** The guest's proxy URL for `token` (what `proxyGuestEnv` writes). */
function proxyUrl(h: Harness, token: string): string {
  return `http://${PROXY_USER}:${token}@127.0.0.1:${h.proxy.port}`;
}

async function run(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, {
    args,
    env: { ...NO_PROXY_ENV, ...options.env },
    cwd: options.cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

const curl = (args: string[], env?: Record<string, string>) =>
  run("curl", ["-sS", "--max-time", "10", ...args], { env });

Deno.test({
  name: "curl: streams a message with the sandbox's token; the host's key replaces it",
  ignore: !hasCurl,
  async fn() {
    const h = await startHarness({ upstreamOptions: { eventIntervalMs: 5 } });
    try {
      const body = JSON.stringify({
        model: "claude-test",
        max_tokens: 8,
        stream: true,
        messages: [],
      });
      const r = await curl([
        "-N",
        "-X",
        "POST",
        `${h.proxy.url}/v1/messages`,
        "-H",
        "content-type: application/json",
        "-H",
        `authorization: Bearer ${TOKEN_A}`,
        "-d",
        body,
      ]);
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(r.stdout, "event: message_start");
      assertStringIncludes(r.stdout, "event: message_stop");
      const seen = h.upstream.requests.at(-1)!;
      assertEquals(seen.headers["x-api-key"], API_KEY);
      assertEquals(seen.headers["authorization"], undefined);
      const none = await curl([
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `${h.proxy.url}/v1/models`,
      ]);
      assertEquals(none.stdout, "401");
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "curl: as a forward proxy with the token in the URL: allowed, off-list 403, no token 407",
  ignore: !hasCurl,
  async fn() {
    const h = await startHarness({ policy: new EgressPolicy("allowlist", ["127.0.0.1"]) });
    try {
      const target = `${h.upstream.url}/v1/echo`;
      const code = (extra: string[]) =>
        curl(["-o", "/dev/null", "-w", "%{http_code}", ...extra]).then((r) => r.stdout);
      // Plain HTTP through the proxy: -x with the token, and the same from the environment.
      assertEquals(await code(["-x", proxyUrl(h, TOKEN_A), target]), "200");
      assertEquals(
        (await curl(["-o", "/dev/null", "-w", "%{http_code}", target], {
          http_proxy: proxyUrl(h, TOKEN_A),
        })).stdout,
        "200",
      );
      assertEquals(await code(["-x", proxyUrl(h, TOKEN_A), "http://blocked.example/v1/x"]), "403");
      assertEquals(await code(["-x", h.proxy.url, target]), "407");
      assertEquals(await code(["-x", proxyUrl(h, "not-a-token"), target]), "407");
      // CONNECT (-p): with the token it tunnels; without, curl reports the 407.
      const tunnel = await curl(["-p", "-x", proxyUrl(h, TOKEN_A), target]);
      assertEquals(tunnel.code, 0, tunnel.stderr);
      assertEquals(JSON.parse(tunnel.stdout)["proxy-authorization"], undefined);
      const refused = await curl(["-p", "-x", h.proxy.url, target]);
      assertEquals(refused.code, 56, refused.stderr);
      assertStringIncludes(refused.stderr, "407");
      // A client that waits for the challenge (--proxy-anyauth, as git does) gets there too.
      const anyauth = await curl(["--proxy-anyauth", "-p", "-x", proxyUrl(h, TOKEN_A), target]);
      assertEquals(anyauth.code, 0, anyauth.stderr);
      const plainAny = await code(["--proxy-anyauth", "-x", proxyUrl(h, TOKEN_A), target]);
      assertEquals(plainAny, "200");
      const seen = JSON.stringify(h.upstream.requests);
      assert(!seen.includes(TOKEN_A), "the token reached the target");
    } finally {
      await h.close();
    }
  },
});

/** A read-only "dumb HTTP" git server on loopback for a bare repository. */
async function gitServer(): Promise<{ url: string; head: string; close(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "tk-git-http-" });
  const git = (args: string[], cwd: string) =>
    run("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", ...args], { cwd });
  await git(["init", "-q", "-b", "main", `${dir}/work`], dir);
  await Deno.writeTextFile(`${dir}/work/README`, "through the proxy\n");
  await git(["add", "README"], `${dir}/work`);
  await git(["commit", "-q", "-m", "init"], `${dir}/work`);
  await git(["clone", "-q", "--bare", `${dir}/work`, `${dir}/repo.git`], dir);
  await git(["update-server-info"], `${dir}/repo.git`);
  const head = (await git(["rev-parse", "HEAD"], `${dir}/work`)).stdout.trim();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (!path.startsWith("/repo.git/") || path.includes("..")) {
      return new Response("no", { status: 404 });
    }
    try {
      return new Response(await Deno.readFile(`${dir}${path}`));
    } catch {
      return new Response("missing", { status: 404 });
    }
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/repo.git`,
    head,
    async close() {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test({
  name: "git: clones over HTTP through the proxy with the token from http_proxy; 407 without",
  ignore: !hasGit,
  async fn() {
    const h = await startHarness({ policy: new EgressPolicy("allowlist", ["127.0.0.1"]) });
    const server = await gitServer();
    const home = await Deno.makeTempDir({ prefix: "tk-git-home-" });
    try {
      const env = (token: string | null) => ({
        HOME: home,
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        GIT_TERMINAL_PROMPT: "0",
        GIT_CONFIG_NOSYSTEM: "1",
        http_proxy: token ? proxyUrl(h, token) : h.proxy.url,
      });
      const ok = await run("git", ["clone", "-q", server.url, `${home}/a`], { env: env(TOKEN_A) });
      assertEquals(ok.code, 0, ok.stderr);
      const cloned = await run("git", ["-C", `${home}/a`, "rev-parse", "HEAD"]);
      assertEquals(cloned.stdout.trim(), server.head);
      assertStringIncludes(
        h.lines.join("\n"),
        `sandbox ${SANDBOX_A} (127.0.0.1) GET http://127.0.0.1:${new URL(server.url).port} → 200`,
      );
      const refused = await run("git", ["clone", "-q", server.url, `${home}/b`], {
        env: env(null),
      });
      assert(refused.code !== 0, "cloned without a token");
      assertStringIncludes(refused.stderr, "407");
      assert(!h.lines.join("\n").includes(TOKEN_A), "the token is in the proxy log");
    } finally {
      await server.close();
      await h.close();
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test({
  name: "python urllib: http_proxy/https_proxy with the token: plain through, CONNECT accepted",
  ignore: !hasPython,
  async fn() {
    const h = await startHarness({ policy: new EgressPolicy("allowlist", ["127.0.0.1"]) });
    try {
      const port = h.upstream.port;
      const script = [
        "import sys, urllib.request",
        "try:",
        "    print(urllib.request.urlopen(sys.argv[1], timeout=10).status)",
        "except Exception as e:",
        "    print('ERR', e)",
      ].join("\n");
      const py = (url: string, env: Record<string, string>) =>
        run("python3", ["-c", script, url], { env }).then((r) => r.stdout.trim());
      const plain = `http://127.0.0.1:${port}/v1/echo`;
      assertEquals(await py(plain, { http_proxy: proxyUrl(h, TOKEN_A) }), "200");
      assertStringIncludes(await py(plain, { http_proxy: h.proxy.url }), "407");
      // https through CONNECT: the tunnel opens (the target speaks plain HTTP, so TLS then
      // fails in Python), which only happens after the proxy accepted the token.
      const before = h.lines.length;
      const tls = await py(`https://127.0.0.1:${port}/`, { https_proxy: proxyUrl(h, TOKEN_B) });
      assertStringIncludes(tls, "ERR");
      assert(!tls.includes("407"), tls);
      const refused = await py(`https://127.0.0.1:${port}/`, { https_proxy: h.proxy.url });
      assertStringIncludes(refused, "407");
      const log = h.lines.slice(before).join("\n");
      assertStringIncludes(log, `egress denied: sandbox tk-other-feature-b (127.0.0.1) CONNECT`);
      assertStringIncludes(log, `refused: client 127.0.0.1 CONNECT "127.0.0.1:${port}" → 407`);
    } finally {
      await h.close();
    }
  },
});

Deno.test("deno fetch: HTTP_PROXY with the token in the URL authenticates; without it 407", async () => {
  const h = await startHarness({ policy: new EgressPolicy("allowlist", ["127.0.0.1"]) });
  try {
    const target = `${h.upstream.url}/v1/echo`;
    const fetchVia = (proxy: string) =>
      run(Deno.execPath(), [
        "eval",
        `const r = await fetch(${JSON.stringify(target)}); console.log(r.status);`,
      ], { env: { HTTP_PROXY: proxy, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" } })
        .then((r) => r.stdout.trim());
    assertEquals(await fetchVia(proxyUrl(h, TOKEN_A)), "200");
    assertEquals(await fetchVia(h.proxy.url), "407");
    assertStringIncludes(
      h.lines.join("\n"),
      `sandbox ${SANDBOX_A} (127.0.0.1) GET http://127.0.0.1:${h.upstream.port} → 200`,
    );
  } finally {
    await h.close();
  }
});

Deno.test("@anthropic-ai/sdk: streams a message with baseURL = the proxy, authToken = the token", async () => {
  const h = await startHarness({ upstreamOptions: { eventIntervalMs: 2, deltas: 4 } });
  try {
    const client = new Anthropic({
      baseURL: h.proxy.url,
      apiKey: null,
      authToken: TOKEN_A,
      maxRetries: 0,
    });
    const stream = client.messages.stream({
      model: "claude-test",
      max_tokens: 16,
      messages: [{ role: "user", content: "hi" }],
    });
    let text = "";
    stream.on("text", (t: string) => text += t);
    const final = await stream.finalMessage();
    assertEquals(text, "Hello w1 w2 w3");
    assertEquals(final.stop_reason, "end_turn");
    const seen = h.upstream.requests.at(-1)!;
    assertEquals(seen.headers["x-api-key"], API_KEY);
    assertEquals(seen.headers["authorization"], undefined, "the token must not reach the API");
    assert(seen.headers["anthropic-version"], "SDK headers pass through");
  } finally {
    await h.close();
  }
});
