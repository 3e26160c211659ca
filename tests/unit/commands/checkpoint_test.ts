/**
 * `tachikoma checkpoint …` as a user runs it: the real CLI in a subprocess over a file-backed
 * memory world (`TACHIKOMA_TEST_MEMORY_WORLD`), a real git repo as the worktree and a loopback
 * SSH banner server for the boot wait after a restore.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { NAME, oneSandboxWorld } from "./one_sandbox.ts";

const world = oneSandboxWorld;

Deno.test("tachikoma checkpoint create/list/restore/delete through the CLI", async () => {
  await using w = await world();
  const created = await w.cli("checkpoint", "create", "feat", "--label", "c1");
  assertEquals(created.code, 0, created.stderr);
  assertEquals(created.stdout, `Checkpoint "c1" created for ${NAME}\n`);

  const auto = await w.cli("--json", "cp", "create");
  assertEquals(auto.code, 0, auto.stderr);
  const autoDoc = JSON.parse(auto.stdout);
  assertEquals(autoDoc.name, NAME);
  assertMatch(autoDoc.label, /^tk-\d{8}-\d{6}$/);

  const listed = await w.cli("--json", "checkpoint", "list");
  assertEquals(listed.code, 0, listed.stderr);
  const doc = JSON.parse(listed.stdout);
  assertEquals(doc.name, NAME);
  assertEquals(doc.backend, "memory");
  assertEquals(
    doc.checkpoints.map((c: { label: string }) => c.label).sort(),
    [
      "c1",
      autoDoc.label,
    ].sort(),
  );
  assertEquals(Object.keys(doc.checkpoints[0]).sort(), ["created_at", "label", "size_bytes"]);
  const table = await w.cli("checkpoint", "list", "feat");
  assertMatch(table.stdout, /^LABEL +CREATED +SIZE\n/);
  assertMatch(table.stdout, /\nc1 +\d{4}-\d\d-\d\d \d\d:\d\d +0 B\n/);

  const restored = await w.cli("checkpoint", "restore", "feat", "c1");
  assertEquals(restored.code, 0, restored.stderr);
  assertMatch(
    restored.stdout,
    new RegExp(`^Restored ${NAME} to "c1" in \\d+(\\.\\d)? (ms|s) \\(ready at 127\\.0\\.0\\.1;`),
  );
  const calls = JSON.parse(await Deno.readTextFile(w.worldPath)).calls
    .map((c: { method: string }) => c.method);
  assertEquals(calls.slice(-4), ["stop", "restoreCheckpoint", "start", "mountShares"]);

  const deleted = await w.cli("cp", "delete", NAME, "c1");
  assertEquals(deleted.code, 0, deleted.stderr);
  assertEquals(deleted.stdout, `Deleted checkpoint "c1" of ${NAME}\n`);
  const missing = await w.cli("checkpoint", "delete", NAME, "c1");
  assertEquals(missing.code, 3);
  assertStringIncludes(missing.stderr, `${NAME} has no checkpoint "c1"`);

  const bad = await w.cli("checkpoint", "create", "--label", "a b");
  assertEquals(bad.code, 2);
  assertEquals(bad.stdout, "");
  assertStringIncludes(bad.stderr, `invalid checkpoint label "a b"`);
});

Deno.test("tachikoma checkpoint on an engine without checkpoints: exit 1, the way out", async () => {
  await using w = await world({ checkpoints: false });
  const r = await w.cli("--json", "checkpoint", "list", "feat");
  assertEquals(r.code, 1);
  assertEquals(r.stdout, "");
  const error = JSON.parse(r.stderr).error;
  assertEquals(error.code, "unsupported");
  assertEquals(error.message, "the memory backend cannot take checkpoints");
  assert(error.hint.includes("incus"));
  const empty = await w.cli("checkpoint", "create", "feat");
  assertEquals(empty.code, 1);
});
