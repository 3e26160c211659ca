/**
 * `doctor`'s credential-proxy check. Is a proxy needed (`credential_proxy`, or a restricted
 * `egress`)? On which address would this config's sandboxes reach it? Does a healthy
 * tachikoma proxy answer there (its `/health`, not merely an open port), and is it the one this
 * config directory recorded? Not running is fine (spawn starts it); something else holding the
 * address, an unhealthy proxy, or an address that cannot be determined is a failure.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { errorMessage } from "../lib/errors.ts";
import { httpUrl } from "../proxy/address.ts";
import { type ProxyAddress, resolveProxyAddress } from "../proxy/bind.ts";
import { daemonPaths, readRuntime } from "../proxy/daemon.ts";
import { proxyNeeded } from "../proxy/ensure.ts";
import { type HealthProbe, probeHealth } from "../proxy/health.ts";
import type { CheckResult } from "./check.ts";

/** What the proxy check looks up (tests replace the address lookup and the probe). */
export interface ProxyCheckDeps {
  /** The address this config's sandboxes use (default: the backend's rules). */
  resolve?: (config: Config) => Promise<ProxyAddress>;
  /** Probes `/health` at an address (default: a raw TCP GET). */
  probe?: (bind: string, port: number) => Promise<HealthProbe>;
}

const NAME = "proxy";

/** The credential-proxy check for `config`, whose state lives in `stateDir`. Never throws. */
export async function proxyCheck(
  config: Config,
  stateDir: string,
  deps: ProxyCheckDeps = {},
): Promise<CheckResult> {
  if (!proxyNeeded(config)) {
    return {
      name: NAME,
      ok: true,
      message: "not used (credential_proxy = false, egress unrestricted)",
    };
  }
  let address: ProxyAddress;
  try {
    address = await (deps.resolve ?? ((c) => resolveProxyAddress(c, c.backend)))(config);
  } catch (error) {
    return {
      name: NAME,
      ok: false,
      message: errorMessage(error),
      hint: "set credential_proxy_bind to an address of this host the sandboxes can reach",
      required: true,
    };
  }
  const url = httpUrl(address.bind, address.port);
  const probe = await (deps.probe ?? probeHealth)(address.bind, address.port);
  const runtime = await readRuntime(daemonPaths(stateDir));
  if (probe.ok) {
    const mine = runtime !== null && runtime.pid === probe.health.pid;
    const credentials = probe.health.credential_source === "none"
      ? "no credentials found on this host"
      : `credentials: ${probe.health.credential_source}`;
    return {
      name: NAME,
      ok: probe.health.credential_source !== "none",
      message: `running at ${url} (PID ${probe.health.pid}, ${credentials}` +
        `${mine ? "" : ", started with another config directory"})`,
      hint: probe.health.credential_source === "none"
        ? "log in with `claude` or set ANTHROPIC_API_KEY, then `tachikoma proxy stop`"
        : undefined,
    };
  }
  if (probe.foreign) {
    return {
      name: NAME,
      ok: false,
      message: `something else answers at ${url}: ${probe.reason}`,
      hint: "free the port or set credential_proxy_port",
      required: true,
    };
  }
  if (runtime && runtime.pid && (runtime.bind !== address.bind || runtime.port !== address.port)) {
    const recorded = await (deps.probe ?? probeHealth)(runtime.bind, runtime.port);
    if (recorded.ok) {
      return {
        name: NAME,
        ok: false,
        message: `this config's proxy runs at ${runtime.url}, but sandboxes expect ${url}`,
        hint: "tachikoma proxy stop (the next spawn starts it at the right address)",
        required: true,
      };
    }
  }
  if (!probe.reason.startsWith("nothing listening")) {
    return {
      name: NAME,
      ok: false,
      message: `something accepts connections at ${url} but does not answer: ${probe.reason}`,
      hint: "tachikoma proxy status; free the port or set credential_proxy_port",
      required: true,
    };
  }
  return { name: NAME, ok: true, message: `not running; the next spawn starts it at ${url}` };
}
