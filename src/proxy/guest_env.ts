/**
 * The environment a guest gets when it uses the host proxy, carrying the sandbox's own proxy
 * token (tokens.ts) — its identity towards the proxy, never a host credential. With
 * `credential_proxy = true`: `ANTHROPIC_BASE_URL` pointing at the proxy, and
 * `ANTHROPIC_AUTH_TOKEN` = the token (Claude Code sends it as `Authorization: Bearer`; the
 * proxy checks it, strips it and adds the host's credential). `ANTHROPIC_AUTH_TOKEN` is used
 * rather than `ANTHROPIC_API_KEY` because Claude Code asks interactively before using a custom
 * API key, and does not for an auth token. With restricted egress: `HTTP_PROXY`,
 * `HTTPS_PROXY` (both cases) = `http://tachikoma:<token>@GW:PORT` (clients send the token as
 * `Proxy-Authorization: Basic`), and `NO_PROXY`/`no_proxy` for loopback and the proxy itself.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { ConfigError, RuntimeError } from "../lib/errors.ts";
import { formatHostPort, urlHost } from "./address.ts";
import { staticDefaultBind } from "./bind.ts";
import { isTokenShape } from "./tokens.ts";

/** The user name in the guest's proxy URLs (the token is the password; the name is ignored). */
export const PROXY_USER = "tachikoma";

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
  /** The sandbox's proxy token (tokens.ts: `ensureToken`). */
  token: string;
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
  if (!isTokenShape(options.token)) {
    throw new RuntimeError("proxy_token", "the sandbox's proxy token is malformed");
  }
  const authority = formatHostPort(bind, options.address?.port ?? port);
  if (config.credential_proxy) {
    env.ANTHROPIC_BASE_URL = `http://${authority}`;
    env.ANTHROPIC_AUTH_TOKEN = options.token;
  }
  if (options.egressRestricted) {
    const noProxy = ["localhost", "127.0.0.1", "::1", urlHost(bind).replace(/^\[|\]$/g, "")]
      .filter((v, i, all) => all.indexOf(v) === i).join(",");
    // base64url needs no escaping in a URL's userinfo.
    const proxyUrl = `http://${PROXY_USER}:${options.token}@${authority}`;
    for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]) env[k] = proxyUrl;
    env.NO_PROXY = noProxy;
    env.no_proxy = noProxy;
  }
  return env;
}
