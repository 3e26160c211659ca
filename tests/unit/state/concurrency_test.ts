/**
 * Cross-process tests of the state store: real `deno run` processes writing one state file.
 */
import { assert, assertEquals } from "@std/assert";
import { StateStore } from "../../../src/state/mod.ts";
import { makeRecord, spawnWriter, tempDir, waitForLine } from "./helpers.ts";

async function listDir(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(path)) names.push(e.name);
  return names.sort();
}

Deno.test("20 processes adding 10 entries each, all at once, end with exactly 200", async () => {
  await using dir = await tempDir();
  const writers = Array.from(
    { length: 20 },
    (_, i) => spawnWriter(["add", dir.path, `w${i}`, "10"]),
  );
  // Every process is loaded and waiting; then all start at the same moment.
  await Promise.all(writers.map((w) => waitForLine(w, "ready")));
  await Promise.all(writers.map((w) => w.send("go")));
  const statuses = await Promise.all(writers.map((w) => w.finish()));
  for (const s of statuses) assertEquals(s.code, 0);

  const expected = new Set<string>();
  for (let w = 0; w < 20; w++) for (let i = 0; i < 10; i++) expected.add(`w${w}-${i}`);
  for (let w = 0; w < 20; w++) {
    assertEquals(writers[w].lines.filter((l) => l !== "ready").length, 10);
  }
  const text = await Deno.readTextFile(`${dir.path}/state.json`);
  const raw = JSON.parse(text);
  assertEquals(raw.version, 2);
  assertEquals(raw.vms.length, 200);
  assertEquals(new Set(raw.vms.map((r: { name: string }) => r.name)), expected);
  // Each writer's own entries stay in its order (every update appended after reading the last).
  for (let w = 0; w < 20; w++) {
    const mine = raw.vms.map((r: { name: string }) => r.name).filter((n: string) =>
      n.startsWith(`w${w}-`)
    );
    assertEquals(mine, Array.from({ length: 10 }, (_, i) => `w${w}-${i}`));
  }
  assertEquals((await new StateStore(dir.path).read()).vms.length, 200);
  assertEquals(await listDir(dir.path), ["state.json", "state.lock"]);
});

Deno.test("writers SIGKILLed in the middle of writes leave a valid file, no committed entry lost", async () => {
  await using dir = await tempDir();
  const store = new StateStore(dir.path);
  const committed: string[] = [];
  const trials = 12;
  for (let t = 0; t < trials; t++) {
    // 32 KiB per record: every update rewrites a growing file (up to a few MB), so a write has
    // several phases (temp file created, data written, renamed…). The kill lands on the n-th
    // change the writer makes in the directory after `commits` commits, n going through 0…5
    // over the trials, so every phase is hit, twice — the same ones on every run.
    const writer = spawnWriter(["forever", dir.path, `t${t}`, "--pad", "32768"]);
    const commits = 1 + (t % 3);
    for (let i = 0; i < commits; i++) assert((await writer.nextLine()) !== null);
    const skip = t % 6;
    const watcher = Deno.watchFs(dir.path, { recursive: false });
    // Should the writer die by itself, stop watching (the checks below then fail).
    writer.child.status.then(() => watcher.close()).catch(() => {});
    let seen = 0;
    let context = `trial ${t}: the writer ended before its kill point`;
    for await (const event of watcher) {
      if (event.kind === "access") continue;
      const files = event.paths.map((p) => p.slice(p.lastIndexOf("/") + 1));
      if (files.every((f) => f === "state.lock")) continue;
      if (seen++ < skip) continue;
      writer.child.kill("SIGKILL");
      context = `trial ${t}: killed on ${event.kind} ${files.join(",")} (event ${seen})`;
      break;
    }
    watcher.close();
    const status = await writer.finish();
    assertEquals(status.signal, "SIGKILL");
    const printed = writer.lines;
    assert(printed.length >= commits);
    committed.push(...printed);

    // The file is complete JSON, holds every printed name, and this trial's entries in order
    // (at most one committed after its name was last printed: killed before printing it).
    const text = await Deno.readTextFile(`${dir.path}/state.json`);
    let raw: { vms: { name: string }[] };
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw new Error(`${context}: state.json is not valid JSON: ${error}`);
    }
    const names = raw.vms.map((r) => r.name);
    for (const name of committed) assert(names.includes(name), `${context}: lost ${name}`);
    const mine = names.filter((n) => n.startsWith(`t${t}-`));
    assert(mine.length === printed.length || mine.length === printed.length + 1, context);
    assertEquals(mine, Array.from({ length: mine.length }, (_, i) => `t${t}-${i}`), context);
  }
  // The store reads it as valid (no move-aside), and the next writer removes any temp file a
  // killed one left behind.
  const before = (await store.read()).vms.length;
  await store.put(makeRecord("after-kill"));
  assertEquals((await store.read()).vms.length, before + 1);
  assertEquals(await listDir(dir.path), ["state.json", "state.lock"]);
});
