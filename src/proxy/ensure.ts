/**
 * `ensureProxy()`: what spawn calls before provisioning. It makes sure a healthy proxy (its
 * `/health` answers as tachikoma's, not merely an open port) runs at the address the guests
 * will use and serves this configuration (fingerprint.ts: configuration directory, upstream,
 * credential settings and environment, version), starting one in the background when needed,
 * never two, and restarting ours when it serves something else (see daemon.ts); and remembers
 * the address so {@link proxyGuestEnv} in the same process can point guests at it.
 *
 * The fast path (a healthy proxy whose PID and fingerprint are the ones our `proxy.json`
 * records) takes no lock and starts nothing.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { type Clock, systemClock } from "../lib/clock.ts";
import { log } from "../lib/log.ts";
import { httpUrl } from "./address.ts";
import { type BindDeps, type ProxyAddress, realBindDeps, resolveProxyAddress } from "./bind.ts";
import { daemonPaths, type LaunchCommand, readRuntime, startDetached } from "./daemon.ts";
import { EgressPolicy } from "./egress.ts";
import { changedFields, fingerprintServes, proxyServes } from "./fingerprint.ts";
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
  /** The fields that differed when a running proxy was replaced, else null. */
  restarted: string[] | null;
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
  const paths = daemonPaths(options.stateDir);
  const env = (name: string) =>
    options.env && Object.hasOwn(options.env, name) ? options.env[name] : Deno.env.get(name);
  const serves = await fingerprintServes(proxyServes(config, {
    configDir: options.stateDir,
    bind: address.bind,
    port: address.port,
    env,
  }));
  const [probe, recorded] = await Promise.all([
    probeHealth(address.bind, address.port),
    readRuntime(paths),
  ]);
  let result: EnsuredProxy;
  if (
    probe.ok && recorded?.pid === probe.health.pid && recorded.fingerprint === serves.fingerprint
  ) {
    result = {
      url: httpUrl(address.bind, address.port),
      bind: address.bind,
      port: address.port,
      pid: probe.health.pid,
      already_running: true,
      restarted: null,
      credential_source: probe.health.credential_source,
    };
  } else {
    const started = await startDetached({
      paths,
      bind: address.bind,
      port: address.port,
      serves,
      env: { TACHIKOMA_CONFIG_DIR: options.stateDir, ...options.env },
      launch: options.launch,
      clock: options.clock ?? systemClock,
      signal: options.signal,
    });
    result = { ...started, bind: address.bind, port: address.port };
    const now = await readRuntime(paths);
    if (now?.pid === started.pid && now.fingerprint !== serves.fingerprint) {
      // The proxy loaded another configuration than this command (another working directory or
      // environment): say what differs, or every spawn would restart it without a word.
      log.warn(
        `the credential proxy (PID ${started.pid}) serves another configuration than this ` +
          `command's (${changedFields(now.fields, serves.fields).join(", ")})`,
      );
    }
    if (started.restarted) {
      log.info(
        `restarted the credential proxy at ${started.url}: it served another configuration ` +
          `(${started.restarted.join(", ")})`,
      );
    } else if (!started.already_running) {
      log.info(`started the credential proxy at ${started.url}`);
    }
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
