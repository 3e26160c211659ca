/**
 * Whether the Incus lab (tests/lab/up.sh) is up, and what it offers. Integration tests call
 * {@link labEnv}; when it is null they register themselves with `ignore: true` (use
 * {@link labIgnored}, which prints {@link labSkipReason} to stderr once per process).
 *
 * @module
 */

/** What the lab's env file (`/run/tachikoma-lab/env`) says. */
export interface LabEnv {
  /** Incus unix socket. */
  socket: string;
  /** Image alias of the test image (`tachikoma-test`). */
  image: string;
  /** The lab bridge (`tkbr0`). */
  bridge: string;
  /** The bridge's address on the host (`10.213.0.1`). */
  gateway: string;
  /** The btrfs storage pool. */
  pool?: string;
  /** The bridge subnet in CIDR form. */
  subnet?: string;
  /** The lab's image server (stock-like images), when this lab has one. */
  imageServer?: LabImageServer;
  /** A non-root host user in `incus-admin`, for tests that run the CLI as someone else. */
  user?: string;
}

/** The lab's image server (tests/lab/stock_image.sh, image_server.ts). */
export interface LabImageServer {
  /** `https://127.0.0.1:18443`: simplestreams. */
  url: string;
  /** PEM file of its self-signed certificate. */
  cert: string;
  /** Alias of the stock-like image (`debian/12`: no sshd, sudo or user). */
  stock: string;
  /** Alias of the same without apt and dpkg. */
  noapt: string;
  /** `10.213.0.1:18080`: the apt repository the stock image's guests use. */
  apt: string;
}

/**
 * What lab sandboxes add to their egress allow list when tmux (or a base's packages) come
 * through the proxy with egress restricted: this lab's Debian mirror resolves to a reserved
 * address, which the proxy serves only when it is named explicitly. As `TACHIKOMA_EGRESS_ALLOW`
 * or in `egress_allow = [...]`.
 */
export const LAB_EGRESS_ALLOW = "deb.debian.org";

/** Where the lab writes its env file (override with `TACHIKOMA_LAB_ENV`). */
export const LAB_ENV_FILE = Deno.env.get("TACHIKOMA_LAB_ENV") ?? "/run/tachikoma-lab/env";

function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]] = m[2].replace(/^"(.*)"$/, "$1").replace(/^'(.*)'$/, "$1");
  }
  return out;
}

function detect(): { env: LabEnv | null; reason: string | null } {
  if (Deno.build.os !== "linux") return { env: null, reason: "the Incus lab needs Linux" };
  let text: string;
  try {
    text = Deno.readTextFileSync(LAB_ENV_FILE);
  } catch {
    return {
      env: null,
      reason: `the Incus lab is not up (${LAB_ENV_FILE} missing; run: make lab)`,
    };
  }
  const vars = parseEnvFile(text);
  const socket = vars.TACHIKOMA_LAB_SOCKET ?? "/var/lib/incus/unix.socket";
  try {
    if (!Deno.statSync(socket).isSocket) {
      return {
        env: null,
        reason: `the Incus lab is down (${socket} is not a socket; run: make lab)`,
      };
    }
  } catch {
    return { env: null, reason: `the Incus lab is down (${socket} missing; run: make lab)` };
  }
  return {
    env: {
      socket,
      image: vars.TACHIKOMA_LAB_IMAGE ?? "tachikoma-test",
      bridge: vars.TACHIKOMA_LAB_BRIDGE ?? "tkbr0",
      gateway: vars.TACHIKOMA_LAB_GATEWAY ?? "10.213.0.1",
      pool: vars.TACHIKOMA_LAB_POOL,
      subnet: vars.TACHIKOMA_LAB_SUBNET,
      imageServer: vars.TACHIKOMA_LAB_IMAGE_SERVER
        ? {
          url: vars.TACHIKOMA_LAB_IMAGE_SERVER,
          cert: vars.TACHIKOMA_LAB_IMAGE_SERVER_CERT ?? "",
          stock: vars.TACHIKOMA_LAB_STOCK_IMAGE ?? "debian/12",
          noapt: vars.TACHIKOMA_LAB_NOAPT_IMAGE ?? "debian/12/noapt",
          apt: vars.TACHIKOMA_LAB_APT ?? "",
        }
        : undefined,
      user: vars.TACHIKOMA_LAB_USER,
    },
    reason: null,
  };
}

const detected = detect();

/** The lab, or null when it is not up. */
export function labEnv(): LabEnv | null {
  return detected.env;
}

/** Why lab tests are skipped, or null when the lab is up. */
export const labSkipReason: string | null = detected.reason;

let told = false;

/** True when lab tests must be ignored; prints the reason to stderr once per process. */
export function labIgnored(): boolean {
  if (detected.env) return false;
  if (!told) {
    told = true;
    console.error(`skipping Incus lab tests: ${detected.reason}`);
  }
  return true;
}

/** A unique lab container name: `tkt-<prefix>-<random>` (tests delete them in cleanup). */
export function labName(prefix = "t"): string {
  const random = crypto.getRandomValues(new Uint8Array(4));
  const hex = Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("");
  return `tkt-${prefix}-${hex}`;
}
