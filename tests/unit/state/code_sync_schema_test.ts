/**
 * The state record's `code_sync` (code by git): optional (older files load unchanged), checked
 * when present, and a bad value is named by its path.
 */
import { assertEquals, assertThrows } from "@std/assert";
import { StateShapeError, validateStateFile } from "../../../src/state/schema.ts";

const STAMP = "2026-05-01T12:00:00.000Z";

function file(extra: Record<string, unknown>): unknown {
  return {
    version: 2,
    vms: [{
      name: "tachikoma-myapp-feat",
      repo: "myapp",
      branch: "feat",
      worktree_path: "/src/myapp-feat",
      created_at: STAMP,
      last_used: STAMP,
      status: "running",
      ip: null,
      ...extra,
    }],
  };
}

Deno.test("code_sync: absent (older files) and valid values load", () => {
  assertEquals(validateStateFile(file({})).vms[0].code_sync, undefined);
  const sync = { mode: "git", guest_head: "a".repeat(40), ahead: 2, behind: 0, checked_at: STAMP };
  assertEquals(validateStateFile(file({ code_sync: sync })).vms[0].code_sync, sync);
  const unknown = { mode: "git", guest_head: null, ahead: null, behind: null, checked_at: STAMP };
  assertEquals(validateStateFile(file({ code_sync: unknown })).vms[0].code_sync, unknown);
});

Deno.test("code_sync: a bad value is refused, naming vms[0].code_sync", () => {
  const good = { mode: "git", guest_head: "a".repeat(40), ahead: 0, behind: 0, checked_at: STAMP };
  for (
    const bad of [
      { ...good, mode: "share" },
      { ...good, guest_head: "$(id)" },
      { ...good, ahead: -1 },
      { ...good, behind: 1.5 },
      { ...good, checked_at: "yesterday" },
      "git",
    ]
  ) {
    const error = assertThrows(() => validateStateFile(file({ code_sync: bad })), StateShapeError);
    assertEquals(error.path, "vms[0].code_sync");
  }
});
