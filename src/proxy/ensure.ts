/**
 * `ensureProxy()`: what spawn calls before provisioning. It makes sure a healthy proxy (its
 * `/health` answers as tachikoma's, not merely an open port) runs at the address the guests
 * will use, starting one in the background when needed, never two (see daemon.ts), and
 * remembers the address so {@link proxyGuestEnv} in the same process can point guests at it.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { type Clock, systemClock } from "../lib/clock.ts";
import { log } from "../lib/log.ts";
import { httpUrl } from "./address.ts";
import { type BindDeps, type ProxyAddress, realBindDeps, resolveProxyAddress } from "./bind.ts";
import { daemonPaths, type LaunchCommand, startDetached } from "./daemon.ts";
import { EgressPolicy } from "./egress.ts";
import { rememberProxyAddress } from "./guest_env.ts";
import { probeHealth } from "./health.ts";

/** Options of {@link ensureProxy}. */
export interface EnsureProxyOptions {
  /** tachikoma's config/state directory (PID, lock and log files live there). */
  stateDir: string;
  /** The backend the sandbox runs on (decides the default bind address). */
  backendName: string;
  signal?: AbortSignal;
  clock?: Clock;
  /** Lookups for the default bind (tests inject them). */
  bindDeps?: BindDeps;
  /** How to run tachikoma (tests). */
  launch?: (args: string[]) => LaunchCommand;
  /** Extra environment for a proxy started now (tests). */
  env?: Record<string, string>;
}

/** A proxy that is known to be healthy. */
export interface EnsuredProxy {
  url: string;
  bind: string;
  port: number;
  pid: number;
  /** True when it was already running. */
  already_running: boolean;
  credential_source: string;
}

/** True when guests need the proxy: for credentials, or for restricted egress. */
export function proxyNeeded(config: Pick<Config, "credential_proxy" | "egress">): boolean {
  return config.credential_proxy || config.egress !== "unrestricted";
}

/**
 * Makes sure a healthy proxy runs for `config` and `backendName`; returns null when the
 * configuration needs none (`credential_proxy = false` and `egress = "unrestricted"`).
 * Throws ConfigError (bad `egress_allow`, unknown address), ConflictError (the port is taken,
 * or our proxy runs elsewhere), RuntimeError/UnreachableError (it would not start).
 */
export async function ensureProxy(
  config: Config,
  options: EnsureProxyOptions,
): Promise<EnsuredProxy | null> {
  if (!proxyNeeded(config)) return null;
  EgressPolicy.fromConfig(config); // a bad egress_allow entry fails here, before any guest work
  const address: ProxyAddress = await resolveProxyAddress(
    config,
    options.backendName,
    options.bindDeps ?? realBindDeps,
  );
  const probe = await probeHealth(address.bind, address.port);
  let result: EnsuredProxy;
  if (probe.ok) {
    result = {
      url: httpUrl(address.bind, address.port),
      bind: address.bind,
      port: address.port,
      pid: probe.health.pid,
      already_running: true,
      credential_source: probe.health.credential_source,
    };
  } else {
    const started = await startDetached({
      paths: daemonPaths(options.stateDir),
      bind: address.bind,
      port: address.port,
      env: { TACHIKOMA_CONFIG_DIR: options.stateDir, ...options.env },
      launch: options.launch,
      clock: options.clock ?? systemClock,
      signal: options.signal,
    });
    result = { ...started, bind: address.bind, port: address.port };
    if (!started.already_running) log.info(`started the credential proxy at ${started.url}`);
  }
  if (result.credential_source === "none") {
    log.warn(
      "the credential proxy found no credentials on this host: Claude Code in the sandbox " +
        "will get 503 until you log in (`claude`) or set ANTHROPIC_API_KEY",
    );
  }
  rememberProxyAddress({ bind: result.bind, port: result.port });
  return result;
}
