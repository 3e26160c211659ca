/**
 * The host proxy: the credentialed `/v1/*` forward to the Anthropic API (guests never hold a
 * credential), the egress forward proxy (CONNECT and absolute-URI HTTP, allowlisted per
 * sandbox), every client identified by its sandbox's token, and the background daemon spawn
 * relies on. See docs/security.md for the threat model.
 *
 * @module
 */
export { type EnsuredProxy, ensureProxy, type EnsureProxyOptions, proxyNeeded } from "./ensure.ts";
export {
  type GuestEnvOptions,
  type GuestProxyAddress,
  PROXY_USER,
  proxyGuestEnv,
  rememberProxyAddress,
} from "./guest_env.ts";
export {
  type BindDeps,
  isUnspecified,
  type ProxyAddress,
  readIncusGateway,
  realBindDeps,
  resolveProxyAddress,
  staticDefaultBind,
  TART_HOST_ADDRESS,
} from "./bind.ts";
export {
  AGENT_PRESET_ADDITIONS,
  AGENT_PRESET_CIDRS,
  AGENT_PRESET_DOMAINS,
  type EgressDecision,
  type EgressMode,
  EgressPolicy,
  type Resolver,
  systemResolver,
} from "./egress.ts";
export {
  type DaemonPaths,
  daemonPaths,
  type ProxyStatus,
  proxyStatus,
  startDetached,
  type StartResult,
  stopProxy,
  type StopResult,
} from "./daemon.ts";
export { probeHealth } from "./health.ts";
export { type HealthDocument, type ProxyServer, startProxyServer } from "./server.ts";
export { httpUrl } from "./address.ts";
export { ensureToken, hasToken, readToken, revokeToken, tokensDir } from "./tokens.ts";
