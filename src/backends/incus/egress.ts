/**
 * Egress enforcement for Incus containers, on the host, where the guest cannot touch it.
 *
 * The policy is kept in the instance's config (`user.tachikoma.egress`, JSON: mode, allow,
 * proxy address), so it survives restarts and is applied again by `start`. In a restricted mode
 * (every mode but `unrestricted`) a base chain in the host's nftables, family `netdev`, hooked
 * to the **ingress of the host side of each of the container's NICs** (the veth Incus names in
 * the instance state), drops every frame the guest sends except:
 * - ARP (to find the gateway's MAC);
 * - DHCPv4 to the server (UDP 68 → 67), so the lease is kept;
 * - TCP to the proxy (gateway address and proxy port);
 * - TCP from the guest's port 22 to the gateway that is not a connection attempt (the replies
 *   of `tachikoma ssh`/`enter` sessions the host opens).
 * Everything else is dropped before the bridge sees it: TCP/UDP/ICMP to the host's other
 * services and to other sandboxes (bridged or routed), DNS (the guest needs no resolver: the
 * proxy resolves names), IPv6 and any other ether type. Rules live in the host's network
 * namespace: root in the guest (`nft flush ruleset`, iptables) cannot change them.
 *
 * Changes are one `nft -f` transaction: the new chain is added before the old one is deleted
 * (chains alternate between `…_a` and `…_b`), so a running sandbox is never unprotected while
 * its policy changes. `unrestricted` and `delete` remove the chains. Needs `nft` and root
 * (CAP_NET_ADMIN) on the Incus host: a local socket only.
 *
 * @module
 */
import type { EgressPolicy } from "../backend.ts";
import type { CommandRunner } from "../../lib/process.ts";
import { RuntimeError, UnsupportedError } from "../../lib/errors.ts";

/** The instance config key holding the policy. */
export const EGRESS_CONFIG_KEY = "user.tachikoma.egress";

/** The host nftables table (family netdev) of tachikoma's egress chains. */
export const DEFAULT_EGRESS_TABLE = "tachikoma_egress";

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const DEVICE_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const TABLE_RE = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;

function hex(text: string): string {
  return Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** The chain-name prefix of an instance (hex: no two instances share one). */
export function chainPrefix(instance: string): string {
  return `tk_${hex(instance)}_`;
}

/** The chain-name stem of an instance's NIC (`_a`/`_b` are appended). */
export function chainStem(instance: string, nic: string): string {
  return `${chainPrefix(instance)}${hex(nic)}`;
}

/** Parses the stored policy (null when absent or unreadable). */
export function parseStoredPolicy(text: string | undefined): EgressPolicy | null {
  if (!text) return null;
  try {
    const v = JSON.parse(text);
    const modes = ["unrestricted", "agent", "allowlist", "none"];
    if (typeof v?.mode !== "string" || !modes.includes(v.mode)) return null;
    const allow = Array.isArray(v.allow)
      ? v.allow.filter((a: unknown) => typeof a === "string")
      : [];
    const proxy = v.proxy && typeof v.proxy.host === "string" && Number.isInteger(v.proxy.port)
      ? { host: v.proxy.host as string, port: v.proxy.port as number }
      : undefined;
    return { mode: v.mode, allow, ...(proxy ? { proxy } : {}) };
  } catch {
    return null;
  }
}

/** One NIC to restrict: its Incus device name and the host side's interface name. */
export interface HostNic {
  nic: string;
  device: string;
}

/** Input of {@link restrictScript}. */
export interface RestrictScriptOptions {
  table: string;
  instance: string;
  nics: HostNic[];
  /** The proxy: an IPv4 literal and port, or null (nothing but ARP and DHCP passes). */
  proxy: { host: string; port: number } | null;
  /** Chains of this instance that exist now (deleted in the same transaction). */
  existing: string[];
}

function checkNames(table: string, nics: HostNic[]): void {
  if (!TABLE_RE.test(table)) throw new RuntimeError("egress_nft", `bad nftables table ${table}`);
  for (const n of nics) {
    if (!DEVICE_RE.test(n.device)) {
      throw new RuntimeError(
        "egress_nft",
        `unexpected host interface name ${JSON.stringify(n.device)}`,
      );
    }
  }
}

/** The `nft -f` script that restricts an instance's NICs (see the module doc). */
export function restrictScript(options: RestrictScriptOptions): string {
  const { table, instance, nics, proxy, existing } = options;
  checkNames(table, nics);
  if (proxy && (!IPV4_RE.test(proxy.host) || !(proxy.port > 0 && proxy.port < 65536))) {
    throw new UnsupportedError(
      `the proxy address ${proxy.host}:${proxy.port} cannot be enforced with nftables`,
      { hint: "set credential_proxy_bind to the bridge's IPv4 gateway address" },
    );
  }
  const lines = [`add table netdev ${table}`];
  const made = new Set<string>();
  for (const { nic, device } of nics) {
    const stem = chainStem(instance, nic);
    const chain = existing.includes(`${stem}_a`) ? `${stem}_b` : `${stem}_a`;
    made.add(chain);
    const c = `netdev ${table} ${chain}`;
    lines.push(
      `add chain ${c} { type filter hook ingress device "${device}" priority -500; policy drop; }`,
      `add rule ${c} ether type arp accept`,
      `add rule ${c} ether type ip udp sport 68 udp dport 67 accept`,
    );
    if (proxy) {
      lines.push(
        `add rule ${c} ether type ip ip daddr ${proxy.host} tcp dport ${proxy.port} accept`,
        `add rule ${c} ether type ip ip daddr ${proxy.host} tcp sport 22 ` +
          "tcp flags & (syn | ack) != syn accept",
      );
    }
  }
  for (const old of existing) {
    if (!made.has(old)) lines.push(`delete chain netdev ${table} ${old}`);
  }
  return lines.join("\n") + "\n";
}

/** The script that removes an instance's chains (empty when there are none). */
export function unrestrictScript(table: string, existing: string[]): string {
  if (!TABLE_RE.test(table)) throw new RuntimeError("egress_nft", `bad nftables table ${table}`);
  return existing.map((c) => `delete chain netdev ${table} ${c}\n`).join("");
}

/** Runs nft on the host. */
export class HostNft {
  readonly #runner: CommandRunner;
  readonly table: string;

  constructor(runner: CommandRunner, table = DEFAULT_EGRESS_TABLE) {
    this.#runner = runner;
    this.table = table;
  }

  async #nft(args: string[], stdin?: string): Promise<string> {
    let r;
    try {
      r = await this.#runner.run("nft", args, { stdin, timeoutMs: 30_000 });
    } catch (error) {
      throw new UnsupportedError("host egress enforcement needs nft on the Incus host", {
        hint: "install nftables (apt install nftables)",
        cause: error,
      });
    }
    if (r.code !== 0) {
      const why = r.stderr.trim().split("\n")[0] ?? "";
      if (/not permitted|permission denied/i.test(r.stderr)) {
        throw new UnsupportedError(`host egress enforcement needs root: nft: ${why}`, {
          hint: "run tachikoma as root (CAP_NET_ADMIN) on the Incus host; the proxy still " +
            "enforces the policy for proxied traffic",
        });
      }
      throw new RuntimeError("egress_nft", `nft ${args.join(" ")} failed: ${why}`);
    }
    return r.stdout;
  }

  /**
   * Whether this host can enforce egress: `nft` runs and may read the ruleset (root or
   * CAP_NET_ADMIN). Throws the same typed errors as a change would; changes nothing.
   */
  async probe(): Promise<void> {
    await this.#nft(["list", "tables"]);
  }

  /** The chains of `instance` now in the table. */
  async chains(instance: string): Promise<string[]> {
    let out: string;
    try {
      out = await this.#nft(["-j", "list", "table", "netdev", this.table]);
    } catch (error) {
      if (error instanceof RuntimeError && /No such file|does not exist/i.test(error.message)) {
        return [];
      }
      throw error;
    }
    const prefix = chainPrefix(instance);
    const names: string[] = [];
    for (const item of JSON.parse(out)?.nftables ?? []) {
      const name = item?.chain?.name;
      if (typeof name === "string" && name.startsWith(prefix)) names.push(name);
    }
    return names;
  }

  /** Applies the restriction (one transaction). */
  async restrict(options: Omit<RestrictScriptOptions, "table" | "existing">): Promise<void> {
    const existing = await this.chains(options.instance);
    await this.#nft(["-f", "-"], restrictScript({ ...options, table: this.table, existing }));
  }

  /** Removes every chain of `instance`. */
  async unrestrict(instance: string): Promise<void> {
    const script = unrestrictScript(this.table, await this.chains(instance));
    if (script) await this.#nft(["-f", "-"], script);
  }
}
