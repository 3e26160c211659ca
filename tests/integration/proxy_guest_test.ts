/**
 * The credential proxy seen from a real guest (an Incus lab container on the lab bridge).
 *
 * 1. Guest ↔ proxy: the proxy listens on the bridge gateway (read from the Incus REST API, the
 *    default bind for local Incus); from inside the container, curl with the guest environment
 *    (`proxyGuestEnv`) streams a message through it (the fake upstream gets the host key), and
 *    every abuse path is refused: off-list CONNECT, CONNECT to the host's loopback, plain HTTP
 *    to a private address, absolute `http://anyhost/v1/…`, traversal. Then the guest's whole
 *    filesystem and every process environment and command line are searched for the secret.
 * 2. `tachikoma spawn` end to end (issue 7 §4): a known secret on the host (API key env and a
 *    Claude credentials file), spawn a sandbox (spawn makes sure the proxy runs; provisioning
 *    gives the guest the proxy environment), search the guest the same way.
 *
 * Traffic goes only to loopback and the lab bridge: no DNS lookups (off-list names are refused
 * before resolution), no other addresses.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { CredentialCache } from "../../src/credentials/cache.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { Logger } from "../../src/lib/log.ts";
import { registerSecret } from "../../src/lib/redact.ts";
import { toBase64 } from "../../src/lib/shell.ts";
import { readIncusGateway } from "../../src/proxy/bind.ts";
import { StateClientDirectory } from "../../src/proxy/clients.ts";
import { EgressPolicy } from "../../src/proxy/egress.ts";
import { proxyGuestEnv } from "../../src/proxy/guest_env.ts";
import { startProxyServer } from "../../src/proxy/server.ts";
import { startFakeUpstream } from "../fixtures/upstream.ts";
import { labEnv, labIgnored, labName } from "./lab.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const decoder = new TextDecoder();

/** Runs `script` with bash in the guest; returns exit code and output. */
type GuestRun = (
  script: string,
  options?: { env?: Record<string, string>; root?: boolean; args?: string[] },
) => Promise<{ code: number; stdout: string; stderr: string }>;

/**
 * Searches the guest for `needle` without ever putting it on a command line or in an
 * environment: it travels base64-encoded and reaches grep through a pipe (`-f /dev/fd/3`).
 * Returns the files that contain it and the number of process environ/cmdline entries that do.
 */
async function searchGuest(
  run: GuestRun,
  needle: string,
): Promise<{ files: string[]; procs: number }> {
  const script = [
    "set -u",
    // Every top-level directory but the kernel's pseudo filesystems (/proc, /sys, /dev).
    'roots=(); for d in /* /.[!.]*; do case "$d" in /proc|/sys|/dev) ;; *) [ -e "$d" ] && roots+=("$d");; esac; done',
    'files=$(grep -rlaF -f /dev/fd/3 "${roots[@]}" 3< <(printf %s "$1" | base64 -d) 2>/dev/null || true)',
    'procs=$(for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr "\\0" "\\n" < "$f"; echo; done 2>/dev/null | grep -caF -f /dev/fd/3 3< <(printf %s "$1" | base64 -d) || true)',
    'printf "PROCS=%s\\n%s\\n" "$procs" "$files"',
  ].join("\n");
  const r = await run(script, { root: true, args: [toBase64(needle)] });
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n").filter((l) => l.length > 0);
  const procs = Number(/^PROCS=(\d+)/.exec(lines[0] ?? "")?.[1] ?? "NaN");
  assert(Number.isFinite(procs), `unexpected search output: ${r.stdout}`);
  return { files: lines.slice(1), procs };
}

/** Proves the search can fail: a marker placed in a file and a process environment is found. */
async function searchSelfTest(run: GuestRun): Promise<void> {
  const marker = `tk-marker-${crypto.randomUUID()}`;
  const placed = await run(
    'printf %s "$1" | base64 -d > /tmp/tk-marker.txt; ' +
      'nohup env TK_MARKER="$(cat /tmp/tk-marker.txt)" sleep 120 >/dev/null 2>&1 & sleep 0.2',
    { root: true, args: [toBase64(marker)] },
  );
  assertEquals(placed.code, 0, placed.stderr);
  const found = await searchGuest(run, marker);
  assert(found.files.includes("/tmp/tk-marker.txt"), `self-test: file not found: ${found.files}`);
  assert(found.procs >= 1, "self-test: process environment not searched");
  await run("rm -f /tmp/tk-marker.txt; pkill -f 'sleep 120' || true", { root: true });
}

Deno.test({
  name: "lab: a guest uses the proxy on the bridge gateway; abuse is refused; no secret inside",
  ignore: labIgnored(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const lab = labEnv()!;
    const { openLabIncus } = await import("./provision_lab.ts");
    const secret = `sk-ant-api03-LABSECRET-${crypto.randomUUID()}`;
    registerSecret(secret);
    const dir = await Deno.makeTempDir({ prefix: "tk-proxy-guest-" });
    const backend = await openLabIncus();
    const name = labName("proxy");
    const upstream = startFakeUpstream({ eventIntervalMs: 2 });
    const lines: string[] = [];
    let proxy: Awaited<ReturnType<typeof startProxyServer>> | null = null;
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

      const statePath = `${dir}/state.json`;
      await Deno.writeTextFile(statePath, JSON.stringify({ version: 2, vms: [] }));
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
        clients: new StateClientDirectory({
          statePath,
          defaultPolicy: new EgressPolicy("allowlist", []),
          logger: new Logger({ sink: () => {} }),
          repoPolicy: () => Promise.resolve(new EgressPolicy("allowlist", ["github.com"])),
        }),
        logger: new Logger({ level: "debug", sink: (l) => lines.push(l) }),
        resolver: () => Promise.reject(new Error("no DNS in lab tests")),
      });

      // A plain container with an address is all this test needs (no sshd).
      await backend.create(name, { image: lab.image });
      await backend.start(name, { shares: [] });
      const ip = await backend.waitForAddress(name, {
        deadline: Date.now() + 120_000,
        clock: systemClock,
      });
      await Deno.writeTextFile(
        statePath,
        JSON.stringify({ version: 2, vms: [{ name, ip, repo_root: dir, branch: "main" }] }),
      );
      const env = proxyGuestEnv(
        {
          credential_proxy: true,
          credential_proxy_bind: gateway,
          credential_proxy_port: proxy.port,
        },
        "incus",
        { egressRestricted: true },
      );
      assertEquals(env.ANTHROPIC_BASE_URL, `http://${gateway}:${proxy.port}`);
      assert(!Object.values(env).includes(secret));

      const run: GuestRun = async (script, options = {}) => {
        const r = await backend.exec(name, {
          argv: ["bash", "-c", script, "bash", ...(options.args ?? [])],
          env: options.env,
          user: options.root ? "root" : "user",
          timeoutMs: 120_000,
        });
        return { code: r.code, stdout: decoder.decode(r.stdout), stderr: decoder.decode(r.stderr) };
      };

      // A streamed message through the proxy, as Claude Code would send it.
      const msg = await run(
        'curl -sS -N -X POST "$ANTHROPIC_BASE_URL/v1/messages" ' +
          '-H "authorization: Bearer $ANTHROPIC_AUTH_TOKEN" -H "content-type: application/json" ' +
          `-d '{"model":"claude-test","max_tokens":8,"stream":true,"messages":[]}'`,
        { env },
      );
      assertEquals(msg.code, 0, msg.stderr);
      assertStringIncludes(msg.stdout, "event: message_stop");
      const seen = upstream.requests.at(-1)!;
      assertEquals(seen.headers["x-api-key"], secret);
      assertEquals(seen.headers["authorization"], undefined);
      assertStringIncludes(lines.join("\n"), `sandbox ${name} (${ip}) POST /v1/messages → 200`);

      const health = await run('curl -sS "$ANTHROPIC_BASE_URL/health"', { env });
      assertEquals(JSON.parse(health.stdout).proxy, "tachikoma");
      assert(!health.stdout.includes(secret));

      const before = upstream.requests.length;
      const code = async (script: string) => (await run(script, { env })).stdout.trim();
      // Off-list host through CONNECT (HTTPS_PROXY): refused before any DNS lookup.
      const offList = await run("curl -sS https://blocked.example/", { env });
      assertEquals(offList.code, 56, offList.stderr);
      assertStringIncludes(offList.stderr, "403");
      // (--noproxy "": NO_PROXY lists loopback and the proxy itself, which these probes target.)
      // The host's loopback through the proxy (tachikoma's hole): refused.
      assertEquals(
        await code(
          `curl -s -o /dev/null -w '%{http_connect}' -p --noproxy "" -x "$HTTP_PROXY" http://127.0.0.1:${upstream.port}/v1/models; true`,
        ),
        "403",
      );
      // Plain HTTP to a private address (the host's sshd on the bridge): refused.
      assertEquals(
        await code(
          `curl -s -o /dev/null -w '%{http_code}' --noproxy "" -x "$HTTP_PROXY" http://${gateway}:22/`,
        ),
        "403",
      );
      // An absolute URI to any other host never reaches the API with credentials.
      assertEquals(
        await code(
          `curl -s -o /dev/null -w '%{http_code}' --noproxy "" -x "$HTTP_PROXY" -X POST http://anyhost/v1/messages -d '{}'`,
        ),
        "403",
      );
      // Traversal out of /v1/ on the proxy itself.
      assertEquals(
        await code(
          `curl -s --path-as-is -o /dev/null -w '%{http_code}' "$ANTHROPIC_BASE_URL/v1/../admin"`,
        ),
        "403",
      );
      assertEquals(upstream.requests.length, before, "a refused request reached the upstream");
      const log = lines.join("\n");
      assertStringIncludes(
        log,
        `egress denied: sandbox ${name} (${ip}) CONNECT blocked.example:443`,
      );
      assert(!log.includes(secret), "secret in the proxy log");

      await searchSelfTest(run);
      const found = await searchGuest(run, secret);
      assertEquals(found, { files: [], procs: 0 }, "the secret is inside the guest");
    } finally {
      await backend.delete(name).catch(() => {});
      await proxy?.shutdown();
      await upstream.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "lab: tachikoma spawn with a known secret on the host leaves no trace of it in the guest",
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
    const cli = async (cwd: string, ...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          "--frozen",
          `--config=${ROOT}deno.json`,
          `${ROOT}main.ts`,
          ...args,
        ],
        env,
        clearEnv: true,
        cwd,
        stdout: "piped",
        stderr: "piped",
      }).output();
      return {
        code: out.code,
        stdout: decoder.decode(out.stdout),
        stderr: decoder.decode(out.stderr),
      };
    };
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
      assert(sandbox, "spawn recorded no sandbox");

      const { openLabIncus } = await import("./provision_lab.ts");
      const backend = await openLabIncus();
      const run: GuestRun = async (script, options = {}) => {
        const r = await backend.exec(sandbox!, {
          argv: ["bash", "-c", script, "bash", ...(options.args ?? [])],
          env: options.env,
          user: options.root ? "root" : "user",
          timeoutMs: 120_000,
        });
        return { code: r.code, stdout: decoder.decode(r.stdout), stderr: decoder.decode(r.stderr) };
      };
      // The guest reaches the API through the proxy with what provisioning gave it.
      const viaProfile = await run(
        '. ~/.profile >/dev/null 2>&1; curl -sS -o /dev/null -w "%{http_code}" "$ANTHROPIC_BASE_URL/v1/models"',
      );
      assertEquals(viaProfile.stdout.trim(), "200", viaProfile.stderr);
      const auth = upstream.requests.at(-1)!.headers["authorization"];
      assertEquals(auth, `Bearer ${oauth}`, "the host's credentials file should be the source");

      await searchSelfTest(run);
      for (const needle of [secret, oauth]) {
        assertEquals(
          await searchGuest(run, needle),
          { files: [], procs: 0 },
          "secret in the guest",
        );
      }
    } finally {
      if (sandbox) await cli(repo, "destroy", "--force", sandbox).catch(() => {});
      await cli(dir, "proxy", "stop").catch(() => {});
      await upstream.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
