/**
 * The layers of `src/`, top to bottom: the one place that says which folder may import which.
 * A folder may import only folders of the layers below its own; folders of one layer do not
 * import each other. `layers_test.ts` reads the real import graph (static, dynamic and
 * type-only imports) and fails on any other direction and on any import cycle between files.
 *
 * - `cli`: the command tree, output, progress, completions, and the application's wiring.
 * - `commands`: one file per command: parse → call → print.
 * - `mcp`: the MCP server and its tools (call core, never the CLI).
 * - `core`: orchestration (sandbox service, spawn, lifecycle, checkpoints, pr); `doctor`.
 * - `provision`, `proxy`: guest provisioning; the host credential proxy.
 * - `backends`, `credentials`, `git`: the engines (and their registry); the credential
 *   waterfall; git on the host.
 * - `ssh`, `state`, `config`, `lib`: SSH transport; the state file and locks; configuration;
 *   the bottom layer (errors, clock, log, redact, process, shell, progress, probe, naming…).
 *
 * @module
 */

/** Folders of `src/`, layer by layer, top first. */
export const LAYERS: readonly (readonly string[])[] = [
  ["cli"],
  ["commands"],
  ["mcp"],
  ["core", "doctor"],
  ["provision", "proxy"],
  ["backends", "credentials", "git"],
  ["ssh"],
  ["state"],
  ["config"],
  ["lib"],
];

/** The layer index of a folder (0 = top), or -1 when the folder is not in {@link LAYERS}. */
export function layerOf(folder: string): number {
  return LAYERS.findIndex((layer) => layer.includes(folder));
}

/** Why `from` may not import `to` (both folders of `src/`), or null when it may. */
export function forbidden(from: string, to: string): string | null {
  if (from === to) return null;
  const a = layerOf(from), b = layerOf(to);
  if (a === -1) return `src/${from}/ is in no layer (add it to tests/unit/architecture/layers.ts)`;
  if (b === -1) return `src/${to}/ is in no layer (add it to tests/unit/architecture/layers.ts)`;
  if (a === b) return `src/${from}/ and src/${to}/ are in the same layer`;
  if (a > b) return `src/${from}/ is below src/${to}/`;
  return null;
}
