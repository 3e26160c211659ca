/**
 * Who is talking to the proxy. A client is the sandbox whose token it presents (tokens.ts):
 * the token is the identity, the source IP is only logged. A request without a token, or with
 * a token no sandbox holds (never issued, revoked, or of a sandbox tachikoma's state no longer
 * lists), is refused by the server. A valid token from an address other than the sandbox's
 * recorded one is served, with one warning per sandbox and address: addresses change (DHCP,
 * NAT in front of remote engines) and are not a secret, the token is.
 *
 * The sandbox's egress policy is its own, from its state record (`egress`: set by spawn and by
 * `network set/allow/deny`); a record without one (made before policies were kept per sandbox)
 * gets its repository's configuration (repo_policy.ts), and a record whose policy is malformed
 * gets a policy that refuses everything. A base build's sandbox (`tkb-<base>-<hash>`, never in
 * the state) is served while its token exists, with the configuration directory's policy. The
 * state file is read again whenever it changes (inode, size, mtime: tachikoma replaces it by
 * rename, so every write is a new inode), checked with a synchronous `stat` per request.
 *
 * @module
 */
import { type Clock, systemClock } from "../lib/clock.ts";
import { errorMessage } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { EgressPolicy, isEgressMode } from "./egress.ts";
import { embeddedV4, formatIp, parseIp } from "./ip.ts";
import { RepoPolicies, type RepoPolicySource } from "./repo_policy.ts";
import { TokenRegistry } from "./token_registry.ts";
import { baseOfBuild } from "../config/bases.ts";

/** An authenticated client of the proxy. */
export interface ClientInfo {
  /** Source IP (IPv4-mapped addresses shown as IPv4). */
  ip: string;
  /** The sandbox whose token it presented. */
  sandbox: string;
  /** That sandbox's egress policy (loaded on first use: API calls never need it). */
  policy(): Promise<EgressPolicy>;
}

/** Why a client was not identified. */
export type RefusalReason = "no token" | "unknown token";

/** The outcome of {@link ClientDirectory.identify}. */
export type Identification =
  | { ok: true; client: ClientInfo }
  | { ok: false; ip: string; reason: RefusalReason };

/** Maps presented tokens to sandboxes and policies. */
export interface ClientDirectory {
  /** Identifies the client at `ip` presenting `token` (null: it presented none). */
  identify(ip: string, token: string | null): Promise<Identification>;
}

/** `sandbox name (ip)`, for log lines. */
export function describeClient(client: ClientInfo): string {
  return `sandbox ${client.sandbox} (${client.ip})`;
}

/** Canonical form of a peer address. */
export function canonicalIp(text: string): string {
  const ip = parseIp(text);
  if (!ip) return text;
  return formatIp(embeddedV4(ip) && ip.bytes[10] === 0xff ? embeddedV4(ip)! : ip);
}

/** A fixed table of tokens (tests, and embedding the server without a state directory). */
export class StaticClientDirectory implements ClientDirectory {
  constructor(
    readonly tokens: Record<string, { sandbox: string; policy: EgressPolicy }>,
  ) {}

  identify(ip: string, token: string | null): Promise<Identification> {
    const canon = canonicalIp(ip);
    if (token === null) return Promise.resolve({ ok: false, ip: canon, reason: "no token" });
    const entry = Object.hasOwn(this.tokens, token) ? this.tokens[token] : undefined;
    if (!entry) return Promise.resolve({ ok: false, ip: canon, reason: "unknown token" });
    return Promise.resolve({
      ok: true,
      client: { ip: canon, sandbox: entry.sandbox, policy: () => Promise.resolve(entry.policy) },
    });
  }
}

interface StateEntry {
  /** Canonical recorded IP, or null. */
  ip: string | null;
  /** Where its configuration is loaded: the repo root, else the worktree, else the config dir. */
  root: string;
  /** Its own policy (state `egress`), or null: the repository's configuration decides. */
  own: EgressPolicy | null;
}

/** The policy a state record's `egress` value describes (refuse-all when malformed). */
export function recordPolicy(value: unknown): EgressPolicy | null {
  if (value === undefined || value === null) return null;
  const r = value as Record<string, unknown>;
  if (
    typeof r !== "object" || typeof r.mode !== "string" || !isEgressMode(r.mode) ||
    !Array.isArray(r.allow) || !r.allow.every((a) => typeof a === "string")
  ) {
    return EgressPolicy.refuseAll("the sandbox's egress policy in the state file is malformed");
  }
  try {
    return new EgressPolicy(r.mode, r.allow as string[]);
  } catch (error) {
    return EgressPolicy.refuseAll(
      `the sandbox's egress policy is invalid (${errorMessage(error)})`,
    );
  }
}

/** Options of {@link TokenClientDirectory}. */
export interface TokenClientDirectoryOptions {
  /** The tachikoma directory (tokens under `proxy/tokens/`, `state.json`). */
  stateDir: string;
  logger: Logger;
  clock?: Clock;
  /** Where repository policies come from (tests). */
  policySource?: RepoPolicySource;
}

/** Identifies clients by their token, with the state file for each sandbox's repository. */
export class TokenClientDirectory implements ClientDirectory {
  readonly #stateDir: string;
  readonly #statePath: string;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #tokens: TokenRegistry;
  readonly #policies: RepoPolicies;
  #state = new Map<string, StateEntry>();
  #stateStamp: string | null = null;
  #reading: Promise<void> | null = null;
  readonly #warned = new Set<string>();

  constructor(options: TokenClientDirectoryOptions) {
    this.#stateDir = options.stateDir;
    this.#statePath = `${options.stateDir}/state.json`;
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
    this.#tokens = new TokenRegistry(options.stateDir, { clock: this.#clock });
    this.#policies = new RepoPolicies({
      source: options.policySource,
      clock: this.#clock,
      logger: options.logger,
    });
  }

  #warnOnce(key: string, message: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#logger.warn(message);
  }

  #stamp(): string {
    try {
      const info = Deno.statSync(this.#statePath);
      return `${info.ino ?? 0}:${info.size}:${info.mtime?.getTime() ?? 0}`;
    } catch {
      return "absent";
    }
  }

  async #readState(): Promise<void> {
    this.#reading ??= (async () => {
      const stamp = this.#stamp();
      const map = new Map<string, StateEntry>();
      try {
        const data = JSON.parse(await Deno.readTextFile(this.#statePath));
        const vms: unknown[] = Array.isArray(data?.vms) ? data.vms : [];
        for (const vm of vms) {
          if (typeof vm !== "object" || vm === null) continue;
          const r = vm as Record<string, unknown>;
          if (typeof r.name !== "string") continue;
          const root = typeof r.repo_root === "string"
            ? r.repo_root
            : typeof r.worktree_path === "string"
            ? r.worktree_path
            : this.#stateDir;
          map.set(r.name, {
            ip: typeof r.ip === "string" ? canonicalIp(r.ip) : null,
            root,
            own: recordPolicy(r.egress),
          });
        }
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) {
          this.#warnOnce("state", `cannot read ${this.#statePath}: ${errorMessage(error)}`);
        }
      }
      this.#state = map;
      this.#stateStamp = stamp;
    })().finally(() => this.#reading = null);
    await this.#reading;
  }

  async #entry(sandbox: string): Promise<StateEntry | undefined> {
    if (this.#stamp() !== this.#stateStamp) await this.#readState();
    return this.#state.get(sandbox);
  }

  /**
   * A base build (`image build`) is a sandbox state never lists: its token — issued for the
   * build, revoked when it ends — is served with the policy of the configuration directory.
   */
  #baseBuild(sandbox: string): StateEntry | undefined {
    if (baseOfBuild(sandbox) === null) return undefined;
    return { ip: null, root: this.#stateDir, own: null };
  }

  async identify(ip: string, token: string | null): Promise<Identification> {
    const canon = canonicalIp(ip);
    if (token === null) return { ok: false, ip: canon, reason: "no token" };
    const sandbox = await this.#tokens.lookup(token);
    if (sandbox === null) return { ok: false, ip: canon, reason: "unknown token" };
    const entry = await this.#entry(sandbox) ?? this.#baseBuild(sandbox);
    if (!entry) {
      this.#warnOnce(
        `orphan:${sandbox}`,
        `a token of sandbox ${sandbox}, which tachikoma's state no longer lists, was refused`,
      );
      return { ok: false, ip: canon, reason: "unknown token" };
    }
    if (entry.ip !== null && entry.ip !== canon) {
      this.#warnOnce(
        `ip:${sandbox}:${canon}`,
        `sandbox ${sandbox}'s token is used from ${canon}; its recorded address is ${entry.ip}`,
      );
    }
    const root = entry.root;
    let policy: Promise<EgressPolicy> | null = entry.own ? Promise.resolve(entry.own) : null;
    return {
      ok: true,
      client: { ip: canon, sandbox, policy: () => policy ??= this.#policies.get(root) },
    };
  }
}
