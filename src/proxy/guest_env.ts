/**
 * The environment a guest gets when it uses the host proxy. With `credential_proxy = true`:
 * `ANTHROPIC_BASE_URL` pointing at the proxy, and `ANTHROPIC_AUTH_TOKEN` set to the fixed,
 * public placeholder `tachikoma-proxy`. The placeholder is not a credential: Claude Code
 * refuses to run without one (it asks to log in), the proxy strips whatever the guest sends
 * and adds the host's. `ANTHROPIC_AUTH_TOKEN` is used rather than `ANTHROPIC_API_KEY` because
 * Claude Code asks interactively before using a custom API key, and does not for an auth
 * token. With restricted egress: `HTTP_PROXY`, `HTTPS_PROXY` (both cases) pointing at the
 * proxy, and `NO_PROXY`/`no_proxy` for loopback and the proxy itself. Never a real credential.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { ConfigError } from "../lib/errors.ts";
import { httpUrl, urlHost } from "./address.ts";
import { staticDefaultBind } from "./bind.ts";

/** The value of `ANTHROPIC_AUTH_TOKEN` in guests: a public marker, not a secret. */
export const PROXY_AUTH_PLACEHOLDER = "tachikoma-proxy";

/** Where guests reach the proxy. */
export interface GuestProxyAddress {
  bind: string;
  port: number;
}

let remembered: GuestProxyAddress | null = null;

/** Called by `ensureProxy()`: the address of the proxy this process made sure of. */
export function rememberProxyAddress(address: GuestProxyAddress | null): void {
  remembered = address;
}

/** Options of {@link proxyGuestEnv}. */
export interface GuestEnvOptions {
  /** The guest's egress goes through the proxy (egress mode is not `unrestricted`). */
  egressRestricted: boolean;
  /** The proxy's address (default: credential_proxy_bind, else what ensureProxy() found). */
  address?: GuestProxyAddress;
}

/**
 * The variables to set in the guest. Throws ConfigError when the proxy address is unknown
 * (backends whose address needs a lookup: call `ensureProxy()` first, or pass `address`).
 */
export function proxyGuestEnv(
  config: Pick<Config, "credential_proxy" | "credential_proxy_bind" | "credential_proxy_port">,
  backendName: string,
  options: GuestEnvOptions,
): Record<string, string> {
  const env: Record<string, string> = {};
  if (!config.credential_proxy && !options.egressRestricted) return env;
  const port = config.credential_proxy_port;
  const bind = options.address?.bind ?? config.credential_proxy_bind ??
    (remembered && remembered.port === port ? remembered.bind : null) ??
    staticDefaultBind(backendName);
  if (!bind) {
    throw new ConfigError(
      `the credential proxy address for backend ${backendName} is not known yet`,
      { hint: "ensureProxy() must run before the guest environment is built" },
    );
  }
  const url = httpUrl(bind, options.address?.port ?? port);
  if (config.credential_proxy) {
    env.ANTHROPIC_BASE_URL = url;
    env.ANTHROPIC_AUTH_TOKEN = PROXY_AUTH_PLACEHOLDER;
  }
  if (options.egressRestricted) {
    const noProxy = ["localhost", "127.0.0.1", "::1", urlHost(bind).replace(/^\[|\]$/g, "")]
      .filter((v, i, all) => all.indexOf(v) === i).join(",");
    for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]) env[k] = url;
    env.NO_PROXY = noProxy;
    env.no_proxy = noProxy;
  }
  return env;
}
