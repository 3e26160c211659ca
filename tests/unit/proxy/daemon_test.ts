/**
 * The background proxy through the real CLI (`deno run main.ts proxy …`) and `ensureProxy()`:
 * one proxy however many starts race, `stop` refuses a PID that is not ours, `status` asks
 * `/health`, files are 0600 and the log never holds the secret nor a token; a running proxy
 * is reused only while it serves the current configuration (else restarted), and a proxy of
 * another configuration directory is neither reused nor killed.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { ConflictError } from "../../../src/lib/errors.ts";
import { defaultConfig } from "../../../src/config/default_config.ts";
import type { Config } from "../../../src/config/schema.ts";
import { daemonPaths } from "../../../src/proxy/daemon.ts";
import { ensureProxy } from "../../../src/proxy/ensure.ts";
import { proxyGuestEnv } from "../../../src/proxy/guest_env.ts";
import { hostProcesses } from "../../../src/proxy/process_info.ts";
import { cli, configFor, proxyProcessesOn, sandboxToken, SECRET, world } from "./daemon_world.ts";
import { CLI_FROM_SOURCE } from "../../testing/run.ts";

Deno.test("daemon: start -d twice (concurrently) → one proxy; status via /health; stop", async () => {
  const w = await world();
  try {
    const [a, b] = await Promise.all([
      cli(w, "proxy", "start", "-d", "--json"),
      cli(w, "proxy", "start", "-d", "--json"),
    ]);
    assertEquals(a.code, 0, a.stderr);
    assertEquals(b.code, 0, b.stderr);
    const ra = JSON.parse(a.stdout);
    const rb = JSON.parse(b.stdout);
    assertEquals(ra.pid, rb.pid);
    assertEquals([ra.already_running, rb.already_running].sort(), [false, true]);
    assertEquals(await proxyProcessesOn(w.port), 1);
    const again = JSON.parse((await cli(w, "proxy", "start", "-d", "--json")).stdout);
    assertEquals(again, { ...ra, already_running: true });
    assertEquals(ra.restarted, null);

    const status = await cli(w, "proxy", "status", "--json");
    assertEquals(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout);
    assertEquals(s.healthy, true);
    assertEquals(s.pid, ra.pid);
    assertEquals(s.credential_source, "api_key_env");
    assertEquals(s.url, `http://127.0.0.1:${w.port}`);

    // Foreground start while one runs: refused.
    const fg = await cli(w, "proxy", "start");
    assertEquals(fg.code, 1);
    assertStringIncludes(fg.stderr, "already runs");

    // A request through it carries the host key; the log names it without the secret.
    const token = await sandboxToken(w, "tk-daemon-main");
    const anonymous = await fetch(`http://127.0.0.1:${w.port}/v1/models`);
    assertEquals(anonymous.status, 401);
    await anonymous.body?.cancel();
    const res = await fetch(`http://127.0.0.1:${w.port}/v1/models`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assertEquals(res.status, 200);
    await res.body?.cancel();
    assertEquals(w.upstream.requests.at(-1)!.headers["x-api-key"], SECRET);
    const paths = daemonPaths(w.dir);
    for (const f of [paths.log, paths.pid, paths.runtime]) {
      assertEquals((await Deno.stat(f)).mode! & 0o777, 0o600, f);
    }
    assertEquals((await Deno.readTextFile(paths.pid)).trim(), String(ra.pid));
    // Log lines are batched per tick: wait (with a deadline) for the request's line.
    let log = "";
    for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
      log = await Deno.readTextFile(paths.log);
      if (log.includes("sandbox tk-daemon-main (127.0.0.1) GET /v1/models → 200")) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assertStringIncludes(log, "sandbox tk-daemon-main (127.0.0.1) GET /v1/models → 200");
    assert(!log.includes(SECRET), "secret in the proxy log");
    assert(!log.includes(token), "token in the proxy log");
    const logs = await cli(w, "proxy", "logs");
    assertStringIncludes(logs.stdout, "listening on");

    const stop = await cli(w, "proxy", "stop", "--json");
    assertEquals(stop.code, 0, stop.stderr);
    assertEquals(JSON.parse(stop.stdout).outcome, "stopped");
    assertEquals(await hostProcesses.alive(ra.pid), false);
    const after = JSON.parse((await cli(w, "proxy", "status", "--json")).stdout);
    assertEquals(after.running, false);
    assertEquals(after.healthy, false);
  } finally {
    await w.cleanup();
  }
});

Deno.test("daemon: stop refuses a PID that is not our proxy", async () => {
  const w = await world();
  const sleeper = new Deno.Command("sleep", { args: ["60"] }).spawn();
  try {
    await Deno.writeTextFile(daemonPaths(w.dir).pid, String(sleeper.pid));
    const stop = await cli(w, "proxy", "stop", "--json");
    assertEquals(stop.code, 0, stop.stderr);
    const r = JSON.parse(stop.stdout);
    assertEquals(r.outcome, "stale");
    assertStringIncludes(r.message, "is not a tachikoma proxy");
    assertEquals(await hostProcesses.alive(sleeper.pid), true, "the sleep was signalled");
    await assertRejects(() => Deno.stat(daemonPaths(w.dir).pid));
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
    await w.cleanup();
  }
});

Deno.test("daemon: a proxy that cannot bind fails with the reason from its log", async () => {
  const w = await world();
  try {
    // 192.0.2.1 (TEST-NET-1) is not an address of this host: binding fails, nothing is sent.
    const r = await cli(w, "proxy", "start", "-d", "--bind", "192.0.2.1");
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "no such address");
    assertEquals(await proxyProcessesOn(w.port), 0);
    await assertRejects(() => Deno.stat(daemonPaths(w.dir).pid));
  } finally {
    await w.cleanup();
  }
});

Deno.test("ensureProxy: concurrent calls start one healthy proxy; guests get its address", async () => {
  const w = await world();
  try {
    const config = configFor(w);
    const opts = { stateDir: w.dir, backendName: "incus", env: w.env };
    const [a, b] = await Promise.all([ensureProxy(config, opts), ensureProxy(config, opts)]);
    if (!a || !b) throw new Error("ensureProxy returned null");
    assertEquals(a.pid, b.pid);
    assertEquals(a.url, `http://127.0.0.1:${w.port}`);
    assertEquals(await proxyProcessesOn(w.port), 1);
    const c = await ensureProxy(config, opts);
    assertEquals(c?.already_running, true);
    const token = await sandboxToken(w, "tk-ensure");
    const env = proxyGuestEnv(config, "incus", { egressRestricted: true, token });
    assertEquals(env.ANTHROPIC_BASE_URL, a.url);
    assertEquals(env.HTTPS_PROXY, `http://tachikoma:${token}@127.0.0.1:${w.port}`);
    assert(!Object.values(env).includes(SECRET));
  } finally {
    await w.cleanup();
  }
});

Deno.test("ensureProxy: something else on the port is a conflict, not a proxy", async () => {
  const w = await world();
  const squatter = Deno.serve(
    { hostname: "127.0.0.1", port: w.port, onListen: () => {} },
    () => new Response("not here", { status: 404 }),
  );
  try {
    const e = await assertRejects(
      () => ensureProxy(configFor(w), { stateDir: w.dir, backendName: "incus", env: w.env }),
      ConflictError,
    );
    assertStringIncludes(e.message, "not a tachikoma proxy");
  } finally {
    await squatter.shutdown();
    await w.cleanup();
  }
});

Deno.test("ensureProxy: nothing to do when neither credentials nor egress need the proxy", async () => {
  const config = {
    ...defaultConfig("linux"),
    credential_proxy: false,
    egress: "unrestricted",
  } as Config;
  assertEquals(await ensureProxy(config, { stateDir: "/nonexistent", backendName: "incus" }), null);
});

Deno.test("daemon: proxy logs -f prints what is appended, until Ctrl-C", async () => {
  const w = await world();
  try {
    const log = daemonPaths(w.dir).log;
    await Deno.mkdir(`${w.dir}/logs`, { recursive: true });
    await Deno.writeTextFile(log, "first line\n", { mode: 0o600 });
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        ...CLI_FROM_SOURCE,
        "proxy",
        "logs",
        "-f",
      ],
      env: w.env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    const until = async (text: string) => {
      const deadline = Date.now() + 10_000;
      while (!seen.includes(text)) {
        if (Date.now() > deadline) throw new Error(`never saw ${JSON.stringify(text)} in ${seen}`);
        const { value, done } = await reader.read();
        if (done) throw new Error(`logs -f ended early: ${seen}`);
        seen += value;
      }
    };
    await until("first line\n");
    await Deno.writeTextFile(log, "second line\n", { append: true });
    await until("second line\n");
    child.kill("SIGINT");
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    const status = await child.status;
    await child.stderr.cancel().catch(() => {});
    assert(status.code === 0 || status.code === 130, `exit ${status.code}`);
    // --json prints the lines as one document.
    const json = await cli(w, "proxy", "logs", "--json");
    assertEquals(JSON.parse(json.stdout).lines, ["first line", "second line"]);
  } finally {
    await w.cleanup();
  }
});
