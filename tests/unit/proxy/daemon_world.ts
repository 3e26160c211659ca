/**
 * A tachikoma directory for daemon tests: a temp config dir whose config.toml points the proxy
 * at loopback and a fake upstream, the environment for CLI subprocesses (`deno run main.ts`),
 * sandboxes with tokens in its state, and what a test needs to look at running proxies.
 *
 * @module
 */
import { defaultConfig } from "../../../src/config/default_config.ts";
import type { Config } from "../../../src/config/schema.ts";
import { daemonPaths, stopProxy } from "../../../src/proxy/daemon.ts";
import { ensureToken } from "../../../src/proxy/tokens.ts";
import { startFakeUpstream } from "../../fixtures/upstream.ts";

/** The checkout root. */
export const ROOT = new URL("../../../", import.meta.url).pathname;
/** The host key in the proxy's environment. */
export const SECRET = "sk-ant-api03-DAEMONTEST-0123456789abcdef";
const DENO_DIR = Deno.env.get("DENO_DIR") ??
  `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`}/deno`;

import { freePort } from "../../testing/free_port.ts";
import { type Run, runCliFromSource } from "../../testing/run.ts";
export { freePort };

/** One tachikoma directory and its proxy's surroundings. */
export interface World {
  dir: string;
  home: string;
  port: number;
  env: Record<string, string>;
  upstream: ReturnType<typeof startFakeUpstream>;
  cleanup(): Promise<void>;
}

/** A fresh tachikoma directory with its own port and fake upstream. */
export async function world(): Promise<World> {
  const dir = await Deno.makeTempDir({ prefix: "tk-proxy-daemon-" });
  const home = `${dir}/home`;
  await Deno.mkdir(home);
  const port = freePort();
  const upstream = startFakeUpstream();
  await Deno.writeTextFile(
    `${dir}/config.toml`,
    `backend = "incus"\ncredential_proxy_bind = "127.0.0.1"\ncredential_proxy_port = ${port}\n` +
      `credential_proxy_upstream = "${upstream.url}"\n`,
  );
  const env = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: home,
    DENO_DIR,
    TACHIKOMA_CONFIG_DIR: dir,
    ANTHROPIC_API_KEY: SECRET,
    NO_COLOR: "1",
  };
  return {
    dir,
    home,
    port,
    env,
    upstream,
    async cleanup() {
      await stopProxy(daemonPaths(dir), { graceMs: 3000 }).catch(() => {});
      await upstream.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A sandbox in `w`'s state with its own proxy token; returns the token. */
export async function sandboxToken(w: World, name: string): Promise<string> {
  const statePath = `${w.dir}/state.json`;
  let vms: unknown[] = [];
  try {
    vms = JSON.parse(await Deno.readTextFile(statePath)).vms;
  } catch {
    // no state yet
  }
  vms.push({ name, ip: "127.0.0.1", repo_root: w.dir, worktree_path: w.dir });
  await Deno.writeTextFile(statePath, JSON.stringify({ version: 2, vms }));
  return await ensureToken(w.dir, name);
}

/** Runs the CLI from source in `w` (cwd and environment). */
export function cli(w: World, ...args: string[]): Promise<Run> {
  return runCliFromSource(args, { cwd: w.dir, env: w.env });
}

/** How many `proxy start` processes serve `port`. */
export function proxyProcessesOn(port: number): Promise<number> {
  return new Deno.Command("ps", { args: ["-eo", "args"], stdout: "piped" }).output().then((o) =>
    new TextDecoder().decode(o.stdout).split("\n").filter((l) =>
      l.includes("proxy start") && l.includes(`--port ${port}`)
    ).length
  );
}

/** The configuration `w`'s config.toml amounts to. */
export function configFor(w: World): Config {
  return {
    ...defaultConfig("linux"),
    backend: "incus",
    credential_proxy_bind: "127.0.0.1",
    credential_proxy_port: w.port,
    credential_proxy_upstream: w.upstream.url,
  } as Config;
}
