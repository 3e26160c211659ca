/**
 * The NIC of a new instance (truenas-api.md §7.3): the physical, link-up interface with an IPv4
 * address whose subnet holds the default gateway (else the first such interface), as a MACVLAN
 * parent. Nothing found, or any error: no NIC device (a warning), the server's default applies.
 *
 * @module
 */
import { log } from "../../lib/log.ts";
import { errorMessage } from "../../lib/errors.ts";

/** A NIC device of `virt.instance.create`. */
export interface NicDevice {
  dev_type: "NIC";
  readonly: false;
  nic_type: "MACVLAN" | "BRIDGED";
  parent: string;
}

interface Iface {
  name?: string;
  type?: string;
  state?: { link_state?: string };
  aliases?: { type?: string; address?: string; netmask?: number }[];
}

function ipv4(text: string): number | null {
  const m = text.match(/^(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

function inSubnet(address: string, bits: number, gateway: string): boolean {
  const a = ipv4(address), g = ipv4(gateway);
  if (a === null || g === null || bits < 0 || bits > 32) return false;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((a & mask) >>> 0) === ((g & mask) >>> 0);
}

/** Picks the parent from `interface.query` rows and `default_routes`; null when none fits. */
export function pickNic(interfaces: unknown, defaultRoutes: unknown): NicDevice | null {
  const rows = Array.isArray(interfaces) ? interfaces as Iface[] : [];
  const candidates = rows.flatMap((i) => {
    if (i.type !== "PHYSICAL" || i.state?.link_state !== "LINK_STATE_UP" || !i.name) return [];
    const a = i.aliases?.find((x) => x.type === "INET" && x.address);
    return a ? [{ name: i.name, address: a.address!, bits: Number(a.netmask ?? 32) }] : [];
  });
  if (candidates.length === 0) return null;
  const routes = Array.isArray(defaultRoutes) ? defaultRoutes : [];
  const gateway = routes.find((r) => typeof r === "string" && ipv4(r) !== null) as
    | string
    | undefined;
  const chosen = (gateway && candidates.find((c) => inSubnet(c.address, c.bits, gateway))) ||
    candidates[0];
  return { dev_type: "NIC", readonly: false, nic_type: "MACVLAN", parent: chosen.name };
}

/** What NIC detection calls. */
export interface NicApi {
  call<T>(method: string, params?: unknown[]): Promise<T>;
}

/** Detects the NIC; warns and returns null on any failure. */
export async function detectNic(api: NicApi, host: string): Promise<NicDevice | null> {
  try {
    const interfaces = await api.call<unknown>("interface.query");
    const summary = await api.call<{ default_routes?: unknown }>("network.general.summary");
    const nic = pickNic(interfaces, summary?.default_routes);
    if (!nic) {
      log.warn(
        `TrueNAS ${host}: no physical interface with IPv4 is up; creating without a NIC device`,
      );
    }
    return nic;
  } catch (error) {
    log.warn(
      `TrueNAS ${host}: NIC detection failed (${
        errorMessage(error)
      }); creating without a NIC device`,
    );
    return null;
  }
}
