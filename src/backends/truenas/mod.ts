/**
 * The TrueNAS SCALE backend: Incus containers through the TrueNAS middleware's JSON-RPC API
 * (`wss://<host>/api/current`). See docs/truenas.md.
 *
 * @module
 */
import type { Config } from "../../config/schema.ts";
import type { BackendContext } from "../backend.ts";
import { ConfigError, errorMessage } from "../../lib/errors.ts";
import { systemClock } from "../../lib/clock.ts";
import { registerSecret } from "../../lib/redact.ts";
import { defaultImage } from "../../config/defaults.ts";
import { ensureKey } from "../../ssh/keys.ts";
import type { GuestSsh } from "../tart/guest.ts";
import { TruenasClient } from "./client.ts";
import { type Dialer, nodeDialer } from "./transport.ts";
import { TruenasGuest } from "./guest.ts";
import { TruenasBackend } from "./backend.ts";

export { INSTANCE_PREFIX, TRUENAS_CAPABILITIES, TruenasBackend, truenasImage } from "./backend.ts";
export type { TruenasParts, TruenasSettings } from "./backend.ts";
export { parseVersion, TruenasClient } from "./client.ts";
export type { TruenasClientOptions, TruenasVersion } from "./client.ts";
export { nodeDialer } from "./transport.ts";
export type { Dialer, DialTarget, RpcSocket, SocketHandlers } from "./transport.ts";
export { isNotFound, TruenasCallError, TruenasTransportError } from "./rpc_errors.ts";
export { TruenasGuest } from "./guest.ts";

const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

/** Overrides for {@link openTruenas} (tests). */
export interface OpenTruenasOptions {
  /** `ws` talks to a plain-text test server. */
  scheme?: "ws" | "wss";
  /** Extra PEM root certificates (a private CA). */
  caCerts?: string[];
  dial?: Dialer;
  ssh?: GuestSsh;
  /** Home holding `.ssh/tachikoma` (default `$HOME`). */
  home?: string;
  /** Retries of retriable failures (default: the contract's 3). */
  retries?: number;
}

/** The client for the `[truenas]` section; throws ConfigError naming the missing key. */
export function truenasClient(config: Config, options: OpenTruenasOptions = {}): TruenasClient {
  const t = config.truenas;
  if (!t.host) {
    throw new ConfigError("truenas.host is not set", {
      hint: "set [truenas] host in config.toml (or TACHIKOMA_TRUENAS_HOST)",
    });
  }
  if (!t.api_key) {
    throw new ConfigError("truenas.api_key is not set", {
      hint: "create an API key in the TrueNAS UI and set [truenas] api_key (file mode 0600)",
    });
  }
  registerSecret(t.api_key);
  const caCerts = [...(options.caCerts ?? []), ...serverCert(t.server_cert)];
  return new TruenasClient({
    host: t.host,
    port: t.port,
    username: t.username,
    apiKey: t.api_key,
    scheme: options.scheme ?? "wss",
    insecure: t.insecure_skip_verify,
    caCerts: caCerts.length ? caCerts : undefined,
    dial: options.dial ?? nodeDialer,
    clock: systemClock,
    retries: options.retries,
  });
}

/**
 * The PEM of `truenas.server_cert` (the server's own certificate or the CA that signed it, trusted
 * besides the system's roots), or nothing when the key is unset.
 */
function serverCert(path: string | undefined): string[] {
  if (!path) return [];
  try {
    return [Deno.readTextFileSync(path)];
  } catch (error) {
    throw new ConfigError(`truenas.server_cert: cannot read ${path}: ${errorMessage(error)}`, {
      hint: "point [truenas] server_cert at the PEM certificate of the server or of its CA",
    });
  }
}

/**
 * Opens the TrueNAS backend for `config`: `[truenas]` (host, port, username, api_key,
 * server_cert, insecure_skip_verify), `vm_cpus`, `vm_memory`, `base_image`, `ssh_user` and `ssh_port`.
 * Nothing is dialled until the first call.
 */
export async function openTruenas(
  config: Config,
  context: BackendContext,
  options: OpenTruenasOptions = {},
): Promise<TruenasBackend> {
  if (!USER_RE.test(config.ssh_user)) {
    throw new ConfigError(
      `ssh_user ${
        JSON.stringify(config.ssh_user)
      } is not a valid Linux user name for TrueNAS instances`,
    );
  }
  const client = truenasClient(config, options);
  const ssh = options.ssh ?? (await import("../tart/ssh_guest.ts")).openGuestSsh(config, context);
  const holder: { backend?: TruenasBackend } = {};
  const guest = new TruenasGuest({
    ssh,
    sshUser: config.ssh_user,
    sshPort: config.ssh_port,
    address: (name) => holder.backend!.address(name),
  });
  const backend = new TruenasBackend({
    client,
    guest,
    clock: systemClock,
    settings: {
      sshUser: config.ssh_user,
      sshPort: config.ssh_port,
      cpus: config.vm_cpus,
      memoryMb: config.vm_memory,
      image: config.base_image ?? defaultImage("truenas"),
      publicKey: async () =>
        (await ensureKey({ home: options.home, configDir: context.stateDir })).publicKey,
    },
  });
  holder.backend = backend;
  return backend;
}
