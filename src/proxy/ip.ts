/**
 * IP literals: parsing (IPv4 dotted quads, IPv6 with `::`, embedded IPv4 and zone ids),
 * CIDR matching, and the classes the egress proxy refuses by default (loopback, private,
 * link-local, CGNAT, unspecified, multicast, reserved), including IPv4 addresses hidden in IPv6
 * (`::ffff:127.0.0.1`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`).
 *
 * @module
 */

/** A parsed address: 4 or 16 bytes. */
export interface IpAddress {
  family: 4 | 6;
  bytes: Uint8Array;
}

/** A parsed CIDR block. */
export interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
}

/** Where an address points. Only `public` is reachable without an explicit allow. */
export type IpClass =
  | "public"
  | "loopback"
  | "private"
  | "link_local"
  | "cgnat"
  | "unspecified"
  | "multicast"
  | "reserved";

function parseV4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseV6(input: string): Uint8Array | null {
  let text = input;
  const zone = text.indexOf("%");
  if (zone !== -1) text = text.slice(0, zone);
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (i === items.length - 1 && item.includes(".")) {
        const v4 = parseV4(item);
        if (!v4) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(item)) return null;
        out.push(parseInt(item, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  let all: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return null;
    all = [...head, ...new Array(missing).fill(0), ...tail];
  } else {
    all = head;
  }
  if (all.length !== 8) return null;
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}

/** Parses an IP literal (IPv6 may be bracketed). Returns null for anything else. */
export function parseIp(text: string): IpAddress | null {
  let t = text.trim();
  if (t.startsWith("[") && t.endsWith("]")) t = t.slice(1, -1);
  const v4 = parseV4(t);
  if (v4) return { family: 4, bytes: v4 };
  if (!t.includes(":")) return null;
  const v6 = parseV6(t);
  return v6 ? { family: 6, bytes: v6 } : null;
}

/** True when `text` is an IP literal. */
export function isIpLiteral(text: string): boolean {
  return parseIp(text) !== null;
}

/** Parses `addr/prefix` (a bare address is a /32 or /128). */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf("/");
  const addr = parseIp(slash === -1 ? text : text.slice(0, slash));
  if (!addr) return null;
  const max = addr.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return null;
    prefix = Number(p);
    if (prefix > max) return null;
  }
  return { family: addr.family, bytes: addr.bytes, prefix };
}

/** True when `ip` lies in `cidr` (IPv4-mapped IPv6 addresses match IPv4 blocks). */
export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  let addr = ip;
  if (cidr.family === 4 && ip.family === 6) {
    const v4 = embeddedV4(ip);
    if (!v4) return false;
    addr = v4;
  }
  if (cidr.family !== addr.family) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++) {
    const take = Math.min(8, bits);
    const mask = (0xff << (8 - take)) & 0xff;
    if ((cidr.bytes[i] & mask) !== (addr.bytes[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

/** The IPv4 address inside an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 IPv6 address. */
export function embeddedV4(ip: IpAddress): IpAddress | null {
  if (ip.family !== 6) return null;
  const b = ip.bytes;
  const zeros = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated; not :: or ::1)
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) {
    return { family: 4, bytes: b.slice(12, 16) };
  }
  if (zeros(0, 12) && !(zeros(12, 15) && (b[15] === 0 || b[15] === 1))) {
    return { family: 4, bytes: b.slice(12, 16) };
  }
  // 64:ff9b::/96 (NAT64)
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) {
    return { family: 4, bytes: b.slice(12, 16) };
  }
  // 2002::/16 (6to4): the next 32 bits
  if (b[0] === 0x20 && b[1] === 0x02) return { family: 4, bytes: b.slice(2, 6) };
  return null;
}

const V4_CLASSES: [string, IpClass][] = [
  ["0.0.0.0/8", "unspecified"],
  ["127.0.0.0/8", "loopback"],
  ["10.0.0.0/8", "private"],
  ["172.16.0.0/12", "private"],
  ["192.168.0.0/16", "private"],
  ["169.254.0.0/16", "link_local"],
  ["100.64.0.0/10", "cgnat"],
  ["192.0.0.0/24", "reserved"],
  ["192.0.2.0/24", "reserved"],
  ["198.18.0.0/15", "reserved"],
  ["198.51.100.0/24", "reserved"],
  ["203.0.113.0/24", "reserved"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved"],
];
const V6_CLASSES: [string, IpClass][] = [
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["fe80::/10", "link_local"],
  ["fc00::/7", "private"],
  ["fec0::/10", "private"],
  ["ff00::/8", "multicast"],
  ["2001:db8::/32", "reserved"],
  ["100::/64", "reserved"],
];
const V4_TABLE = V4_CLASSES.map(([c, k]) => [parseCidr(c)!, k] as const);
const V6_TABLE = V6_CLASSES.map(([c, k]) => [parseCidr(c)!, k] as const);

/** Classifies an address; IPv4 hidden in IPv6 is classified as the IPv4 address. */
export function classifyIp(ip: IpAddress): IpClass {
  if (ip.family === 6) {
    for (const [cidr, kind] of V6_TABLE) if (cidrContains(cidr, ip)) return kind;
    const v4 = embeddedV4(ip);
    if (v4) return classifyIp(v4);
    return "public";
  }
  for (const [cidr, kind] of V4_TABLE) if (cidrContains(cidr, ip)) return kind;
  return "public";
}

/** Canonical text of an address (IPv6 compressed, lower-case, no brackets). */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return Array.from(ip.bytes).join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i] << 8) | ip.bytes[i + 1]);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(":");
  const left = hex.slice(0, bestStart).join(":");
  const right = hex.slice(bestStart + bestLen).join(":");
  return `${left}::${right}`;
}
