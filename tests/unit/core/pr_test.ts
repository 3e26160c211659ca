/**
 * `openPullRequest` with real git (bare origin, linked worktree) and a recording fake gh.
 */
import {
  assert,
  assertEquals,
  assertFalse,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import {
  commitMessage,
  MAX_BODY_FILES,
  openPullRequest,
  type PrDeps,
  scrub,
  unmergedPaths,
} from "../../../src/core/pr.ts";
import {
  ConflictError,
  NotFoundError,
  RuntimeError,
  UnreachableError,
} from "../../../src/lib/errors.ts";
import { defaultRunner } from "../../../src/lib/process.ts";
import { SAFE_GIT_CONFIG } from "../../../src/git/run.ts";
import { RecordingReporter } from "../../testing/recording_reporter.ts";
import { gitIn, HOST_EMAIL, HOST_NAME, type PrWorld, prWorld } from "./pr_fixture.ts";

function deps(w: PrWorld, gh = w.gh): PrDeps & { reporter: RecordingReporter } {
  return { runner: defaultRunner, reporter: new RecordingReporter(), gh };
}

async function remoteHead(w: PrWorld, branch = w.branch): Promise<string | null> {
  try {
    return await gitIn(
      w.remote,
      "rev-parse",
      "--verify",
      "--end-of-options",
      `refs/heads/${branch}`,
    );
  } catch {
    return null;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

const HOSTILE_FILES = [
  "with space.txt",
  `quote'"s.txt`,
  "new\nline.txt",
  "$(touch pwned-file).txt",
  "`touch pwned-tick`.txt",
  "日本語 ü.txt",
];

Deno.test("pr: commits tracked and untracked changes with the host identity, pushes, opens the PR", async () => {
  await using w = await prWorld();
  await Deno.writeTextFile(`${w.worktree}/README`, "hello\nchanged in the sandbox\n");
  for (const f of HOSTILE_FILES) await Deno.writeTextFile(`${w.worktree}/${f}`, `content ${f}\n`);
  const d = deps(w);

  const result = await openPullRequest(d, w.record);

  assertEquals(result.name, "tachikoma-myapp-feat");
  assertEquals(result.branch, "feat");
  assertEquals(result.committed, true);
  assertEquals(result.pushed, true);
  assertEquals(result.created, true);
  assertEquals(result.url, "https://github.com/acme/myapp/pull/42");
  assertMatch(result.commit, /^[0-9a-f]{40}$/);
  assertEquals(await gitIn(w.worktree, "rev-parse", "HEAD"), result.commit);
  // origin has exactly that commit, and the branch tracks it.
  assertEquals(await remoteHead(w), result.commit);
  assertEquals(await gitIn(w.worktree, "rev-parse", "--abbrev-ref", "@{upstream}"), "origin/feat");
  // The commit: host identity, subject, body listing the files; every file in the tree.
  assertEquals(
    await gitIn(w.worktree, "log", "-1", "--format=%an <%ae>|%cn <%ce>"),
    `${HOST_NAME} <${HOST_EMAIL}>|${HOST_NAME} <${HOST_EMAIL}>`,
  );
  const message = await gitIn(w.worktree, "log", "-1", "--format=%B");
  const [subject, blank, ...body] = message.trimEnd().split("\n");
  assertEquals(subject, "chore: changes on feat");
  assertEquals(blank, "");
  assertEquals(body.length, HOSTILE_FILES.length + 1, message);
  assert(body.includes("M  README"), message);
  // git quotes unusual names (C style); non-ASCII stays readable (core.quotePath=false).
  assert(body.includes('A  "with space.txt"'), message);
  assert(body.includes('A  "new\\nline.txt"'), message);
  assert(body.includes('A  "quote\'\\"s.txt"'), message);
  assert(body.includes('A  "日本語 ü.txt"'), message);
  assertEquals(result.files, body);
  const tree = (await gitIn(w.worktree, "ls-tree", "-z", "--name-only", "HEAD")).split("\0")
    .filter((f) => f !== "");
  assertEquals(tree.sort(), ["README", ...HOSTILE_FILES].sort());
  assertEquals(await gitIn(w.worktree, "status", "--porcelain"), "");
  assertFalse(await exists(`${w.worktree}/pwned-file`));
  assertFalse(await exists(`${w.worktree}/pwned-tick`));
  // gh: checked, then asked once, in the worktree, with the safe git settings in its env.
  const calls = await w.calls();
  assertEquals(calls.map((c) => c.argv), [["--version"], ["pr", "create", "--fill"]]);
  assertEquals(calls[1].cwd, w.worktree);
  assertEquals(calls[1].gitConfigCount, String(SAFE_GIT_CONFIG.length));
  assertEquals(d.reporter.events.filter((e) => e.startsWith("done")), [
    "done committing the worktree's changes: 7 files",
    "done pushing feat to origin: 1 commit",
    "done opening the pull request: https://github.com/acme/myapp/pull/42",
  ]);
});

Deno.test("pr: --draft, --title and --base reach gh verbatim as argv", async () => {
  await using w = await prWorld();
  await Deno.writeTextFile(`${w.worktree}/a.txt`, "a\n");
  const title = `Fix "it" $(touch pwned) \`id\`; rm -rf / 'quoted' 日本`;
  await openPullRequest(deps(w), w.record, { draft: true, title, base: "main" });
  const calls = await w.calls();
  assertEquals(calls[1].argv, [
    "pr",
    "create",
    "--fill",
    "--draft",
    `--title=${title}`,
    "--base=main",
  ]);
  assertFalse(await exists(`${w.worktree}/pwned`));
});

Deno.test("pr: nothing to commit and nothing unpushed refuses, touching nothing", async () => {
  await using w = await prWorld();
  const before = await gitIn(w.worktree, "rev-parse", "HEAD");
  const error = await assertRejects(
    () => openPullRequest(deps(w), w.record),
    ConflictError,
    "nothing to commit and nothing to push on 'feat'",
  );
  assertStringIncludes(error.message, w.worktree);
  assertEquals(await gitIn(w.worktree, "rev-parse", "HEAD"), before);
  assertEquals(await remoteHead(w), null);
  assertEquals((await w.calls()).map((c) => c.argv), [["--version"]]);
});

Deno.test("pr: commits made in the sandbox are pushed without a new commit", async () => {
  await using w = await prWorld();
  await Deno.writeTextFile(`${w.worktree}/guest.txt`, "from the guest\n");
  await gitIn(w.worktree, "add", "guest.txt");
  await gitIn(
    w.worktree,
    "-c",
    "user.name=Tachikoma",
    "-c",
    "user.email=tachikoma@localhost",
    "commit",
    "-q",
    "-m",
    "guest work",
  );
  const head = await gitIn(w.worktree, "rev-parse", "HEAD");
  const result = await openPullRequest(deps(w), w.record);
  assertEquals([result.committed, result.pushed, result.created], [false, true, true]);
  assertEquals(result.files, []);
  assertEquals(result.commit, head);
  assertEquals(await remoteHead(w), head);
});

Deno.test("pr: running it again shows the open pull request; new changes go to it", async () => {
  await using w = await prWorld();
  await Deno.writeTextFile(`${w.worktree}/a.txt`, "a\n");
  await openPullRequest(deps(w), w.record);
  await w.setMode("exists");
  // Nothing new: no commit, no push, the open PR's URL.
  const again = await openPullRequest(deps(w), w.record);
  assertEquals([again.committed, again.pushed, again.created], [false, false, false]);
  assertEquals(again.url, "https://github.com/acme/myapp/pull/7");
  // New changes: committed and pushed to the existing PR.
  await Deno.writeTextFile(`${w.worktree}/b.txt`, "b\n");
  const more = await openPullRequest(deps(w), w.record);
  assertEquals([more.committed, more.pushed, more.created], [true, true, false]);
  assertEquals(more.url, "https://github.com/acme/myapp/pull/7");
  assertEquals(await remoteHead(w), more.commit);
  const argvs = (await w.calls()).map((c) => c.argv.join(" "));
  assertEquals(argvs.filter((a) => a === "pr view --json url,state").length, 2);
});

Deno.test("pr: a rejected push fails naming the step with git's output; the commit stays", async () => {
  await using w = await prWorld();
  // Someone else pushed to origin/feat meanwhile: ours is not a fast-forward.
  const other = `${w.dir}/other`;
  await gitIn(w.dir, "clone", "-q", w.remote, other);
  await gitIn(other, "checkout", "-q", "-b", "feat");
  await Deno.writeTextFile(`${other}/theirs.txt`, "theirs\n");
  await gitIn(other, "add", ".");
  await gitIn(other, "commit", "-q", "-m", "theirs");
  await gitIn(other, "push", "-q", "origin", "feat");
  const theirs = await remoteHead(w);
  await Deno.writeTextFile(`${w.worktree}/mine.txt`, "mine\n");

  const error = await assertRejects(() => openPullRequest(deps(w), w.record), RuntimeError);
  assertEquals(error.code, "git");
  assertStringIncludes(error.message, `git push failed in ${w.worktree}`);
  assertStringIncludes(error.message, "[rejected]");
  assertFalse(error.message.includes("hint:"), error.message);
  assertStringIncludes(error.hint ?? "", "nothing was undone");
  // Our commit is kept, nothing forced on origin, gh never asked to create.
  assertEquals(await gitIn(w.worktree, "log", "-1", "--format=%s"), "chore: changes on feat");
  assertEquals(await gitIn(w.worktree, "status", "--porcelain"), "");
  assertEquals(await remoteHead(w), theirs);
  assertEquals((await w.calls()).map((c) => c.argv), [["--version"]]);
});

Deno.test("pr: credentials in the remote URL never reach the error", async () => {
  await using w = await prWorld();
  // Port 9 on loopback: connection refused at once.
  await gitIn(
    w.worktree,
    "remote",
    "set-url",
    "origin",
    "https://alice:s3cret-T0ken-value@127.0.0.1:9/acme/myapp.git",
  );
  await Deno.writeTextFile(`${w.worktree}/a.txt`, "a\n");
  const error = await assertRejects(() => openPullRequest(deps(w), w.record), RuntimeError);
  assertStringIncludes(error.message, "git push failed");
  assertFalse(error.message.includes("s3cret-T0ken-value"), error.message);
  assertFalse((error.hint ?? "").includes("s3cret"), error.hint);
  assertEquals(
    scrub("fatal: https://alice:pw@host/x and ssh://u:p@h/y"),
    "fatal: https://[REDACTED]@host/x and ssh://[REDACTED]@h/y",
  );
});

Deno.test("pr: gh missing fails before anything is committed, with the install hint", async () => {
  await using w = await prWorld();
  await Deno.writeTextFile(`${w.worktree}/a.txt`, "a\n");
  const error = await assertRejects(
    () => openPullRequest(deps(w, `${w.dir}/no-such-dir/gh`), w.record),
    UnreachableError,
    "the GitHub CLI (gh) is not installed or not on PATH",
  );
  assertStringIncludes(error.hint ?? "", "https://cli.github.com");
  assertEquals(await gitIn(w.worktree, "status", "--porcelain"), "?? a.txt");
  assertEquals(await remoteHead(w), null);
});

Deno.test("pr: gh failing to create says so; the branch is pushed and the hint says what next", async () => {
  await using w = await prWorld();
  await w.setMode("fail");
  await Deno.writeTextFile(`${w.worktree}/a.txt`, "a\n");
  const error = await assertRejects(() => openPullRequest(deps(w), w.record), RuntimeError);
  assertEquals(error.code, "gh");
  assertStringIncludes(error.message, "gh pr create failed (exit 1)");
  assertStringIncludes(error.message, "Bad credentials");
  assertStringIncludes(error.hint ?? "", "is on origin");
  assertEquals(await remoteHead(w), await gitIn(w.worktree, "rev-parse", "HEAD"));
});

Deno.test("pr: hostile branch names go through argv only", async () => {
  for (
    const branch of ["feat/$(touch${IFS}pwned)'\"`touch${IFS}pwned`;x", "feat/日本-ü&|<>"]
  ) {
    await using w = await prWorld({ branch });
    await Deno.writeTextFile(`${w.worktree}/a b.txt`, "a\n");
    const result = await openPullRequest(deps(w), w.record);
    assertEquals(result.branch, branch);
    assertEquals(await remoteHead(w, branch), result.commit);
    assertEquals(
      await gitIn(w.worktree, "log", "-1", "--format=%s"),
      `chore: changes on ${branch}`,
    );
    assertFalse(await exists(`${w.worktree}/pwned`));
    assertFalse(await exists(`${w.dir}/pwned`));
  }
});

Deno.test("pr: hooks and fsmonitor planted in the shared .git never run on the host", async () => {
  await using w = await prWorld();
  const marker = `${w.dir}/ran`;
  const script = `#!/bin/sh\necho "$0" >> '${marker}'\nexit 0\n`;
  for (
    const hook of ["pre-commit", "commit-msg", "post-commit", "pre-push", "reference-transaction"]
  ) {
    await Deno.writeTextFile(`${w.root}/.git/hooks/${hook}`, script, { mode: 0o755 });
  }
  await Deno.writeTextFile(`${w.dir}/fsmonitor.sh`, script, { mode: 0o755 });
  await gitIn(w.root, "config", "core.fsmonitor", `${w.dir}/fsmonitor.sh`);
  // Sanity: plain git does run them.
  await gitIn(w.root, "status");
  assert(await exists(marker), "the planted fsmonitor should run for plain git");
  await Deno.remove(marker);

  await Deno.writeTextFile(`${w.worktree}/a.txt`, "a\n");
  const result = await openPullRequest(deps(w), w.record);
  assertEquals([result.committed, result.pushed], [true, true]);
  assertFalse(await exists(marker), await Deno.readTextFile(marker).catch(() => ""));
});

Deno.test("pr: a worktree gone, on another branch, or without origin is refused clearly", async () => {
  await using w = await prWorld();
  await gitIn(w.worktree, "checkout", "-q", "-b", "elsewhere");
  await assertRejects(
    () => openPullRequest(deps(w), w.record),
    ConflictError,
    `is on "elsewhere", not on "feat"`,
  );
  await gitIn(w.worktree, "checkout", "-q", "--detach");
  await assertRejects(() => openPullRequest(deps(w), w.record), ConflictError, "detached HEAD");
  await gitIn(w.worktree, "checkout", "-q", "feat");
  await gitIn(w.root, "remote", "remove", "origin");
  await assertRejects(
    () => openPullRequest(deps(w), w.record),
    ConflictError,
    "no 'origin' remote",
  );
  await assertRejects(
    () => openPullRequest(deps(w), { ...w.record, worktree_path: `${w.dir}/gone` }),
    NotFoundError,
    "the worktree of tachikoma-myapp-feat is gone",
  );
  assertEquals(await w.calls(), []);
});

Deno.test("pr: unresolved merge conflicts are refused before anything is staged", async () => {
  await using w = await prWorld();
  await Deno.writeTextFile(`${w.worktree}/README`, "ours\n");
  await gitIn(w.worktree, "commit", "-q", "-am", "ours");
  await gitIn(w.root, "commit", "-q", "--allow-empty", "-m", "noop");
  await Deno.writeTextFile(`${w.root}/README`, "theirs\n");
  await gitIn(w.root, "commit", "-q", "-am", "theirs");
  const merge = await new Deno.Command("git", {
    args: ["merge", "main"],
    cwd: w.worktree,
    stdout: "null",
    stderr: "null",
  }).output();
  assertEquals(merge.code, 1);
  await Deno.writeTextFile(`${w.worktree}/other.txt`, "x\n");
  await assertRejects(
    () => openPullRequest(deps(w), w.record),
    ConflictError,
    `has unresolved merge conflicts ("README")`,
  );
  assertEquals(await gitIn(w.worktree, "status", "--porcelain"), "UU README\n?? other.txt");
  assertEquals(await remoteHead(w), null);
  assertEquals(
    unmergedPaths("R  new\0old\0UU a b\0AA x\0 M y\0DD z\0?? w\0"),
    ["a b", "x", "z"],
  );
});

Deno.test("pr: the commit body lists at most MAX_BODY_FILES files", () => {
  const files = Array.from({ length: MAX_BODY_FILES + 5 }, (_, i) => `A  f${i}`);
  const lines = commitMessage("b", files).trimEnd().split("\n");
  assertEquals(lines[0], "chore: changes on b");
  assertEquals(lines.length, 2 + MAX_BODY_FILES + 1);
  assertEquals(lines.at(-1), "… and 5 more");
});
