/**
 * The memory backend: an in-memory {@link Backend} for unit tests, and a JSON-file world
 * ({@link openMemoryWorld}) shared by CLI subprocesses and benches, which install it in the
 * engine registry (`tests/testing/memory_main.ts`). Never selectable by users. The world file format is
 * described in `src/backends/memory/README.md`.
 *
 * @module
 */
import { MemoryBackend } from "./backend.ts";
import { FileStorage, readWorldFile } from "./world.ts";

export * from "./backend.ts";
export * from "./world.ts";
export { EchoSession, hostPathFor } from "./sessions.ts";

/**
 * Opens a memory backend whose world lives in the JSON file at `path` (created on the first
 * change when missing). Capabilities are read from the file once, here; everything else is
 * read on every call, so a test can change the file between commands.
 */
export async function openMemoryWorld(path: string): Promise<MemoryBackend> {
  const world = await readWorldFile(path);
  return new MemoryBackend({ storage: new FileStorage(path) }, world);
}
