/**
 * IPv4 subnets in use on this host, and picking a free one for a new bridge: a bridge always
 * gets an explicit subnet, chosen from a candidate list so that it collides with none of the
 * host's routes (nor with another bridge's subnet). The host's routes come from
 * `/proc/net/route` (Linux) behind {@link RoutesReader}, so the choice is tested with doubles.
 *
 * @module
 */

/** An IPv4 network: address (as a 32-bit number) and prefix length. */
export interface Ipv4Net {
  /** The network address, as an unsigned 32-bit number. */
  address: number;
  prefix: number;
}

/** Reads the host's IPv4 routes. */
export interface RoutesReader {
  /** Destinations of the IPv4 routes (the default route included, as `0.0.0.0/0`). */
  ipv4Routes(): Promise<Ipv4Net[]>;
}

/**
 * Candidate bridge addresses (gateway/prefix), in order of preference: private ranges that
 * home and office networks rarely use.
 */
export const BRIDGE_CANDIDATES: readonly string[] = [
  "10.217.40.1/24",
  "10.218.51.1/24",
  "10.219.62.1/24",
  "10.231.73.1/24",
  "10.243.84.1/24",
  "172.28.95.1/24",
  "172.29.106.1/24",
  "192.168.217.1/24",
];

/** Parses `a.b.c.d/n` (the host part may be set: `10.0.0.1/24`); null when it is not one. */
export function parseCidr(text: string): Ipv4Net | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text.trim());
  if (!m) return null;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) return null;
  const address = ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
  return { address: (address & mask(prefix)) >>> 0, prefix };
}

/** Formats a network as `a.b.c.d/n`. */
export function formatNet(net: Ipv4Net): string {
  const a = net.address;
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/${net.prefix}`;
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** True when the two networks share an address. */
export function overlaps(a: Ipv4Net, b: Ipv4Net): boolean {
  const m = mask(Math.min(a.prefix, b.prefix));
  return ((a.address & m) >>> 0) === ((b.address & m) >>> 0);
}

/**
 * The first candidate that overlaps none of `taken`; routes of prefix 0 (the default route)
 * are ignored, since they cover everything. Null when every candidate collides.
 */
export function chooseSubnet(
  candidates: readonly string[],
  taken: readonly Ipv4Net[],
): string | null {
  const specific = taken.filter((t) => t.prefix > 0);
  for (const candidate of candidates) {
    const net = parseCidr(candidate);
    if (net && !specific.some((t) => overlaps(net, t))) return candidate;
  }
  return null;
}

/**
 * Parses `/proc/net/route`: destination and mask are little-endian hex. Malformed lines are
 * skipped.
 */
export function parseProcNetRoute(text: string): Ipv4Net[] {
  const nets: Ipv4Net[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || !/^[0-9A-Fa-f]{8}$/.test(f[1]) || !/^[0-9A-Fa-f]{8}$/.test(f[7])) continue;
    const dest = swap(parseInt(f[1], 16));
    const m = swap(parseInt(f[7], 16));
    const prefix = countBits(m);
    nets.push({ address: (dest & mask(prefix)) >>> 0, prefix });
  }
  return nets;
}

function swap(n: number): number {
  return (((n & 0xff) << 24) | ((n & 0xff00) << 8) | ((n >>> 8) & 0xff00) | (n >>> 24)) >>> 0;
}

function countBits(n: number): number {
  let count = 0;
  for (let v = n >>> 0; v; v = (v & (v - 1)) >>> 0) count++;
  return count;
}

/** The host's routes from `/proc/net/route`. */
export const procRoutes: RoutesReader = {
  async ipv4Routes() {
    return parseProcNetRoute(await Deno.readTextFile("/proc/net/route"));
  },
};
