/**
 * `tachikoma pr` as a user runs it: the real CLI in a subprocess, a state file naming the
 * sandbox, real git with a bare origin, and the recording fake gh first on PATH.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { runCli } from "../cli/helpers.ts";
import { GIT_CONFIG_FILE, gitIn, type PrWorld, prWorld } from "../core/pr_fixture.ts";

/** A home whose state file holds the world's sandbox record. */
async function homeFor(w: PrWorld): Promise<Record<string, string>> {
  const home = `${w.dir}/home`;
  const configDir = `${home}/.config/tachikoma`;
  await Deno.mkdir(configDir, { recursive: true });
  await Deno.writeTextFile(
    `${configDir}/state.json`,
    JSON.stringify({ version: 2, vms: [w.record] }, null, 2),
  );
  return {
    HOME: home,
    TACHIKOMA_CONFIG_DIR: configDir,
    PATH: `${w.bin}:/usr/bin:/bin`,
    GIT_CONFIG_GLOBAL: GIT_CONFIG_FILE,
    GIT_CONFIG_NOSYSTEM: "1",
  };
}

async function lastUsed(env: Record<string, string>): Promise<string> {
  const state = JSON.parse(await Deno.readTextFile(`${env.TACHIKOMA_CONFIG_DIR}/state.json`));
  return state.vms[0].last_used;
}

Deno.test("tachikoma pr <branch>: PR line on stdout, steps on stderr, last_used updated", async () => {
  await using w = await prWorld();
  const env = await homeFor(w);
  await Deno.writeTextFile(`${w.worktree}/new file.txt`, "x\n");
  const r = await runCli(["pr", "feat"], { env, cwd: w.root });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout, "PR: https://github.com/acme/myapp/pull/42\n");
  assert(await lastUsed(env) > w.record.last_used);
  assertEquals(
    await gitIn(w.remote, "rev-parse", "refs/heads/feat"),
    await gitIn(w.worktree, "rev-parse", "HEAD"),
  );
});

Deno.test("tachikoma pr --json --name --draft --title: one document with the result", async () => {
  await using w = await prWorld();
  const env = await homeFor(w);
  await Deno.writeTextFile(`${w.worktree}/a.txt`, "x\n");
  const r = await runCli(
    ["--json", "pr", "--name", "tachikoma-myapp-feat", "--draft", "--title", "T 'x'"],
    { env, cwd: w.dir },
  );
  assertEquals(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assertEquals(Object.keys(doc).sort(), [
    "branch",
    "commit",
    "committed",
    "created",
    "files",
    "name",
    "pushed",
    "url",
  ]);
  assertEquals(doc.name, "tachikoma-myapp-feat");
  assertEquals(doc.branch, "feat");
  assertMatch(doc.commit, /^[0-9a-f]{40}$/);
  assertEquals([doc.committed, doc.pushed, doc.created], [true, true, true]);
  assertEquals(doc.files, ["A  a.txt"]);
  assertEquals(doc.url, "https://github.com/acme/myapp/pull/42");
  const calls = await w.calls();
  assertEquals(calls.at(-1)!.argv, ["pr", "create", "--fill", "--draft", "--title=T 'x'"]);
});

Deno.test("tachikoma pr: existing PR prints its URL; nothing to do exits 1 with one clear line", async () => {
  await using w = await prWorld();
  const env = await homeFor(w);
  const nothing = await runCli(["pr", "feat"], { env, cwd: w.root });
  assertEquals(nothing.code, 1);
  assertEquals(nothing.stdout, "");
  assertMatch(nothing.stderr, /^tachikoma: nothing to commit and nothing to push on 'feat'/m);

  await Deno.writeTextFile(`${w.worktree}/a.txt`, "x\n");
  await w.setMode("exists");
  const r = await runCli(["pr", "feat"], { env, cwd: w.root });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout, "PR: https://github.com/acme/myapp/pull/7\n");
  assertStringIncludes(r.stderr, "a pull request for feat was already open");
});

Deno.test("tachikoma pr: gh missing, bad flags and unknown sandboxes fail with the right codes", async () => {
  await using w = await prWorld();
  const env = await homeFor(w);
  await Deno.writeTextFile(`${w.worktree}/a.txt`, "x\n");
  const noGh = await runCli(["--json", "pr", "feat"], {
    env: { ...env, PATH: "/usr/bin:/bin" },
    cwd: w.root,
  });
  assertEquals(noGh.code, 1);
  assertEquals(noGh.stdout, "");
  const err = JSON.parse(noGh.stderr).error;
  assertEquals(err.message, "the GitHub CLI (gh) is not installed or not on PATH");
  assertStringIncludes(err.hint, "https://cli.github.com");

  const both = await runCli(["pr", "feat", "--name", "other"], { env, cwd: w.root });
  assertEquals(both.code, 2);
  assertStringIncludes(both.stderr, `two different sandboxes given: "feat" and --name "other"`);

  const unknown = await runCli(["pr", "nope"], { env, cwd: w.root });
  assertEquals(unknown.code, 3);
  assertStringIncludes(unknown.stderr, "no sandbox matches 'nope'");
  // None of that touched the worktree.
  assertEquals(await gitIn(w.worktree, "status", "--porcelain"), "?? a.txt");
});
