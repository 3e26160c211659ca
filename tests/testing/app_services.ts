/**
 * {@link AppServices} for command tests that must not reach any service: every method throws,
 * naming itself, so a command that unexpectedly opens a backend fails loudly.
 *
 * @module
 */
import type { AppServices } from "../../src/commands/context.ts";

/** Services that refuse to be used. */
export function noServices(): AppServices {
  const refuse = (what: string) => () => {
    throw new Error(`this test gives the command no ${what}`);
  };
  return {
    lifecycleDeps: refuse("lifecycle dependencies"),
    service: refuse("sandbox service"),
    listSandboxes: refuse("sandbox list"),
    openBackend: refuse("backend"),
    mcpContext: refuse("MCP context"),
  };
}
