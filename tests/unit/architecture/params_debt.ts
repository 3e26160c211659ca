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
  "src/backends/incus/mod.ts#pushFile",
  "src/backends/memory/backend.ts#pushFile",
  "src/backends/tart/backend.ts#pushFile",
  "src/backends/tart/guest_access.ts#pushFile",
  "src/backends/truenas/backend.ts#pushFile",
  "src/cli/program_groups.ts#run",
  "src/doctor/mod.ts#tool",
];
