/**
 * `tachikoma proxy start [-d] [--port] [--bind] | stop | status | logs [-f]`: the host
 * credential and egress proxy. Thin: parse, call src/proxy, print.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { configDir } from "../config/paths.ts";
import type { Config } from "../config/schema.ts";
import { CredentialCache } from "../credentials/cache.ts";
import { hostWorld, runWaterfall } from "../credentials/waterfall.ts";
import { ConflictError, UsageError } from "../lib/errors.ts";
import { log, Logger } from "../lib/log.ts";
import { timestampedSink } from "../lib/log_file.ts";
import { withFileLock } from "../state/lock.ts";
import { httpUrl } from "../proxy/address.ts";
import { isUnspecified, resolveProxyAddress } from "../proxy/bind.ts";
import { TokenClientDirectory } from "../proxy/clients.ts";
import {
  CHILD_ENV,
  type DaemonPaths,
  daemonPaths,
  prepareLog,
  proxyStatus,
  removeRuntime,
  runtimeFor,
  startDetached,
  stopProxy,
  writeRuntime,
} from "../proxy/daemon.ts";
import { EgressPolicy } from "../proxy/egress.ts";
import { fingerprintServes, proxyServes, type ServesFingerprint } from "../proxy/fingerprint.ts";
import { probeHealth } from "../proxy/health.ts";
import { startProxyServer } from "../proxy/server.ts";
import { FileEgressLog } from "../proxy/egress_log.ts";

/** Flags of `proxy start`. */
export interface StartFlags {
  daemon: boolean;
  port?: number;
  bind?: string;
}

async function address(
  config: Config,
  flags: { port?: number; bind?: string },
) {
  const port = flags.port ?? config.credential_proxy_port;
  if (flags.port !== undefined && (flags.port < 1 || flags.port > 65535)) {
    throw new UsageError(`--port must be 1–65535, got ${flags.port}`);
  }
  if (flags.bind !== undefined) {
    const { parseIp } = await import("../proxy/ip.ts");
    if (!parseIp(flags.bind)) {
      throw new UsageError(`--bind must be an IP address, got '${flags.bind}'`);
    }
    return { bind: flags.bind.replace(/^\[|\]$/g, ""), port, source: "flag" as const };
  }
  const resolved = await resolveProxyAddress(
    { ...config, credential_proxy_port: port },
    config.backend,
  );
  return resolved;
}

/**
 * A logger for the proxy: timestamped lines on stderr (the log file for the daemon) and, for a
 * foreground proxy, the log file too.
 */
function proxyLogger(ctx: CommandContext, tee: Deno.FsFile | null): {
  logger: Logger;
  flush(): void;
} {
  const { sink, flush } = timestampedSink(tee);
  const logger = new Logger({
    level: ctx.globals.verbose ? "debug" : ctx.globals.quiet ? "warn" : "info",
    sink,
  });
  return { logger, flush };
}

/** The fingerprint of what a proxy for `config` at `where`, run from here, serves. */
function servesFor(
  config: Config,
  where: { bind: string; port: number },
  stateDir: string,
): Promise<ServesFingerprint> {
  return fingerprintServes(proxyServes(config, {
    configDir: stateDir,
    bind: where.bind,
    port: where.port,
    env: (name) => Deno.env.get(name),
  }));
}

async function serveForeground(
  ctx: CommandContext,
  config: Config,
  where: { bind: string; port: number },
  stateDir: string,
  child: boolean,
): Promise<void> {
  const paths: DaemonPaths = daemonPaths(stateDir);
  EgressPolicy.fromConfig(config); // a bad egress_allow fails the start, not a later request
  await prepareLog(paths);
  // The daemon's stderr already is the log file; a foreground proxy also appends to it.
  const tee = child ? null : await Deno.open(paths.log, { append: true, mode: 0o600 });
  const { logger, flush } = proxyLogger(ctx, tee);
  const world = { ...hostWorld(), logger };
  const credentials = new CredentialCache({
    resolve: () =>
      runWaterfall({
        credential_command: config.credential_command,
        api_key_command: config.api_key_command,
      }, world),
    ttlMs: config.credential_proxy_ttl_secs * 1000,
  });
  const clients = new TokenClientDirectory({ stateDir, logger });
  const serves = await servesFor(config, where, stateDir);
  const startup = async () => {
    const server = await startProxyServer({
      bind: where.bind,
      port: where.port,
      upstream: config.credential_proxy_upstream,
      credentials,
      clients,
      logger,
      egressLog: new FileEgressLog(stateDir),
    });
    await writeRuntime(paths, runtimeFor(paths, server, serves));
    return server;
  };
  const server = child ? await startup() : await withFileLock(paths.lock, async () => {
    const probe = await probeHealth(where.bind, where.port, 1000);
    if (probe.ok) {
      throw new ConflictError(
        `a tachikoma proxy already runs at ${
          httpUrl(where.bind, where.port)
        } (PID ${probe.health.pid})`,
        { hint: "`tachikoma proxy stop` first, or use another --port" },
      );
    }
    return await startup();
  }, { signal: ctx.signal });
  logger.info(
    `credential proxy listening on ${server.url} (PID ${Deno.pid}, config ${stateDir}, ` +
      `upstream ${config.credential_proxy_upstream}; clients need their sandbox's token; ` +
      `egress per sandbox, from its repository's configuration)`,
  );
  if (!child) {
    ctx.out.result(
      { status: "listening", url: server.url, pid: Deno.pid, bind: server.bind, port: server.port },
      () => `Credential proxy listening on ${server.url} (PID ${Deno.pid}); Ctrl-C stops it`,
    );
  }
  const stop = new Promise<string>((resolve) => {
    const onTerm = () => resolve("SIGTERM");
    try {
      Deno.addSignalListener("SIGTERM", onTerm);
    } catch {
      // no signal support: run until killed
    }
    ctx.signal.addEventListener("abort", () => resolve("SIGINT"), { once: true });
    server.finished.then(() => resolve("server stopped"));
  });
  const why = await stop;
  logger.info(`stopping (${why})`);
  await server.shutdown();
  await removeRuntime(paths, Deno.pid);
  flush();
  tee?.close();
}

/** `proxy start`. */
export async function start(ctx: CommandContext, flags: StartFlags): Promise<void> {
  const { config } = await ctx.config();
  const where = await address(config, flags);
  if (isUnspecified(where.bind)) {
    log.warn(
      `binding ${where.bind} exposes the proxy, and with it your Claude credentials, to every ` +
        "network this machine is on",
    );
  }
  const stateDir = configDir();
  const child = Deno.env.get(CHILD_ENV) === "1";
  if (flags.daemon && !child) {
    EgressPolicy.fromConfig(config);
    const result = await startDetached({
      paths: daemonPaths(stateDir),
      bind: where.bind,
      port: where.port,
      serves: await servesFor(config, where, stateDir),
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
    return;
  }
  await serveForeground(ctx, config, where, stateDir, child);
}

/** `proxy stop`. */
export async function stop(ctx: CommandContext): Promise<void> {
  const stateDir = configDir();
  let expected: { bind: string; port: number } | undefined;
  try {
    const { config } = await ctx.config();
    expected = await resolveProxyAddress(config, config.backend);
  } catch {
    // no usable configuration: only the recorded proxy can be stopped
  }
  const result = await stopProxy(daemonPaths(stateDir), { signal: ctx.signal, expected });
  ctx.out.result(result, () => result.message);
}

/** `proxy status`. Exit 0 whether or not it runs (see `running`/`healthy`). */
export async function status(ctx: CommandContext): Promise<void> {
  const stateDir = configDir();
  let expected: { bind: string; port: number } | null = null;
  try {
    const { config } = await ctx.config();
    expected = await resolveProxyAddress(config, config.backend);
  } catch {
    // fall back to what the running proxy recorded
  }
  const s = await proxyStatus(daemonPaths(stateDir), expected);
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
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (ctx.globals.json) {
    const lines = text.split("\n").filter((l) => l.length > 0);
    ctx.out.result({ path, lines: lines.slice(-1000) }, () => undefined);
    return;
  }
  if (!flags.follow) {
    if (text === "") log.info(`no proxy log yet (${path})`);
    ctx.out.raw(text);
    return;
  }
  ctx.out.raw(text);
  await follow(ctx, path, new TextEncoder().encode(text).length);
}

/** Prints what is appended to `path` from byte `offset` on, until Ctrl-C. */
async function follow(ctx: CommandContext, path: string, offset: number): Promise<void> {
  let pos = offset;
  const decoder = new TextDecoder();
  const readMore = async () => {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch {
      return;
    }
    try {
      const size = (await file.stat()).size;
      if (size < pos) pos = 0; // rotated
      await file.seek(pos, Deno.SeekMode.Start);
      const buf = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await file.read(buf);
        if (n === null) break;
        pos += n;
        ctx.out.raw(decoder.decode(buf.subarray(0, n), { stream: true }));
      }
    } finally {
      file.close();
    }
  };
  const dir = path.slice(0, path.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const watcher = Deno.watchFs(dir);
  const onAbort = () => watcher.close();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  try {
    await readMore();
    for await (const event of watcher) {
      if (event.paths.some((p) => p === path || p.startsWith(path))) await readMore();
    }
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
  }
}
