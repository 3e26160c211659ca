/**
 * Functions of `src/` that still take more than three parameters (`file#name`), checked by
 * `params_test.ts`: nothing may be added here, and an entry goes as soon as its function takes an
 * options object. `program_groups.ts#run` entries are command callbacks that receive their
 * positional arguments one by one from the parser.
 *
 * @module
 */

/** The functions not converted yet. */
export const PARAMS_DEBT: readonly string[] = [
  "src/backends/incus/apply_shares.ts#applyShares",
  "src/backends/incus/client.ts#constructor",
  "src/backends/incus/exec.ts#startExec",
  "src/backends/incus/files.ts#makeParents",
  "src/backends/incus/files.ts#pushFile",
  "src/backends/incus/images.ts#pointAlias",
  "src/backends/incus/mod.ts#pushFile",
  "src/backends/incus/prepared.ts#dropOlder",
  "src/backends/incus/prepared.ts#guestRoot",
  "src/backends/memory/backend.ts#pushFile",
  "src/backends/tart/backend.ts#pushFile",
  "src/backends/tart/guest_access.ts#pushFile",
  "src/backends/truenas/backend.ts#pushFile",
  "src/cli/parser.ts#flagValue",
  "src/cli/parser.ts#readGlobal",
  "src/cli/parser.ts#shortFlags",
  "src/cli/program_groups.ts#run",
  "src/core/images.ts#pullStep",
  "src/core/provision_policy.ts#provisionSandbox",
  "src/core/provision_policy.ts#stopUnusable",
  "src/core/spawn.ts#spawnLocked",
  "src/core/spawn_start.ts#bootFailed",
  "src/core/spawn_start.ts#bootWait",
  "src/core/spawn_start.ts#startAndBoot",
  "src/core/spawn_start.ts#step",
  "src/doctor/mod.ts#tool",
  "src/mcp/reaper.ts#<anonymous@7877>",
  "src/mcp/tooling.ts#registerTool",
  "src/mcp/tooling.ts#runTool",
  "src/provision/shares.ts#share",
  "src/proxy/api.ts#forwardApi",
  "src/proxy/bind.ts#incusGet",
  "src/proxy/daemon.ts#foreignProxy",
  "src/proxy/forward.ts#forwardHttp",
  "src/proxy/forward.ts#handleConnect",
  "src/proxy/forward.ts#respondRaw",
  "src/proxy/http_head.ts#plainResponse",
];
