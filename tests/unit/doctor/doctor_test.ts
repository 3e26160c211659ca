/**
 * `doctor`'s own checks: ssh-keygen must really make a key (a failing one is a failed check),
 * and the proxy check looks at the address this config's sandboxes use — a real proxy on
 * loopback, a foreign HTTP server, a silent port, nothing at all.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { runChecks } from "../../../src/doctor/mod.ts";
import { proxyCheck } from "../../../src/doctor/proxy.ts";
import { defaultConfig } from "../../../src/config/default_config.ts";
import type { Config } from "../../../src/config/schema.ts";
import { type CommandRunner, defaultRunner, type RunResult } from "../../../src/lib/process.ts";
import { ConfigError } from "../../../src/lib/errors.ts";
import { daemonPaths, writeRuntime } from "../../../src/proxy/daemon.ts";
import { startHarness } from "../proxy/helpers.ts";

/** Real programs, except those scripted here. */
function runner(scripted: Record<string, (args: string[]) => RunResult>): CommandRunner {
  return {
    run(cmd, args, options) {
      const fake = scripted[cmd];
      return fake ? Promise.resolve(fake(args)) : defaultRunner.run(cmd, args, options);
    },
  };
}

const config = (over: Partial<Config> = {}): Config =>
  ({ ...defaultConfig("linux"), backend: "memory", ...over }) as Config;

async function checks(run: CommandRunner, stateDir: string) {
  return await runChecks({
    runner: run,
    config: config({ credential_proxy: false, egress: "unrestricted" }),
    stateDir,
    home: stateDir,
    os: "linux",
    arch: "x86_64",
  });
}

Deno.test("doctor: ssh-keygen passes only when it makes a key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const real = (await checks(defaultRunner, dir)).find((c) => c.name === "ssh-keygen")!;
    assertEquals([real.ok, real.message], [true, "makes ed25519 keys"]);

    const failing = runner({
      "ssh-keygen": () => ({
        code: 1,
        stdout: "",
        stderr: "ssh-keygen: broken\n",
        timedOut: false,
      }),
    });
    const failed = (await checks(failing, dir)).find((c) => c.name === "ssh-keygen")!;
    assertEquals([failed.ok, failed.required], [false, true]);
    assertStringIncludes(failed.message, "exited 1: ssh-keygen: broken");

    const silent = runner({
      "ssh-keygen": () => ({ code: 0, stdout: "", stderr: "", timedOut: false }),
    });
    const nothing = (await checks(silent, dir)).find((c) => c.name === "ssh-keygen")!;
    assertEquals([nothing.ok, nothing.required], [false, true], nothing.message);

    const missing = runner({
      "ssh-keygen": () => {
        throw new Deno.errors.NotFound("ssh-keygen: not found");
      },
    });
    assertEquals((await checks(missing, dir)).find((c) => c.name === "ssh-keygen")!.ok, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("doctor: the proxy check runs with the config (credential_proxy), not only on request", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const results = await runChecks({
      runner: defaultRunner,
      config: config({ credential_proxy: true, credential_proxy_bind: "127.0.0.1" }),
      stateDir: dir,
      home: dir,
      os: "linux",
      arch: "x86_64",
      proxy: {
        probe: () =>
          Promise.resolve({ ok: false, reason: "nothing listening (refused)", foreign: false }),
      },
    });
    const proxy = results.find((c) => c.name === "proxy")!;
    assertEquals(proxy.ok, true);
    assertStringIncludes(
      proxy.message,
      "not running; the next spawn starts it at http://127.0.0.1:",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("doctor proxy: not used, healthy (ours or another dir's), foreign, silent, unknown address", async () => {
  const dir = await Deno.makeTempDir();
  const h = await startHarness();
  const foreign = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("nope", { status: 404 }),
  );
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of silent) held.push(c); // accepts, never answers
  })().catch(() => {});
  const free = (() => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    return port;
  })();
  const at = (port: number) =>
    config({ credential_proxy_bind: "127.0.0.1", credential_proxy_port: port });
  try {
    const off = await proxyCheck(config({ credential_proxy: false, egress: "unrestricted" }), dir);
    assertEquals(off.ok, true);
    assertStringIncludes(off.message, "not used");
    const egressOnly = await proxyCheck(
      { ...at(free), credential_proxy: false },
      dir,
    );
    assertStringIncludes(
      egressOnly.message,
      "not running",
      "restricted egress needs the proxy too",
    );

    const other = await proxyCheck(at(h.proxy.port), dir);
    assertEquals(other.ok, true, other.message);
    assertStringIncludes(
      other.message,
      `running at http://127.0.0.1:${h.proxy.port} (PID ${Deno.pid}`,
    );
    assertStringIncludes(other.message, "credentials: api_key_env, started with another config");

    await writeRuntime(daemonPaths(dir), {
      pid: Deno.pid,
      url: h.proxy.url,
      bind: "127.0.0.1",
      port: h.proxy.port,
      started_at: new Date(0).toISOString(),
      version: "test",
      log: `${dir}/proxy.log`,
    });
    const mine = await proxyCheck(at(h.proxy.port), dir);
    assertEquals(mine.ok, true);
    assert(!mine.message.includes("another config"), mine.message);

    // Our proxy runs, but this config now expects another address.
    const moved = await proxyCheck(at(free), dir);
    assertEquals([moved.ok, moved.required], [false, true]);
    assertStringIncludes(moved.message, `runs at ${h.proxy.url}, but sandboxes expect`);

    const taken = await proxyCheck(at(foreign.addr.port), `${dir}/none`);
    assertEquals([taken.ok, taken.required], [false, true]);
    assertStringIncludes(taken.message, "something else answers");

    const hung = await proxyCheck(at((silent.addr as Deno.NetAddr).port), `${dir}/none`);
    assertEquals([hung.ok, hung.required], [false, true]);
    assertStringIncludes(hung.message, "does not answer");

    const idle = await proxyCheck(at(free), `${dir}/none`);
    assertEquals(idle, {
      name: "proxy",
      ok: true,
      message: `not running; the next spawn starts it at http://127.0.0.1:${free}`,
    });

    const unknown = await proxyCheck(config({ backend: "incus" }), dir, {
      resolve: () => Promise.reject(new ConfigError("cannot tell which address (no incus)")),
    });
    assertEquals([unknown.ok, unknown.required], [false, true]);
    assertStringIncludes(unknown.message, "cannot tell which address");
  } finally {
    silent.close();
    for (const c of held) c.close();
    await accepting;
    await foreign.shutdown();
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});
