import { assertEquals } from "@std/assert";
import { followFile, readTextOrEmpty } from "../../../src/lib/follow_file.ts";

/** Polls `check` until it holds or 10 s pass. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("followFile: appended text arrives, a rotated file is read from its start, abort ends it", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/sub/log.txt`;
  try {
    assertEquals(await readTextOrEmpty(path), "");
    const abort = new AbortController();
    let seen = "";
    const following = followFile({
      path,
      offset: 0,
      signal: abort.signal,
      write: (t) => seen += t,
    });
    await until(() => {
      try {
        Deno.statSync(`${dir}/sub`);
        return true;
      } catch {
        return false;
      }
    }, "the directory");
    await Deno.writeTextFile(path, "one\n", { append: true });
    await until(() => seen === "one\n", "the first line");
    await Deno.writeTextFile(path, "two ünïcode\n", { append: true });
    await until(() => seen === "one\ntwo ünïcode\n", "the second line");
    await Deno.writeTextFile(path, "x\n"); // rotated: shorter than what was read
    await until(() => seen.endsWith("x\n"), "the rotated file");
    abort.abort();
    await following;
    assertEquals(await readTextOrEmpty(path), "x\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
