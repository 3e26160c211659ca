/**
 * The provisioner the application uses, replaceable like the engines (src/backends/registry.ts):
 * production never installs one and gets {@link createProvisioner}; the tests' CLI entry point
 * (tests/testing/memory_main.ts) installs a dry one for the in-memory guest, whose commands
 * print nothing (provisioning a guest that answers nothing fails, as it must: its output is
 * checked). No environment variable or config key selects it in the production entry point.
 *
 * @module
 */
import type { Provisioner } from "./contract.ts";
import type { CreateProvisionerOptions } from "./mod.ts";

/** Makes the application's provisioner from the options the wiring passes. */
export type ProvisionerFactory = (options: CreateProvisionerOptions) => Provisioner;

let installed: ProvisionerFactory | null = null;

/** Installs `factory` in place of the built-in provisioner (for this process). */
export function installProvisioner(factory: ProvisionerFactory): void {
  installed = factory;
}

/** The installed factory, or null (the built-in provisioner is used). */
export function installedProvisioner(): ProvisionerFactory | null {
  return installed;
}
