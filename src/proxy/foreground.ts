/**
 * Running the proxy in this process (`proxy start` without `-d`, and the detached daemon's child):
 * the address it binds, the fingerprint of what it serves, the server itself until SIGTERM,
 * Ctrl-C or the server stopping, and the runtime file that tells other commands about it.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { CredentialCache } from "../credentials/cache.ts";
import { hostWorld, runWaterfall } from "../credentials/waterfall.ts";
import { ConflictError, UsageError } from "../lib/errors.ts";
import { Logger, type LogLevel } from "../lib/log.ts";
import { timestampedSink } from "../lib/log_file.ts";
import { withFileLock } from "../state/lock.ts";
import { httpUrl } from "./address.ts";
import { type ProxyAddress, resolveProxyAddress } from "./bind.ts";
import { TokenClientDirectory } from "./clients.ts";
import {
  type DaemonPaths,
  daemonPaths,
  prepareLog,
  removeRuntime,
  runtimeFor,
  writeRuntime,
} from "./daemon.ts";
import { EgressPolicy } from "./egress.ts";
import { FileEgressLog } from "./egress_log.ts";
import { fingerprintServes, proxyServes, type ServesFingerprint } from "./fingerprint.ts";
import { probeHealth } from "./health.ts";
import { parseIp } from "./ip.ts";
import { startProxyServer } from "./server.ts";

/** Where to listen: `bind` and `port` as given on the command line, if given. */
export interface AddressFlags {
  port?: number;
  bind?: string;
}

/** The address a proxy started with `flags` listens on: the flags, else the configuration. */
export async function startAddress(
  config: Config,
  flags: AddressFlags,
): Promise<ProxyAddress> {
  const port = flags.port ?? config.credential_proxy_port;
  if (flags.port !== undefined && (flags.port < 1 || flags.port > 65535)) {
    throw new UsageError(`--port must be 1–65535, got ${flags.port}`);
  }
  if (flags.bind !== undefined) {
    if (!parseIp(flags.bind)) {
      throw new UsageError(`--bind must be an IP address, got '${flags.bind}'`);
    }
    return { bind: flags.bind.replace(/^\[|\]$/g, ""), port, source: "flag" };
  }
  return await resolveProxyAddress({ ...config, credential_proxy_port: port }, config.backend);
}

/** The fingerprint of what a proxy for `config` at `where`, run from here, serves. */
export function servesHere(
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

/** A proxy that listens: what {@link ForegroundOptions.onListening} is told. */
export interface Listening {
  url: string;
  bind: string;
  port: number;
  pid: number;
}

/** What {@link serveForeground} needs. */
export interface ForegroundOptions {
  config: Config;
  where: { bind: string; port: number };
  /** The configuration directory (tokens, runtime file, log). */
  stateDir: string;
  /** True in the detached daemon's child (its stderr already is the log file). */
  child: boolean;
  level: LogLevel;
  /** Ctrl-C. */
  signal: AbortSignal;
  /** Called once the proxy listens (not in the daemon's child). */
  onListening?: (listening: Listening) => void;
}

/** Serves the proxy in this process until SIGTERM, `signal` or the server stopping. */
export async function serveForeground(options: ForegroundOptions): Promise<void> {
  const { config, where, stateDir, child } = options;
  const paths: DaemonPaths = daemonPaths(stateDir);
  EgressPolicy.fromConfig(config); // a bad egress_allow fails the start, not a later request
  await prepareLog(paths);
  // The daemon's stderr already is the log file; a foreground proxy also appends to it.
  const tee = child ? null : await Deno.open(paths.log, { append: true, mode: 0o600 });
  const { sink, flush } = timestampedSink(tee);
  const logger = new Logger({ level: options.level, sink });
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
  const serves = await servesHere(config, where, stateDir);
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
  }, { signal: options.signal });
  logger.info(
    `credential proxy listening on ${server.url} (PID ${Deno.pid}, config ${stateDir}, ` +
      `upstream ${config.credential_proxy_upstream}; clients need their sandbox's token; ` +
      `egress per sandbox, from its repository's configuration)`,
  );
  if (!child) {
    options.onListening?.({ url: server.url, bind: server.bind, port: server.port, pid: Deno.pid });
  }
  const why = await new Promise<string>((resolve) => {
    try {
      Deno.addSignalListener("SIGTERM", () => resolve("SIGTERM"));
    } catch {
      // no signal support: run until killed
    }
    options.signal.addEventListener("abort", () => resolve("SIGINT"), { once: true });
    server.finished.then(() => resolve("server stopped"));
  });
  logger.info(`stopping (${why})`);
  await server.shutdown();
  await removeRuntime(paths, Deno.pid);
  flush();
  tee?.close();
}
