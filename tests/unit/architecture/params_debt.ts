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
  "src/cli/program_groups.ts#run",
  "src/core/spawn_start.ts#step",
  "src/doctor/mod.ts#tool",
];
