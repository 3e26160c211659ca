/**
 * The provisioning recipe version, in a module with no imports so core can compare a
 * sandbox's recorded version without loading the provisioner.
 *
 * Bump it when a change to the steps must reach sandboxes provisioned by an older version.
 *
 * @module
 */

/** Recipe version; a sandbox provisioned by an older version is provisioned again. */
export const PROVISION_VERSION = 2;
