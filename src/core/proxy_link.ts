/**
 * The link between spawn and the host credential proxy: before a guest is provisioned or used,
 * a healthy proxy serving this configuration must run (probed on `/health`, started detached
 * when needed, restarted when it serves another configuration, never twice), and provisioning
 * needs the guest environment that points at it, carrying the sandbox's own proxy token. The
 * proxy modules load only when the configuration needs a proxy.
 *
 * Tokens: made when a sandbox is first provisioned with the proxy on (spawn drops a token left
 * by an earlier sandbox of the same name before creating one), revoked when it is destroyed or
 * pruned. A sandbox that should have a token and has none (made before tokens existed, or its
 * token was lost) is re-provisioned by spawn (see {@link ProxyLink.needsToken}).
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import type { Config } from "../config/schema.ts";
import type { ProvisionContext } from "../provision/contract.ts";

/** Where guests reach the proxy, or null when none is needed. */
export interface ProxyLink {
  /**
   * Makes sure the proxy runs for `backend`'s guests (spawn calls it before provisioning);
   * null when this configuration needs no proxy, unless `force` (a sandbox whose own policy
   * is restricted needs it whatever the configuration says).
   */
  ensure(
    backend: Backend,
    options?: { force?: boolean },
  ): Promise<{ bind: string; port: number } | null>;
  /** The guest environment (ANTHROPIC_BASE_URL, HTTP(S)_PROXY…, with the sandbox's token). */
  guestEnv(ctx: ProvisionContext): Promise<Record<string, string>>;
  /**
   * True when `sandbox`'s guest environment carries a proxy token (`credential_proxy = true`:
   * provisioning writes the proxy environment into the profile) and it has none yet.
   */
  needsToken(sandbox: string): Promise<boolean>;
}

/** True when guests need the proxy: for credentials or for restricted egress. */
function needed(config: Config): boolean {
  return config.credential_proxy || config.egress !== "unrestricted";
}

/**
 * The production link. The in-memory test backend runs its "guests" as host processes: there
 * is no guest network to serve, so no proxy is started for it and the guest environment points
 * at loopback.
 */
export function proxyLink(config: Config, stateDir: string, signal?: AbortSignal): ProxyLink {
  let ensured: Promise<{ bind: string; port: number } | null> | undefined;
  let forced = false;
  const ensure = (backend: Backend, options: { force?: boolean } = {}) => {
    if (options.force && !forced && !needed(config)) {
      forced = true;
      ensured = undefined;
    }
    ensured ??= (async () => {
      if (!needed(config) && !forced) return null;
      if (backend.name === "memory") {
        return { bind: "127.0.0.1", port: config.credential_proxy_port };
      }
      const m = await import("../proxy/mod.ts");
      const p = await m.ensureProxy(config, { stateDir, backendName: backend.name, signal });
      return p ? { bind: p.bind, port: p.port } : null;
    })();
    return ensured;
  };
  return {
    ensure,
    async guestEnv(ctx) {
      const address = await ensure(ctx.backend);
      if (!address) return {};
      const { proxyGuestEnv } = await import("../proxy/guest_env.ts");
      const { ensureToken } = await import("../proxy/tokens.ts");
      return proxyGuestEnv(ctx.config, ctx.backend.name, {
        egressRestricted: ctx.config.egress !== "unrestricted",
        address,
        token: await ensureToken(stateDir, ctx.sandbox),
      });
    },
    async needsToken(sandbox) {
      if (!config.credential_proxy) return false;
      const { hasToken } = await import("../proxy/tokens.ts");
      return !(await hasToken(stateDir, sandbox));
    },
  };
}

/**
 * Revokes the proxy token of `sandbox` (destroy, prune, and a sandbox created again under the
 * same name), with its egress log. The proxy refuses it from the next request on. Whatever the configuration says:
 * a token may exist from when the proxy was on.
 */
export async function revokeProxyToken(stateDir: string, sandbox: string): Promise<void> {
  const { revokeToken } = await import("../proxy/tokens.ts");
  await revokeToken(stateDir, sandbox);
  // Its egress log goes with it: a sandbox made again under this name starts a new one.
  const { removeEgressLog } = await import("../proxy/egress_log.ts");
  await removeEgressLog(stateDir, sandbox);
}
