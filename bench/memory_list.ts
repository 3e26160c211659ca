/**
 * What the in-memory engine alone costs in bench/startup_bench.ts's `list --json` row: open the
 * world file at `$TACHIKOMA_TEST_MEMORY_WORLD` and list it, in a process of its own.
 *
 * @module
 */
import { openMemoryWorld } from "../src/backends/memory/mod.ts";

const backend = await openMemoryWorld(Deno.env.get("TACHIKOMA_TEST_MEMORY_WORLD")!);
const list = await backend.list();
if (list.length === 0) throw new Error("empty world");
