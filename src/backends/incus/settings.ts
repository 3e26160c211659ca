/**
 * The Incus backend's settings, taken from the validated configuration.
 *
 * @module
 */
import type { Config } from "../../config/schema.ts";
import { INCUS_DEFAULTS } from "../../config/defaults.ts";
import type { IncusEndpoint } from "./client.ts";
import type { ImageServer } from "./image_ref.ts";

/** What the backend takes from the configuration. */
export interface IncusSettings {
  endpoint: IncusEndpoint;
  /** `[incus] image`: overrides the image passed to `create` (`base_image`). */
  image?: string;
  /** `[incus.image_servers]`, by name (default: the built-in `images` server). */
  imageServers?: Record<string, ImageServer>;
  cpus: number;
  memoryMb: number;
  storagePool?: string;
  network?: string;
  /** The sandbox user (`ssh_user`). */
  sshUser: string;
  sshPort: number;
}

/** The image servers of the settings (the built-in ones when none are given). */
export function imageServersOf(settings: IncusSettings): Record<string, ImageServer> {
  if (settings.imageServers) return settings.imageServers;
  return Object.fromEntries(
    Object.entries(INCUS_DEFAULTS.image_servers).map(([name, s]) => [name, { name, ...s }]),
  );
}

/** The backend's settings from a validated config. */
export function incusSettings(config: Config): IncusSettings {
  const i = config.incus;
  return {
    endpoint: {
      socket: i.socket,
      remote: i.remote,
      clientCert: i.client_cert,
      clientKey: i.client_key,
      serverCert: i.server_cert,
      project: i.project,
    },
    image: i.image,
    imageServers: Object.fromEntries(
      Object.entries(i.image_servers).map(([name, s]) => [name, { name, ...s }]),
    ),
    cpus: config.vm_cpus,
    memoryMb: config.vm_memory,
    storagePool: i.storage_pool,
    network: i.network,
    sshUser: config.ssh_user,
    sshPort: config.ssh_port,
  };
}
