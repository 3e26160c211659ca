/**
 * `tachikoma pull` through the real CLI (memory engine in a world file): on a sandbox that
 * mounts the host, nothing to pull (exit 0, a notice); on a code-by-git one (`mountHost:
 * false`) whose guest says it is at the host's head, `up_to_date` — recorded, so `list` shows
 * the SYNC column and `status --json` the `code_sync` object; a guest answering junk is one
 * error line, exit 1, and nothing is recorded.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { NAME, oneSandboxWorld } from "./one_sandbox.ts";
import { gitIn } from "../core/helpers.ts";

Deno.test("pull: a sandbox that mounts the host has nothing to pull (exit 0, a notice)", async () => {
  await using w = await oneSandboxWorld();
  const r = await w.cli("pull", "--json");
  assertEquals(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assertEquals([doc.name, doc.mode, doc.action, doc.commits], [NAME, "share", "shared", 0]);
  assertStringIncludes(r.stderr, "nothing to pull");
  const human = await w.cli("pull");
  assertEquals(human.stdout, `${NAME}: nothing to pull (the worktree is shared)\n`);
});

/** Makes the world's guest answer every `sh` with `answer` (and `getent` with a user). */
async function guestAnswers(worldPath: string, answer: string): Promise<void> {
  const world = JSON.parse(await Deno.readTextFile(worldPath));
  world.exec = {
    mode: "canned",
    results: [
      { argv0: "getent", stdout: "admin:x:1000:1000::/home/admin:/bin/sh\n" },
      { argv0: "sh", stdout: answer },
    ],
  };
  await Deno.writeTextFile(worldPath, JSON.stringify(world));
}

Deno.test("pull on code by git: up to date is recorded (list SYNC, status code_sync); junk is refused", async () => {
  await using w = await oneSandboxWorld({ mountHost: false });
  const worktree = JSON.parse((await w.cli("cd", "--json")).stdout).worktree_path;
  const head = await gitIn(worktree, "rev-parse", "HEAD");
  await guestAnswers(w.worldPath, `same ${head}\n\ntachikoma-output-end 0\n`);
  const r = await w.cli("pull", "--json");
  assertEquals(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assertEquals([doc.mode, doc.action, doc.from, doc.to], ["git", "up_to_date", head, head]);
  const list = await w.cli("list");
  assertStringIncludes(list.stdout, "SYNC");
  assertStringIncludes(list.stdout, "↑0 ↓0");
  const state = JSON.parse(await Deno.readTextFile(`${w.configDir}/state.json`));
  const recorded = state.vms[0].code_sync;
  assertEquals([recorded.mode, recorded.guest_head, recorded.ahead], ["git", head, 0]);

  await guestAnswers(w.worldPath, "bundle $(reboot) 1\n\ntachikoma-output-end 0\n");
  const junk = await w.cli("pull");
  assertEquals(junk.code, 1);
  assertEquals(junk.stdout, "");
  assertStringIncludes(junk.stderr, "output lost");
  assert(!junk.stderr.includes("reboot"), junk.stderr);
  const after = JSON.parse(await Deno.readTextFile(`${w.configDir}/state.json`));
  assertEquals(after.vms[0].code_sync, recorded);
});
