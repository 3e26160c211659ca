/**
 * The CLI with the in-memory engine installed: `deno run tests/testing/memory_main.ts <args>`
 * runs `main.ts` with every engine name opening the JSON-file memory world at
 * `$TACHIKOMA_TEST_MEMORY_WORLD` (see `src/backends/memory/README.md`). With
 * `TACHIKOMA_TEST_PROVISION=dry` it also installs the dry provisioner (tests/testing/
 * dry_provisioner.ts) for worlds whose guest answers nothing. Only tests and benches use it; the
 * production entry point knows nothing of the doubles.
 *
 * @module
 */
import { registerEngine } from "../../src/backends/registry.ts";
import { BACKENDS } from "../../src/config/defaults.ts";
import { installProvisioner } from "../../src/provision/registry.ts";
import { main } from "../../main.ts";

/** The path of this entry point, for tests that start it as a subprocess. */
export const MEMORY_MAIN = new URL(import.meta.url).pathname;

if (import.meta.main) {
  const world = Deno.env.get("TACHIKOMA_TEST_MEMORY_WORLD");
  if (!world) {
    console.error("memory_main: set TACHIKOMA_TEST_MEMORY_WORLD to the world file");
    Deno.exit(2);
  }
  for (const name of BACKENDS) {
    registerEngine({
      name,
      open: async () =>
        await (await import("../../src/backends/memory/mod.ts")).openMemoryWorld(world),
      preload: () => import("../../src/backends/memory/mod.ts"),
    });
  }
  if (Deno.env.get("TACHIKOMA_TEST_PROVISION") === "dry") {
    const { dryProvisioner } = await import("./dry_provisioner.ts");
    installProvisioner(dryProvisioner);
  }
  Deno.exit(await main(Deno.args));
}
