/**
 * The credential proxy seen from real guests (Incus lab containers on the lab bridge).
 *
 * 1. Guests ↔ proxy: the proxy listens on the bridge gateway (read from the Incus REST API, the
 *    default bind for local Incus) and knows its clients by their tokens (the real token store
 *    and state file). Sandbox A, with the guest environment (`proxyGuestEnv`), streams a
 *    message (the fake upstream gets the host key, never the token), clones a git repository
 *    and runs apt through the proxy, and every abuse path is refused: off-list CONNECT, CONNECT to the
 *    host's loopback, plain HTTP to a private address, absolute `http://anyhost/v1/…`,
 *    traversal; without its token A is refused (401/407). A second container on the bridge
 *    is refused while it has no token, then becomes sandbox B with its own token and is logged
 *    under its own name. The guests' whole filesystems and every process environment and
 *    command line are searched for the host secret and for the other sandbox's token.
 * 2. `tachikoma spawn` end to end: a known secret on the host (API key env and a Claude
 *    credentials file), spawn a sandbox (spawn makes sure the proxy runs; provisioning writes
 *    the guest's token into its profile), use the API and the egress proxy with what the
 *    profile gives, search the guest the same way; destroy revokes the token at once.
 *
 * Traffic goes only to loopback and the lab bridge: no DNS lookups (off-list names are refused
 * before resolution), no other addresses.
 */
import { assert, assertEquals, assertNotEquals, assertStringIncludes } from "@std/assert";
import { CredentialCache } from "../../src/credentials/cache.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { Logger } from "../../src/lib/log.ts";
import { registerSecret } from "../../src/lib/redact.ts";
import { readIncusGateway } from "../../src/proxy/bind.ts";
import { TokenClientDirectory } from "../../src/proxy/clients.ts";
import { EgressPolicy } from "../../src/proxy/egress.ts";
import { proxyGuestEnv } from "../../src/proxy/guest_env.ts";
import { startProxyServer } from "../../src/proxy/server.ts";
import { ensureToken, newToken, readToken, tokenPath } from "../../src/proxy/tokens.ts";
import { startFakeUpstream } from "../fixtures/upstream.ts";
import { labEnv, labIgnored, labName } from "./lab.ts";
import { runCliFromSource } from "../testing/run.ts";
import {
  gitHttpServer,
  type GuestRun,
  guestRunner,
  searchGuest,
  searchSelfTest,
} from "./proxy_guest_lab.ts";

const decoder = new TextDecoder();

Deno.test({
  name: "lab: guests use the proxy with their own tokens; strangers and abuse are refused",
  ignore: labIgnored(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const lab = labEnv()!;
    const { openLabIncus } = await import("./provision_lab.ts");
    const secret = `sk-ant-api03-LABSECRET-${crypto.randomUUID()}`;
    registerSecret(secret);
    const stateDir = await Deno.makeTempDir({ prefix: "tk-proxy-guest-" });
    const backend = await openLabIncus();
    const nameA = labName("proxy-a");
    const nameB = labName("proxy-b");
    const upstream = startFakeUpstream({ eventIntervalMs: 2 });
    const lines: string[] = [];
    let proxy: Awaited<ReturnType<typeof startProxyServer>> | null = null;
    let git: Awaited<ReturnType<typeof gitHttpServer>> | null = null;
    try {
      // The default bind for local Incus: the bridge's gateway, from the REST API, both from the
      // default profile's NIC and from an explicit network. (A loaded lab's Incus can take
      // seconds to answer profile and network queries.)
      const gateway = await readIncusGateway({ socket: lab.socket }, 90_000);
      assertEquals(gateway, lab.gateway);
      assertEquals(
        await readIncusGateway({ socket: lab.socket, network: lab.bridge }),
        lab.gateway,
      );
      git = await gitHttpServer(gateway);
      const gitPort = git.port;

      const statePath = `${stateDir}/state.json`;
      const writeState = (vms: unknown[]) =>
        Deno.writeTextFile(statePath, JSON.stringify({ version: 2, vms }));
      await writeState([]);
      proxy = await startProxyServer({
        bind: gateway,
        port: 0,
        upstream: upstream.url,
        credentials: new CredentialCache({
          resolve: () =>
            Promise.resolve({
              credential: { kind: "api_key", source: "api_key_env", value: secret },
              attempts: [],
            }),
          ttlMs: 60_000,
        }),
        clients: new TokenClientDirectory({
          stateDir,
          logger: new Logger({ level: "debug", sink: (l) => lines.push(l) }),
          // The git server on the gateway is the one private target the sandboxes may reach.
          policySource: {
            load: () =>
              Promise.resolve(
                new EgressPolicy("allowlist", ["github.com", `${gateway}:${gitPort}`]),
              ),
            files: () => Promise.resolve([]),
          },
        }),
        logger: new Logger({ level: "debug", sink: (l) => lines.push(l) }),
        resolver: () => Promise.reject(new Error("no DNS in lab tests")),
      });

      // Two plain containers with addresses are all this test needs (no sshd).
      const boot = async (name: string) => {
        await backend.create(name, { image: lab.image });
        await backend.start(name, { shares: [] });
        return await backend.waitForAddress(name, {
          deadline: Date.now() + 120_000,
          clock: systemClock,
        });
      };
      const [ipA, ipB] = await Promise.all([boot(nameA), boot(nameB)]);
      const record = (name: string, ip: string) => ({
        name,
        ip,
        repo_root: stateDir,
        worktree_path: stateDir,
        branch: "main",
      });
      await writeState([record(nameA, ipA)]);
      const tokenA = await ensureToken(stateDir, nameA);
      const guestEnv = (token: string) =>
        proxyGuestEnv(
          {
            credential_proxy: true,
            credential_proxy_bind: gateway,
            credential_proxy_port: proxy!.port,
          },
          "incus",
          { egressRestricted: true, token },
        );
      const env = guestEnv(tokenA);
      assertEquals(env.ANTHROPIC_BASE_URL, `http://${gateway}:${proxy.port}`);
      assertEquals(env.ANTHROPIC_AUTH_TOKEN, tokenA);
      assert(!Object.values(env).includes(secret));

      const runA: GuestRun = guestRunner(backend, nameA);
      const runB: GuestRun = guestRunner(backend, nameB);

      // A streamed message through the proxy, as Claude Code sends it.
      const message = 'curl -sS -N -X POST "$ANTHROPIC_BASE_URL/v1/messages" ' +
        '-H "authorization: Bearer $ANTHROPIC_AUTH_TOKEN" -H "content-type: application/json" ' +
        `-d '{"model":"claude-test","max_tokens":8,"stream":true,"messages":[]}'`;
      const msg = await runA(message, { env });
      assertEquals(msg.code, 0, msg.stderr);
      assertStringIncludes(msg.stdout, "event: message_stop");
      const seen = upstream.requests.at(-1)!;
      assertEquals(seen.headers["x-api-key"], secret);
      assertEquals(seen.headers["authorization"], undefined);
      assertStringIncludes(lines.join("\n"), `sandbox ${nameA} (${ipA}) POST /v1/messages → 200`);

      const health = await runA('curl -sS "$ANTHROPIC_BASE_URL/health"', { env });
      assertEquals(JSON.parse(health.stdout).proxy, "tachikoma");
      assert(!health.stdout.includes(secret));

      // git clones through the proxy with the token from http_proxy (NO_PROXY cleared: it
      // names the gateway, where this test's git server runs).
      const clone = await runA(
        'cd /tmp && NO_PROXY= no_proxy= GIT_TERMINAL_PROMPT=0 git clone -q "$1" cloned && ' +
          "git -C cloned rev-parse HEAD",
        { env, args: [git.url] },
      );
      assertEquals(clone.code, 0, clone.stderr);
      assertEquals(clone.stdout.trim(), git.head);
      assertStringIncludes(
        lines.join("\n"),
        `sandbox ${nameA} (${ipA}) GET http://${gateway}:${gitPort} → 200`,
      );
      // apt too takes the token from http_proxy (a 404 from the git server, through the proxy,
      // is the proof: without the token the proxy would have answered 407 itself).
      const apt = await runA(
        'printf "deb [trusted=yes] http://%s/apt ./\\n" "$1" > /tmp/tk.list && ' +
          "NO_PROXY= no_proxy= apt-get -q update -o Dir::Etc::sourcelist=/tmp/tk.list " +
          "-o Dir::Etc::sourceparts=/nonexistent -o APT::Update::Error-Mode=any 2>&1; true",
        { env, root: true, args: [`${gateway}:${gitPort}`] },
      );
      assertStringIncludes(apt.stdout, "404");
      assertStringIncludes(
        lines.join("\n"),
        `sandbox ${nameA} (${ipA}) GET http://${gateway}:${gitPort} → 404`,
      );
      const anonymousClone = await runA(
        'cd /tmp && NO_PROXY= no_proxy= GIT_TERMINAL_PROMPT=0 http_proxy="$2" git clone -q "$1" nope',
        { args: [git.url, `http://${gateway}:${proxy.port}`] },
      );
      assert(anonymousClone.code !== 0, "cloned through the proxy without a token");
      assertStringIncludes(anonymousClone.stderr, "407");

      const before = upstream.requests.length;
      const code = async (run: GuestRun, script: string, e?: Record<string, string>) =>
        (await run(script, { env: e })).stdout.trim();
      // Off-list host through CONNECT (HTTPS_PROXY, token included): refused by the policy.
      const offList = await runA("curl -sS https://blocked.example/", { env });
      assertEquals(offList.code, 56, offList.stderr);
      assertStringIncludes(offList.stderr, "403");
      // (--noproxy "": NO_PROXY lists loopback and the proxy itself, which these probes target.)
      // The host's loopback through the proxy (tachikoma's hole): refused.
      assertEquals(
        await code(
          runA,
          `curl -s -o /dev/null -w '%{http_connect}' -p --noproxy "" -x "$HTTP_PROXY" http://127.0.0.1:${upstream.port}/v1/models; true`,
          env,
        ),
        "403",
      );
      // Plain HTTP to a private address (the host's sshd on the bridge): refused.
      assertEquals(
        await code(
          runA,
          `curl -s -o /dev/null -w '%{http_code}' --noproxy "" -x "$HTTP_PROXY" http://${gateway}:22/`,
          env,
        ),
        "403",
      );
      // An absolute URI to any other host never reaches the API with credentials.
      assertEquals(
        await code(
          runA,
          `curl -s -o /dev/null -w '%{http_code}' --noproxy "" -x "$HTTP_PROXY" -X POST http://anyhost/v1/messages -d '{}'`,
          env,
        ),
        "403",
      );
      // Traversal out of /v1/ on the proxy itself.
      assertEquals(
        await code(
          runA,
          `curl -s --path-as-is -o /dev/null -w '%{http_code}' -H "authorization: Bearer $ANTHROPIC_AUTH_TOKEN" "$ANTHROPIC_BASE_URL/v1/../admin"`,
          env,
        ),
        "403",
      );
      // A without its token: 401 from the API, 407 from the proxy.
      const bare = `http://${gateway}:${proxy.port}`;
      assertEquals(
        await code(runA, `curl -s -o /dev/null -w '%{http_code}' ${bare}/v1/models`),
        "401",
      );
      assertEquals(
        await code(
          runA,
          `curl -s -o /dev/null -w '%{http_connect}' -p -x ${bare} http://127.0.0.1:1/; true`,
        ),
        "407",
      );

      // B: another container on the bridge, no sandbox of ours yet: refused however it asks.
      const stranger = newToken();
      assertEquals(
        await code(runB, `curl -s -o /dev/null -w '%{http_code}' ${bare}/v1/models`),
        "401",
      );
      assertEquals(
        await code(
          runB,
          `curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer ${stranger}" ${bare}/v1/models`,
        ),
        "401",
      );
      assertEquals(
        await code(
          runB,
          `curl -s -o /dev/null -w '%{http_connect}' -p -x ${bare} http://${gateway}:${gitPort}/; true`,
        ),
        "407",
      );
      assertEquals(
        await code(
          runB,
          `curl -s -o /dev/null -w '%{http_code}' -x http://tachikoma:${stranger}@${gateway}:${proxy.port} http://${gateway}:${gitPort}/repo.git/HEAD`,
        ),
        "407",
      );
      assertEquals(upstream.requests.length, before, "a refused request reached the upstream");
      let log = lines.join("\n");
      assertStringIncludes(
        log,
        `egress denied: sandbox ${nameA} (${ipA}) CONNECT blocked.example:443`,
      );
      assertStringIncludes(log, `refused: client ${ipB} GET "/v1/models" → 401 (no token)`);
      assertStringIncludes(log, `refused: client ${ipB} GET "/v1/models" → 401 (unknown token)`);
      assertStringIncludes(log, `refused: client ${ipB} CONNECT "${gateway}:${gitPort}" → 407`);
      assertStringIncludes(log, `refused: client ${ipA} GET "/v1/models" → 401 (no token)`);

      // B becomes a sandbox: its own token, its own name in the log.
      await writeState([record(nameA, ipA), record(nameB, ipB)]);
      const tokenB = await ensureToken(stateDir, nameB);
      assertNotEquals(tokenA, tokenB);
      const msgB = await runB(message, { env: guestEnv(tokenB) });
      assertEquals(msgB.code, 0, msgB.stderr);
      log = lines.join("\n");
      assertStringIncludes(log, `sandbox ${nameB} (${ipB}) POST /v1/messages → 200`);
      assert(!log.includes(secret), "secret in the proxy log");
      for (const t of [tokenA, tokenB, stranger]) assert(!log.includes(t), "a token in the log");

      // No host secret in either guest, and no sandbox holds the other's token.
      await searchSelfTest(runA);
      assertEquals(await searchGuest(runA, secret), { files: [], procs: 0 }, "secret in A");
      assertEquals(await searchGuest(runB, secret), { files: [], procs: 0 }, "secret in B");
      assertEquals(await searchGuest(runA, tokenB), { files: [], procs: 0 }, "B's token in A");
      assertEquals(await searchGuest(runB, tokenA), { files: [], procs: 0 }, "A's token in B");
    } finally {
      await Promise.all([nameA, nameB].map((n) => backend.delete(n).catch(() => {})));
      await proxy?.shutdown();
      await git?.close();
      await upstream.close();
      await Deno.remove(stateDir, { recursive: true });
    }
  },
});

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test({
  name: "lab: tachikoma spawn: the guest has its token, no host secret; destroy revokes it",
  ignore: labIgnored(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const lab = labEnv()!;
    const secret = `sk-ant-api03-SPAWNSECRET-${crypto.randomUUID()}`;
    const oauth = `sk-ant-oat01-SPAWNOAUTH-${crypto.randomUUID()}`;
    registerSecret(secret);
    registerSecret(oauth);
    const dir = await Deno.makeTempDir({ prefix: "tk-proxy-spawn-" });
    const home = `${dir}/home`;
    const stateDir = `${dir}/state`;
    const repo = `${dir}/${labName("proxy")}`;
    const upstream = startFakeUpstream();
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: home,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
      TACHIKOMA_CONFIG_DIR: stateDir,
      ANTHROPIC_API_KEY: secret,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.invalid",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.invalid",
      NO_COLOR: "1",
    };
    const cli = (cwd: string, ...args: string[]) => runCliFromSource(args, { cwd, env });
    let sandbox: string | null = null;
    try {
      await Deno.mkdir(`${home}/.claude`, { recursive: true });
      await Deno.writeTextFile(
        `${home}/.claude/.credentials.json`,
        JSON.stringify({ claudeAiOauth: { accessToken: oauth, expiresAt: Date.now() + 3600_000 } }),
        { mode: 0o600 },
      );
      await Deno.mkdir(stateDir, { recursive: true });
      const port = (() => {
        const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const p = (l.addr as Deno.NetAddr).port;
        l.close();
        return p;
      })();
      await Deno.writeTextFile(
        `${stateDir}/config.toml`,
        [
          'backend = "incus"',
          'ssh_user = "admin"',
          'claude_install = "skip"',
          'tmux_install = "skip"',
          "share_claude_dirs = []",
          `credential_proxy_port = ${port}`,
          `credential_proxy_upstream = "${upstream.url}"`,
          'egress = "allowlist"',
          "[incus]",
          `socket = "${lab.socket}"`,
          `image = "${lab.image}"`,
          ...(lab.pool ? [`storage_pool = "${lab.pool}"`] : []),
          `network = "${lab.bridge}"`,
        ].join("\n") + "\n",
      );
      await Deno.mkdir(repo);
      for (
        const args of [["init", "-q", "-b", "main"], [
          "commit",
          "-q",
          "--allow-empty",
          "-m",
          "init",
        ]]
      ) {
        const g = await new Deno.Command("git", { args, cwd: repo, env, clearEnv: true }).output();
        assert(g.success, decoder.decode(g.stderr));
      }
      const spawned = await cli(repo, "spawn", "secret-check", "--no-attach", "--json");
      assertEquals(spawned.code, 0, spawned.stderr + spawned.stdout);
      const state = JSON.parse(await Deno.readTextFile(`${stateDir}/state.json`));
      sandbox = state.vms.find((v: { repo_root?: string }) => v.repo_root === repo)?.name ??
        state.vms[0]?.name;
      if (!sandbox) throw new Error("spawn recorded no sandbox");
      const name: string = sandbox;

      // Its token: on the host 0600, in the guest's profile (checked by hash, not printed).
      const token = await readToken(stateDir, name);
      if (!token) throw new Error("spawn made no proxy token");
      registerSecret(token);
      assertEquals((await Deno.stat(tokenPath(stateDir, name))).mode! & 0o777, 0o600);
      assertEquals((await Deno.stat(`${stateDir}/proxy/tokens`)).mode! & 0o777, 0o700);

      const { openLabIncus } = await import("./provision_lab.ts");
      const backend = await openLabIncus();
      const run: GuestRun = guestRunner(backend, name);
      const profile = ". ~/.profile >/dev/null 2>&1; ";
      const inGuest = await run(profile + 'printf %s "$ANTHROPIC_AUTH_TOKEN" | sha256sum');
      assertEquals(inGuest.stdout.split(" ")[0], await sha256(token));
      // The guest reaches the API through the proxy with what provisioning gave it (Claude
      // Code sends ANTHROPIC_AUTH_TOKEN as a Bearer token).
      const viaProfile = await run(
        profile + 'curl -sS -o /dev/null -w "%{http_code}" ' +
          '-H "authorization: Bearer $ANTHROPIC_AUTH_TOKEN" "$ANTHROPIC_BASE_URL/v1/models"',
      );
      assertEquals(viaProfile.stdout.trim(), "200", viaProfile.stderr);
      const auth = upstream.requests.at(-1)!.headers["authorization"];
      assertEquals(auth, `Bearer ${oauth}`, "the host's credentials file should be the source");
      const anonymous = await run(
        profile + 'curl -s -o /dev/null -w "%{http_code}" "$ANTHROPIC_BASE_URL/v1/models"',
      );
      assertEquals(anonymous.stdout.trim(), "401");
      // The profile's proxy URLs carry the token: egress is judged by policy (403), not 407.
      const egress = await run(profile + "curl -sS https://blocked.example/");
      assertEquals(egress.code, 56, egress.stderr);
      assertStringIncludes(egress.stderr, "403");
      const log = `${stateDir}/logs/proxy.log`;
      const expected = `egress denied: sandbox ${name} (`;
      let text = "";
      for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
        text = await Deno.readTextFile(log);
        if (text.includes(expected)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assertStringIncludes(text, expected);
      assertStringIncludes(text, `sandbox ${name} (`);
      for (const s of [secret, oauth, token]) assert(!text.includes(s), "a secret in the log");

      await searchSelfTest(run);
      for (const needle of [secret, oauth]) {
        assertEquals(
          await searchGuest(run, needle),
          { files: [], procs: 0 },
          "secret in the guest",
        );
      }

      // destroy revokes the token: the still-running proxy refuses it at once.
      const runtime = JSON.parse(await Deno.readTextFile(`${stateDir}/proxy.json`));
      const destroyed = await cli(repo, "destroy", "--force", name);
      assertEquals(destroyed.code, 0, destroyed.stderr);
      sandbox = null;
      assertEquals(await readToken(stateDir, name), null);
      const after = await fetch(`${runtime.url}/v1/models`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assertEquals(after.status, 401);
      await after.body?.cancel();
    } finally {
      if (sandbox) await cli(repo, "destroy", "--force", sandbox).catch(() => {});
      await cli(dir, "proxy", "stop").catch(() => {});
      await upstream.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
