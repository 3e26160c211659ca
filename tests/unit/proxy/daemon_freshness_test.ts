/**
 * A running proxy is reused only while it serves the current configuration: the same → reused;
 * a changed upstream, credential environment or an older proxy that recorded no fingerprint →
 * restarted (one proxy, the old process gone, requests reach the new upstream). A proxy that
 * another configuration directory started is neither reused (its upstream, its tokens) nor
 * killed: a ConflictError names it.
 */
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { ConflictError } from "../../../src/lib/errors.ts";
import { daemonPaths, readRuntime, writeRuntime } from "../../../src/proxy/daemon.ts";
import { ensureProxy } from "../../../src/proxy/ensure.ts";
import { hostProcesses } from "../../../src/proxy/process_info.ts";
import { startFakeUpstream } from "../../fixtures/upstream.ts";
import {
  cli,
  configFor,
  proxyProcessesOn,
  sandboxToken,
  SECRET,
  type World,
  world,
} from "./daemon_world.ts";

async function writeConfig(w: World, upstream: string, port = w.port): Promise<void> {
  await Deno.writeTextFile(
    `${w.dir}/config.toml`,
    `backend = "incus"\ncredential_proxy_bind = "127.0.0.1"\ncredential_proxy_port = ${port}\n` +
      `credential_proxy_upstream = "${upstream}"\n`,
  );
}

async function apiCall(port: number, token: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/models`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await res.body?.cancel();
  return res.status;
}

Deno.test("ensureProxy: same configuration → reused; changed upstream or credentials → restarted", async () => {
  const w = await world();
  const second = startFakeUpstream();
  try {
    const opts = { stateDir: w.dir, backendName: "incus", env: w.env };
    const a = await ensureProxy(configFor(w), opts);
    const b = await ensureProxy(configFor(w), opts);
    if (!a || !b) throw new Error("no proxy");
    assertEquals([b.pid, b.already_running, b.restarted], [a.pid, true, null]);
    const token = await sandboxToken(w, "tk-fresh");
    assertEquals(await apiCall(w.port, token), 200);
    assertEquals(w.upstream.requests.length, 1);

    // The user changes the upstream: the next spawn's proxy serves the new one.
    await writeConfig(w, second.url);
    const c = await ensureProxy({ ...configFor(w), credential_proxy_upstream: second.url }, opts);
    if (!c) throw new Error("no proxy");
    assertNotEquals(c.pid, a.pid);
    assertEquals(c.restarted, ["upstream"]);
    assertEquals(await hostProcesses.alive(a.pid), false, "the old proxy still runs");
    assertEquals(await proxyProcessesOn(w.port), 1);
    assertEquals(await apiCall(w.port, token), 200, "the token survives a restart");
    assertEquals(second.requests.length, 1);
    assertEquals(w.upstream.requests.length, 1, "the old upstream still got the request");
    assertEquals(second.requests[0].headers["x-api-key"], SECRET);

    // Another credential in the environment: restarted again, the new key is used.
    const key2 = "sk-ant-api03-DAEMONTEST-second-key-0123456789";
    const cfg = { ...configFor(w), credential_proxy_upstream: second.url };
    const d = await ensureProxy(cfg, { ...opts, env: { ...w.env, ANTHROPIC_API_KEY: key2 } });
    assertEquals(d?.restarted, ["credential_env"]);
    assertEquals(await apiCall(w.port, token), 200);
    assertEquals(second.requests.at(-1)!.headers["x-api-key"], key2);

    // proxy.json holds hashes, not the key or the commands; it is 0600.
    const paths = daemonPaths(w.dir);
    const text = await Deno.readTextFile(paths.runtime);
    assert(!text.includes(key2) && !text.includes(SECRET), "a key is in proxy.json");
    assertEquals((await Deno.stat(paths.runtime)).mode! & 0o777, 0o600);

    // An older proxy (no fingerprint recorded) is replaced too.
    const recorded = await readRuntime(paths);
    if (!recorded) throw new Error("no runtime");
    delete recorded.fingerprint;
    delete recorded.fields;
    await writeRuntime(paths, recorded);
    const e = await ensureProxy(cfg, { ...opts, env: { ...w.env, ANTHROPIC_API_KEY: key2 } });
    assertEquals(e?.restarted, ["unknown: started by an older tachikoma"]);
    assertEquals(await hostProcesses.alive(recorded.pid), false);
  } finally {
    await w.cleanup();
    await second.close();
  }
});

Deno.test("ensureProxy: a proxy of another config directory is not reused and not killed", async () => {
  const mine = await world();
  const theirs = await world();
  try {
    // Theirs runs on the port my configuration wants.
    await writeConfig(mine, mine.upstream.url, theirs.port);
    const started = await cli(theirs, "proxy", "start", "-d", "--json");
    assertEquals(started.code, 0, started.stderr);
    const pid = JSON.parse(started.stdout).pid;

    const e = await assertRejects(
      () =>
        ensureProxy({ ...configFor(mine), credential_proxy_port: theirs.port }, {
          stateDir: mine.dir,
          backendName: "incus",
          env: mine.env,
        }),
      ConflictError,
    );
    assertStringIncludes(e.message, `PID ${pid}`);
    if (Deno.build.os === "linux") {
      assertStringIncludes(e.message, Deno.realPathSync(theirs.dir));
      assertStringIncludes(e.hint ?? "", "tachikoma proxy stop");
    }
    // The same from the CLI.
    const cliStart = await cli(mine, "proxy", "start", "-d");
    assertEquals(cliStart.code, 1, cliStart.stderr);
    assertStringIncludes(cliStart.stderr, `PID ${pid}`);

    // Theirs still runs and still serves its own upstream; my tokens mean nothing to it.
    assertEquals(await hostProcesses.alive(pid), true);
    const theirToken = await sandboxToken(theirs, "tk-theirs");
    const myToken = await sandboxToken(mine, "tk-mine");
    assertEquals(await apiCall(theirs.port, theirToken), 200);
    assertEquals(await apiCall(theirs.port, myToken), 401);
    assertEquals(theirs.upstream.requests.length, 1);
    assertEquals(mine.upstream.requests.length, 0);
  } finally {
    await theirs.cleanup();
    await mine.cleanup();
  }
});

Deno.test("proxy start -d: restarts its proxy when config.toml changed, says which field", async () => {
  const w = await world();
  const second = startFakeUpstream();
  try {
    const first = JSON.parse((await cli(w, "proxy", "start", "-d", "--json")).stdout);
    await writeConfig(w, second.url);
    const again = await cli(w, "proxy", "start", "-d", "--json");
    assertEquals(again.code, 0, again.stderr);
    const r = JSON.parse(again.stdout);
    assertNotEquals(r.pid, first.pid);
    assertEquals([r.already_running, r.restarted], [false, ["upstream"]]);
    const human = await cli(w, "proxy", "start", "-d");
    assertStringIncludes(human.stdout, "already running");
  } finally {
    await w.cleanup();
    await second.close();
  }
});
