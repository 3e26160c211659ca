/**
 * withFileLock / withSandboxLock: exclusion within and across processes, shared locks,
 * abort, and safe lock file names.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import type { Clock } from "../../../src/lib/clock.ts";
import {
  sandboxLockFileName,
  sandboxLockPath,
  withFileLock,
  withSandboxLock,
} from "../../../src/state/mod.ts";
import { spawnWriter, tempDir, waitForLine } from "./helpers.ts";

/** A clock whose sleeps return at once and call `onSleep` with the number of sleeps so far. */
function countingClock(onSleep: (n: number) => void): Clock & { count: number } {
  const clock = {
    count: 0,
    now: () => 0,
    sleep(_ms: number, signal?: AbortSignal): Promise<void> {
      clock.count++;
      onSleep(clock.count);
      return signal?.aborted ? Promise.reject(signal.reason) : Promise.resolve();
    },
  };
  return clock;
}

/**
 * A promise resolved by hand — or after 10 s at the latest, so a broken lock makes a test fail
 * instead of hang. `done()` clears the safety timer.
 */
function deferred(): { promise: Promise<void>; resolve: () => void; done: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => resolve = r);
  const timer = setTimeout(() => resolve(), 10_000);
  return { promise, resolve, done: () => clearTimeout(timer) };
}

Deno.test("two holders in one process are serialised, never interleaved", async () => {
  await using tmp = await tempDir();
  const events: string[] = [];
  const releaseA = deferred();
  const aIn = deferred();
  const a = withSandboxLock({ dir: tmp.path, name: "tachikoma-myapp-main" }, async () => {
    events.push("A in");
    aIn.resolve();
    await releaseA.promise;
    events.push("A out");
  });
  await aIn.promise;
  // B polls (it has a signal); after 3 failed attempts we know it waited while A held the lock.
  const clock = countingClock((n) => n === 3 && releaseA.resolve());
  const lockB = {
    dir: tmp.path,
    name: "tachikoma-myapp-main",
    signal: new AbortController().signal,
    clock,
  };
  const b = withSandboxLock(lockB, () => {
    events.push("B in");
    return Promise.resolve("B result");
  });
  assertEquals(await b, "B result");
  releaseA.resolve(); // (only matters if B got in without waiting: the test then fails below)
  await a;
  releaseA.done();
  aIn.done();
  assert(clock.count >= 3);
  assertEquals(events, ["A in", "A out", "B in"]);
  assertEquals((await Deno.stat(`${tmp.path}/locks`)).mode! & 0o777, 0o700);
  assertEquals(
    (await Deno.stat(sandboxLockPath(tmp.path, "tachikoma-myapp-main"))).mode! & 0o777,
    0o600,
  );
});

Deno.test("different sandboxes do not block each other", async () => {
  await using tmp = await tempDir();
  const order: string[] = [];
  await withSandboxLock({ dir: tmp.path, name: "one" }, async () => {
    order.push("one in");
    const two = { dir: tmp.path, name: "two", signal: AbortSignal.timeout(5_000) };
    await withSandboxLock(two, () => {
      order.push("two in");
      return Promise.resolve();
    });
    order.push("one out");
  });
  assertEquals(order, ["one in", "two in", "one out"]);
});

Deno.test("the lock is released when fn throws", async () => {
  await using tmp = await tempDir();
  await assertRejects(
    () =>
      withSandboxLock({ dir: tmp.path, name: "x" }, () => Promise.reject(new Error("fail inside"))),
    Error,
    "fail inside",
  );
  const clock = countingClock(() => {});
  assertEquals(
    await withSandboxLock(
      { dir: tmp.path, name: "x", signal: new AbortController().signal, clock },
      () => Promise.resolve(1),
    ),
    1,
  );
  assertEquals(clock.count, 0); // acquired on the first try
});

Deno.test("another process holding the lock excludes us; abort ends the wait", async () => {
  await using tmp = await tempDir();
  const name = "tachikoma-myapp-feature-auth";
  const holder = spawnWriter(["hold", tmp.path, name]);
  // Safety net: should the abort be ignored, the wait ends after 10 s and the test fails
  // instead of hanging.
  const safety = setTimeout(() => holder.send("release").catch(() => {}), 10_000);
  try {
    await waitForLine(holder, "locked");

    // 1. Abortable wait: five failed attempts while the other process holds it, then abort.
    const controller = new AbortController();
    const clock = countingClock((n) => n === 5 && controller.abort(new Error("gave up")));
    let ran = false;
    await assertRejects(
      () =>
        withSandboxLock({ dir: tmp.path, name, signal: controller.signal, clock }, () => {
          ran = true;
          return Promise.resolve();
        }),
      Error,
      "gave up",
    );
    assertEquals(ran, false);
    assertEquals(clock.count, 5);

    // 2. Blocking wait: we get in only after the holder wrote its marker and unlocked.
    let markerAtEntry: boolean | undefined;
    const ours = withSandboxLock({ dir: tmp.path, name }, async () => {
      markerAtEntry = await Deno.lstat(`${tmp.path}/released`).then(() => true, () => false);
    });
    await holder.send("release");
    await ours;
    assertEquals(markerAtEntry, true);
  } finally {
    clearTimeout(safety);
    const status = await holder.finish();
    assertEquals(status.code, 0);
  }
  assertEquals(holder.lines, ["locked", "unlocked"]);
});

Deno.test("an already aborted signal rejects at once and never runs fn", async () => {
  await using tmp = await tempDir();
  const controller = new AbortController();
  controller.abort(new Error("cancelled"));
  let ran = false;
  await assertRejects(
    () =>
      withSandboxLock({ dir: tmp.path, name: "x", signal: controller.signal }, () => {
        ran = true;
        return Promise.resolve();
      }),
    Error,
    "cancelled",
  );
  assertEquals(ran, false);
});

Deno.test("shared locks coexist; an exclusive one waits for them", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/some.lock`;
  const events: string[] = [];
  const release = deferred();
  const s1In = deferred();
  const first = withFileLock(path, async () => {
    events.push("s1 in");
    s1In.resolve();
    await release.promise;
    events.push("s1 out");
  }, { shared: true });
  await s1In.promise;
  // A second shared holder gets in while the first holds (no waiting at all).
  const noWait = countingClock(() => {});
  await withFileLock(path, () => {
    events.push("s2 in");
    return Promise.resolve();
  }, { shared: true, signal: new AbortController().signal, clock: noWait });
  assertEquals(noWait.count, 0);
  const waits = countingClock((n) => n === 2 && release.resolve());
  await withFileLock(path, () => {
    events.push("x in");
    return Promise.resolve();
  }, { signal: new AbortController().signal, clock: waits });
  release.resolve(); // (only matters if x got in without waiting: the test then fails below)
  await first;
  release.done();
  s1In.done();
  assert(waits.count >= 2);
  assertEquals(events, ["s1 in", "s2 in", "s1 out", "x in"]);
});

Deno.test("hostile sandbox names cannot escape the locks directory", async () => {
  await using tmp = await tempDir();
  assertEquals(sandboxLockFileName("tachikoma-myapp-main"), "tachikoma-myapp-main.lock");
  const hostile = [
    "../../etc/passwd",
    "a/b",
    "..",
    ".hidden",
    "x\ny",
    "feat/$(touch /tmp/pwned)-'q\"x",
    "`id`",
    "日本語",
    "",
    "z".repeat(400),
  ];
  const files = new Set<string>();
  for (const name of hostile) {
    const file = sandboxLockFileName(name);
    assert(!file.includes("/") && !file.includes("\n") && file !== ".." && !file.startsWith("."));
    assert(new TextEncoder().encode(file).length <= 255, file);
    files.add(file);
    const path = sandboxLockPath(tmp.path, name);
    assertEquals(path, `${tmp.path}/locks/${file}`);
    assertEquals(await withSandboxLock({ dir: tmp.path, name }, () => Promise.resolve(name)), name);
  }
  assertEquals(files.size, hostile.length); // distinct names get distinct lock files
  const created: string[] = [];
  for await (const e of Deno.readDir(`${tmp.path}/locks`)) created.push(e.name);
  assertEquals(created.length, hostile.length);
  assertEquals(await Array.fromAsync(Deno.readDir(tmp.path)).then((e) => e.map((x) => x.name)), [
    "locks",
  ]);
});
