/**
 * `tachikoma proxy start [-d] [--port] [--bind] | stop | status | logs [-f]`: the host
 * credential and egress proxy. Thin: parse, call src/proxy, print.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { configDir } from "../config/paths.ts";
import { UsageError } from "../lib/errors.ts";
import { followFile, readTextOrEmpty } from "../lib/follow_file.ts";
import { log } from "../lib/log.ts";
import { isUnspecified, resolveProxyAddress } from "../proxy/bind.ts";
import { CHILD_ENV, daemonPaths, proxyStatus, startDetached, stopProxy } from "../proxy/daemon.ts";
import { EgressPolicy } from "../proxy/egress.ts";
import { serveForeground, servesHere, startAddress } from "../proxy/foreground.ts";

/** Flags of `proxy start`. */
export interface StartFlags {
  daemon: boolean;
  port?: number;
  bind?: string;
}

/** `proxy start`. */
export async function start(ctx: CommandContext, flags: StartFlags): Promise<void> {
  const { config } = await ctx.config();
  const where = await startAddress(config, flags);
  if (isUnspecified(where.bind)) {
    log.warn(
      `binding ${where.bind} exposes the proxy, and with it your Claude credentials, to every ` +
        "network this machine is on",
    );
  }
  const stateDir = configDir();
  const child = Deno.env.get(CHILD_ENV) === "1";
  if (!flags.daemon || child) {
    await serveForeground({
      config,
      where,
      stateDir,
      child,
      level: ctx.globals.verbose ? "debug" : ctx.globals.quiet ? "warn" : "info",
      signal: ctx.signal,
      onListening: (s) =>
        ctx.out.result(
          { status: "listening", url: s.url, pid: s.pid, bind: s.bind, port: s.port },
          () => `Credential proxy listening on ${s.url} (PID ${s.pid}); Ctrl-C stops it`,
        ),
    });
    return;
  }
  EgressPolicy.fromConfig(config);
  const result = await startDetached({
    paths: daemonPaths(stateDir),
    bind: where.bind,
    port: where.port,
    serves: await servesHere(config, where, stateDir),
    env: { TACHIKOMA_CONFIG_DIR: stateDir },
    signal: ctx.signal,
  });
  ctx.out.result(
    result,
    () =>
      result.already_running
        ? `Credential proxy already running at ${result.url} (PID ${result.pid})`
        : result.restarted
        ? `Credential proxy restarted at ${result.url} (PID ${result.pid}): it served another configuration (${
          result.restarted.join(", ")
        })`
        : `Credential proxy started in the background at ${result.url} (PID ${result.pid}, credentials: ${result.credential_source})`,
  );
}

/** The address the configuration gives the proxy, or undefined without a usable configuration. */
async function expectedAddress(
  ctx: CommandContext,
): Promise<{ bind: string; port: number } | undefined> {
  try {
    const { config } = await ctx.config();
    return await resolveProxyAddress(config, config.backend);
  } catch {
    return undefined; // only what the running proxy recorded counts
  }
}

/** `proxy stop`. */
export async function stop(ctx: CommandContext): Promise<void> {
  const expected = await expectedAddress(ctx);
  const result = await stopProxy(daemonPaths(configDir()), { signal: ctx.signal, expected });
  ctx.out.result(result, () => result.message);
}

/** `proxy status`. Exit 0 whether or not it runs (see `running`/`healthy`). */
export async function status(ctx: CommandContext): Promise<void> {
  const expected = (await expectedAddress(ctx)) ?? null;
  const s = await proxyStatus(daemonPaths(configDir()), expected);
  ctx.out.result(s, () => {
    if (s.healthy) {
      return `Credential proxy is running at ${s.url} (PID ${s.pid}, credentials: ${s.credential_source})`;
    }
    if (s.running) {
      return `Credential proxy (PID ${s.pid}) runs but is not healthy at ${s.url}: ${s.reason}`;
    }
    return `Credential proxy is NOT running${s.url ? ` at ${s.url}` : ""} (${s.reason})`;
  });
}

/** `proxy logs [-f]`. */
export async function logs(ctx: CommandContext, flags: { follow: boolean }): Promise<void> {
  const path = daemonPaths(configDir()).log;
  if (flags.follow && ctx.globals.json) {
    throw new UsageError("--follow cannot be combined with --json");
  }
  const text = await readTextOrEmpty(path);
  if (ctx.globals.json) {
    const lines = text.split("\n").filter((l) => l.length > 0);
    ctx.out.result({ path, lines: lines.slice(-1000) }, () => undefined);
    return;
  }
  if (text === "" && !flags.follow) log.info(`no proxy log yet (${path})`);
  ctx.out.raw(text);
  if (!flags.follow) return;
  await followFile({
    path,
    offset: new TextEncoder().encode(text).length,
    signal: ctx.signal,
    write: (chunk) => ctx.out.raw(chunk),
  });
}
