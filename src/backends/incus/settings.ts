/**
 * The Incus backend's settings, taken from the validated configuration.
 *
 * @module
 */
import type { Config } from "../../config/schema.ts";
import type { IncusEndpoint } from "./client.ts";

/** What the backend takes from the configuration. */
export interface IncusSettings {
  endpoint: IncusEndpoint;
  /** `[incus] image`: overrides the image passed to `create` (`base_image`). */
  image?: string;
  cpus: number;
  memoryMb: number;
  storagePool?: string;
  network?: string;
  /** The sandbox user (`ssh_user`). */
  sshUser: string;
  sshPort: number;
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
    cpus: config.vm_cpus,
    memoryMb: config.vm_memory,
    storagePool: i.storage_pool,
    network: i.network,
    sshUser: config.ssh_user,
    sshPort: config.ssh_port,
  };
}
