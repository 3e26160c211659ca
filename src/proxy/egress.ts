/**
 * Guest egress policy for the forward proxy (CONNECT and absolute-URI requests).
 *
 * Modes (config `egress`, or the sandbox's own policy in the state file): `agent` = the preset
 * below ∪ `egress_allow`; `allowlist` = `egress_allow` only; `unrestricted` = any public
 * address; `none` = nothing. In every mode a target that is, or
 * resolves to, a loopback/private/link-local/CGNAT/reserved address is refused unless an
 * `egress_allow` entry names that host or covers that address: this closes tachikoma's hole
 * where a guest reached the host's loopback services through the proxy. Preset entries never
 * unlock private addresses (a preset name resolving to 127.0.0.1 is refused).
 *
 * `egress_allow` entries: `host` (exact), `*.host` (subdomains), `.host` (host and
 * subdomains), an IP, or a CIDR; `host:port` / `[v6]:port` / `ip:port` narrow an entry to one
 * port.
 *
 * @module
 */
import { ConfigError } from "../lib/errors.ts";
import { parseAuthority } from "./address.ts";
import {
  type Cidr,
  cidrContains,
  classifyIp,
  formatIp,
  type IpAddress,
  parseCidr,
  parseIp,
} from "./ip.ts";

/** The egress modes (`none`: every target refused). */
export type EgressMode = "unrestricted" | "agent" | "allowlist" | "none";

/** Every {@link EgressMode}, for validation and help. */
export const EGRESS_MODES: readonly EgressMode[] = ["unrestricted", "agent", "allowlist", "none"];

/** True when `text` names an egress mode. */
export function isEgressMode(text: string): text is EgressMode {
  return (EGRESS_MODES as readonly string[]).includes(text);
}

/** True when the mode keeps the guest to the proxy (everything but `unrestricted`). */
export function isRestricted(mode: EgressMode): boolean {
  return mode !== "unrestricted";
}

/** Domains of the `agent` preset (pixels-features.md §6). */
export const AGENT_PRESET_DOMAINS: readonly string[] = [
  "api.anthropic.com",
  "api.openai.com",
  "generativelanguage.googleapis.com",
  "registry.npmjs.org",
  "pypi.org",
  "files.pythonhosted.org",
  "crates.io",
  "static.crates.io",
  "proxy.golang.org",
  "sum.golang.org",
  "github.com",
  "api.github.com",
  "gitlab.com",
  "objects.githubusercontent.com",
  "raw.githubusercontent.com",
  "codeload.github.com",
  "github-releases.githubusercontent.com",
  "tmaproduction.blob.core.windows.net",
  "tuf-repo-cdn.sigstore.dev",
  "mise.run",
  "mise.jdx.dev",
  "nodejs.org",
  "archive.ubuntu.com",
  "security.ubuntu.com",
];

/**
 * tachikoma's additions to the preset: the Claude Code installer and its downloads (tachikoma
 * provisions Claude Code) and Debian's mirrors (Debian guests).
 */
export const AGENT_PRESET_ADDITIONS: readonly string[] = [
  "claude.ai",
  "downloads.claude.ai",
  "deb.debian.org",
  "security.debian.org",
];

/** CIDRs of the `agent` preset (Google; GitHub/Azure CDN). */
export const AGENT_PRESET_CIDRS: readonly string[] = [
  "142.250.0.0/15",
  "172.217.0.0/16",
  "216.58.0.0/16",
  "34.117.0.0/16",
  "185.199.108.0/22",
  "20.209.0.0/16",
];

type Rule =
  | { kind: "host"; name: string; port: number | null; explicit: boolean }
  | { kind: "suffix"; suffix: string; apex: boolean; port: number | null; explicit: boolean }
  | { kind: "cidr"; cidr: Cidr; port: number | null; explicit: boolean };

/** Parses one allow entry; throws ConfigError naming it when invalid. */
function parseRule(entry: string, explicit: boolean): Rule {
  const text = entry.trim().toLowerCase();
  const bad = () =>
    new ConfigError(`egress_allow: invalid entry '${entry}'`, {
      hint: "use host, *.host, .host, an IP, a CIDR, or any of these with :port",
    });
  if (text === "") throw bad();
  if (text.includes("/")) {
    const cidr = parseCidr(text);
    if (!cidr) throw bad();
    return { kind: "cidr", cidr, port: null, explicit };
  }
  const bareIp = parseIp(text);
  if (bareIp) {
    return {
      kind: "cidr",
      cidr: { ...bareIp, prefix: bareIp.family === 4 ? 32 : 128 },
      port: null,
      explicit,
    };
  }
  let wildcard: "none" | "sub" | "apex" = "none";
  let rest = text;
  if (rest.startsWith("*.")) {
    wildcard = "sub";
    rest = rest.slice(2);
  } else if (rest.startsWith(".")) {
    wildcard = "apex";
    rest = rest.slice(1);
  }
  const auth = parseAuthority(rest);
  if (!auth) throw bad();
  const ip = parseIp(auth.host);
  if (ip) {
    if (wildcard !== "none") throw bad();
    return {
      kind: "cidr",
      cidr: { ...ip, prefix: ip.family === 4 ? 32 : 128 },
      port: auth.port,
      explicit,
    };
  }
  if (wildcard === "none") return { kind: "host", name: auth.host, port: auth.port, explicit };
  return {
    kind: "suffix",
    suffix: auth.host,
    apex: wildcard === "apex",
    port: auth.port,
    explicit,
  };
}

/**
 * Checks one `egress_allow` entry and returns its normal form (trimmed, lower case); throws a
 * ConfigError naming it when it is not a host, `*.host`, `.host`, IP or CIDR (with `:port`).
 */
export function normalizeAllowEntry(entry: string): string {
  parseRule(entry, true);
  return entry.trim().toLowerCase();
}

/** The decision for one target. */
export type EgressDecision =
  | { allowed: true; address: string; family: 4 | 6 }
  | { allowed: false; reason: string };

/** Resolves a host name to addresses (`getaddrinfo` in production; a table in tests). */
export type Resolver = (host: string) => Promise<string[]>;

/** The policy of one sandbox. */
export class EgressPolicy {
  readonly mode: EgressMode;
  readonly #rules: Rule[];
  /** Set on a policy that refuses everything (its configuration could not be loaded). */
  #refusal: string | null = null;

  constructor(mode: EgressMode, allow: readonly string[]) {
    this.mode = mode;
    const rules: Rule[] = [];
    if (mode === "agent") {
      for (const d of [...AGENT_PRESET_DOMAINS, ...AGENT_PRESET_ADDITIONS]) {
        rules.push({ kind: "host", name: d, port: null, explicit: false });
      }
      for (const c of AGENT_PRESET_CIDRS) {
        rules.push({ kind: "cidr", cidr: parseCidr(c)!, port: null, explicit: false });
      }
    }
    for (const entry of allow) rules.push(parseRule(entry, true));
    this.#rules = rules;
  }

  /** Builds the policy from the config keys `egress` and `egress_allow`. */
  static fromConfig(config: { egress: EgressMode; egress_allow: readonly string[] }): EgressPolicy {
    return new EgressPolicy(config.egress, config.egress_allow);
  }

  /** A policy that refuses every target with `reason` (fail closed). */
  static refuseAll(reason: string): EgressPolicy {
    const policy = new EgressPolicy("allowlist", []);
    policy.#refusal = reason;
    return policy;
  }

  /** A short description for log lines: `agent (+2)`. */
  describe(): string {
    if (this.#refusal !== null) return "refuse all";
    const extra = this.#rules.filter((r) => r.explicit).length;
    return extra > 0 ? `${this.mode} (+${extra} allowed)` : this.mode;
  }

  /** The rule that allows the name, an explicit (`egress_allow`) one before a preset's. */
  #nameRule(host: string, port: number): Rule | undefined {
    const matches = (r: Rule) => {
      if (r.port !== null && r.port !== port) return false;
      if (r.kind === "host") return r.name === host;
      if (r.kind === "suffix") {
        return host.endsWith(`.${r.suffix}`) || (r.apex && host === r.suffix);
      }
      return false;
    };
    return this.#rules.find((r) => r.explicit && matches(r)) ?? this.#rules.find(matches);
  }

  #cidrRule(ip: IpAddress, port: number, explicitOnly: boolean): Rule | undefined {
    return this.#rules.find((r) =>
      r.kind === "cidr" && (r.port === null || r.port === port) &&
      (!explicitOnly || r.explicit) && cidrContains(r.cidr, ip)
    );
  }

  #hasCidrRules(): boolean {
    return this.#rules.some((r) => r.kind === "cidr");
  }

  /**
   * Decides whether the guest may reach `host:port` and picks the address to connect to (the
   * proxy connects to that address, never re-resolving, so DNS rebinding cannot swap it).
   * Host names are resolved only when the name itself could be allowed.
   */
  async decide(hostInput: string, port: number, resolve: Resolver): Promise<EgressDecision> {
    if (this.#refusal !== null) return { allowed: false, reason: this.#refusal };
    if (this.mode === "none") return { allowed: false, reason: "egress mode is none" };
    let host = hostInput.toLowerCase();
    if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
    if (host.endsWith(".")) host = host.slice(0, -1);
    const literal = parseIp(host);
    if (literal) {
      const cls = classifyIp(literal);
      const explicit = this.#cidrRule(literal, port, true);
      if (cls !== "public" && !explicit) {
        return { allowed: false, reason: `${cls.replace("_", "-")} address` };
      }
      if (this.mode !== "unrestricted" && !this.#cidrRule(literal, port, false)) {
        return { allowed: false, reason: `not on the egress allowlist (${this.describe()})` };
      }
      return { allowed: true, address: formatIp(literal), family: literal.family };
    }
    const nameRule = this.#nameRule(host, port);
    if (this.mode !== "unrestricted" && !nameRule && !this.#hasCidrRules()) {
      return { allowed: false, reason: `not on the egress allowlist (${this.describe()})` };
    }
    let addresses: string[];
    try {
      addresses = await resolve(host);
    } catch {
      return { allowed: false, reason: "does not resolve" };
    }
    let refusedPrivate: string | null = null;
    for (const text of addresses) {
      const ip = parseIp(text);
      if (!ip) continue;
      const cls = classifyIp(ip);
      if (cls !== "public") {
        const explicitName = nameRule !== undefined && nameRule.explicit;
        if (!explicitName && !this.#cidrRule(ip, port, true)) {
          refusedPrivate ??= `${formatIp(ip)} (${cls.replace("_", "-")})`;
          continue;
        }
        return { allowed: true, address: formatIp(ip), family: ip.family };
      }
      if (this.mode === "unrestricted" || nameRule || this.#cidrRule(ip, port, false)) {
        return { allowed: true, address: formatIp(ip), family: ip.family };
      }
    }
    if (refusedPrivate) return { allowed: false, reason: `resolves to ${refusedPrivate}` };
    if (addresses.length === 0) return { allowed: false, reason: "does not resolve" };
    return { allowed: false, reason: `not on the egress allowlist (${this.describe()})` };
  }
}

/** The system resolver (`getaddrinfo`, honouring /etc/hosts). */
export const systemResolver: Resolver = async (host: string): Promise<string[]> => {
  const { lookup } = await import("node:dns/promises");
  const found = await lookup(host, { all: true, verbatim: true });
  return found.map((a) => a.address);
};
