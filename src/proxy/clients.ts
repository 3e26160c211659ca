/**
 * Who is talking to the proxy: the client's source IP is mapped to a sandbox through the state
 * file (`vms[].ip`), and that sandbox's egress policy comes from its repo's configuration
 * (`egress`, `egress_allow`). Unknown clients get the proxy's own policy. The state file is
 * re-read at most every couple of seconds; repo policies are cached briefly.
 *
 * @module
 */
import { type Clock, systemClock } from "../lib/clock.ts";
import { errorMessage } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { EgressPolicy } from "./egress.ts";
import { embeddedV4, formatIp, parseIp } from "./ip.ts";

/** A client of the proxy. */
export interface ClientInfo {
  /** Source IP (IPv4-mapped addresses shown as IPv4). */
  ip: string;
  /** The sandbox at that IP, when known. */
  sandbox: string | null;
  /** The egress policy that applies to it. */
  policy: EgressPolicy;
}

/** Maps client IPs to sandboxes and policies. */
export interface ClientDirectory {
  identify(ip: string): Promise<ClientInfo>;
}

/** `sandbox name (ip)` or the IP, for log lines. */
export function describeClient(client: ClientInfo): string {
  return client.sandbox ? `sandbox ${client.sandbox} (${client.ip})` : `client ${client.ip}`;
}

/** Canonical form of a peer address. */
export function canonicalIp(text: string): string {
  const ip = parseIp(text);
  if (!ip) return text;
  return formatIp(embeddedV4(ip) && ip.bytes[10] === 0xff ? embeddedV4(ip)! : ip);
}

/** Every client gets the same policy (tests, and when no state is available). */
export class StaticClientDirectory implements ClientDirectory {
  constructor(readonly policy: EgressPolicy, readonly sandboxes: Record<string, string> = {}) {}
  identify(ip: string): Promise<ClientInfo> {
    const canon = canonicalIp(ip);
    return Promise.resolve({
      ip: canon,
      sandbox: this.sandboxes[canon] ?? null,
      policy: this.policy,
    });
  }
}

/** Loads the egress policy of a repo (its merged configuration). */
export type RepoPolicyLoader = (repoRoot: string) => Promise<EgressPolicy>;

/** The default loader: the repo's merged configuration. */
export const configRepoPolicy: RepoPolicyLoader = async (
  repoRoot: string,
): Promise<EgressPolicy> => {
  const { loadConfig } = await import("../config/load.ts");
  const loaded = await loadConfig({ cwd: repoRoot });
  return EgressPolicy.fromConfig(loaded.config);
};

interface StateEntry {
  name: string;
  repoRoot: string | null;
}

/** Options of {@link StateClientDirectory}. */
export interface StateClientDirectoryOptions {
  /** The state file (`state.json`). */
  statePath: string;
  /** The policy for clients that are not known sandboxes. */
  defaultPolicy: EgressPolicy;
  repoPolicy?: RepoPolicyLoader;
  clock?: Clock;
  /** Minimum time between two reads of the state file. */
  refreshMs?: number;
  /** How long a repo's policy is reused. */
  policyTtlMs?: number;
  logger: Logger;
}

/** Identifies clients through the state file. */
export class StateClientDirectory implements ClientDirectory {
  #opts: Required<Omit<StateClientDirectoryOptions, "logger">> & { logger: Logger };
  #byIp = new Map<string, StateEntry>();
  #readAt = -Infinity;
  #reading: Promise<void> | null = null;
  #policies = new Map<string, { policy: EgressPolicy; at: number }>();
  #warned = new Set<string>();

  constructor(options: StateClientDirectoryOptions) {
    this.#opts = {
      repoPolicy: configRepoPolicy,
      clock: systemClock,
      refreshMs: 2_000,
      policyTtlMs: 30_000,
      ...options,
    };
  }

  async #refresh(): Promise<void> {
    if (this.#opts.clock.now() - this.#readAt < this.#opts.refreshMs) return;
    this.#reading ??= (async () => {
      const map = new Map<string, StateEntry>();
      try {
        const data = JSON.parse(await Deno.readTextFile(this.#opts.statePath));
        const vms: unknown[] = Array.isArray(data?.vms) ? data.vms : [];
        for (const vm of vms) {
          if (typeof vm !== "object" || vm === null) continue;
          const r = vm as Record<string, unknown>;
          if (typeof r.ip !== "string" || typeof r.name !== "string") continue;
          map.set(canonicalIp(r.ip), {
            name: r.name,
            repoRoot: typeof r.repo_root === "string" ? r.repo_root : null,
          });
        }
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) {
          this.#warnOnce("state", `cannot read ${this.#opts.statePath}: ${errorMessage(error)}`);
        }
      }
      this.#byIp = map;
      this.#readAt = this.#opts.clock.now();
    })().finally(() => this.#reading = null);
    await this.#reading;
  }

  #warnOnce(key: string, message: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#opts.logger.warn(message);
  }

  async #policyFor(repoRoot: string | null): Promise<EgressPolicy> {
    if (!repoRoot) return this.#opts.defaultPolicy;
    const cached = this.#policies.get(repoRoot);
    const now = this.#opts.clock.now();
    if (cached && now - cached.at < this.#opts.policyTtlMs) return cached.policy;
    try {
      const policy = await this.#opts.repoPolicy(repoRoot);
      this.#policies.set(repoRoot, { policy, at: now });
      return policy;
    } catch (error) {
      this.#warnOnce(
        `policy:${repoRoot}`,
        `egress policy of ${repoRoot} unavailable (${errorMessage(error)}); using the proxy's`,
      );
      this.#policies.set(repoRoot, { policy: this.#opts.defaultPolicy, at: now });
      return this.#opts.defaultPolicy;
    }
  }

  async identify(ip: string): Promise<ClientInfo> {
    const canon = canonicalIp(ip);
    await this.#refresh();
    let entry = this.#byIp.get(canon);
    if (!entry && this.#opts.clock.now() - this.#readAt >= 500) {
      // A sandbox created since the last read: look again (at most twice a second).
      this.#readAt = -Infinity;
      await this.#refresh();
      entry = this.#byIp.get(canon);
    }
    if (!entry) return { ip: canon, sandbox: null, policy: this.#opts.defaultPolicy };
    return { ip: canon, sandbox: entry.name, policy: await this.#policyFor(entry.repoRoot) };
  }
}
