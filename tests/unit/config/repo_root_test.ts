import { assertEquals } from "@std/assert";
import { findRepo } from "../../../src/config/repo_root.ts";
import { resolvePath } from "../../../src/lib/paths.ts";
import { git, makeWorld } from "./helpers.ts";

Deno.test("repo root: found from the top and from a nested directory; null outside", () => {
  const w = makeWorld();
  try {
    Deno.mkdirSync(`${w.repo}/a/b/c`, { recursive: true });
    for (const cwd of [w.repo, `${w.repo}/a/b/c`]) {
      const r = findRepo(cwd);
      assertEquals(r?.root, w.repo);
      assertEquals(r?.mainRoot, w.repo);
      assertEquals(r?.linkedWorktree, false);
      assertEquals(r?.gitDir, `${w.repo}/.git`);
    }
    assertEquals(findRepo(w.home), null);
  } finally {
    w.cleanup();
  }
});

Deno.test("repo root: a symlinked cwd resolves to the real checkout", () => {
  const w = makeWorld();
  try {
    Deno.symlinkSync(w.repo, `${w.root}/link`);
    assertEquals(findRepo(`${w.root}/link`)?.root, w.repo);
  } finally {
    w.cleanup();
  }
});

Deno.test("repo root: a real linked worktree is its own root; mainRoot is the main checkout", () => {
  const w = makeWorld();
  try {
    w.write("repo/README", "x\n");
    git(w.repo, "add", "README");
    git(w.repo, "commit", "-q", "-m", "init");
    const wt = `${w.root}/repo-feature-x`;
    git(w.repo, "worktree", "add", "-q", "-b", "feature/x", wt);
    Deno.mkdirSync(`${wt}/sub`);
    const r = findRepo(`${wt}/sub`);
    assertEquals(r?.root, wt);
    assertEquals(r?.mainRoot, w.repo);
    assertEquals(r?.linkedWorktree, true);
    assertEquals(r?.gitDir, `${w.repo}/.git/worktrees/repo-feature-x`);
    assertEquals(r?.commonDir, `${w.repo}/.git`);
    // Same answer as git itself.
    assertEquals(git(`${wt}/sub`, "rev-parse", "--show-toplevel"), r?.root);
    assertEquals(
      git(`${wt}/sub`, "rev-parse", "--path-format=absolute", "--git-common-dir"),
      r?.commonDir,
    );
  } finally {
    w.cleanup();
  }
});

Deno.test("repo root: relative gitdir, submodule-style gitdir, .bare layout", () => {
  const w = makeWorld({ git: false });
  try {
    // Linked worktree with relative paths (git worktree.useRelativePaths).
    w.write("main/.git/worktrees/wt/commondir", "../..\n");
    w.write("wt/.git", "gitdir: ../main/.git/worktrees/wt\n");
    const r = findRepo(`${w.root}/wt`);
    assertEquals(r?.root, `${w.root}/wt`);
    assertEquals(r?.mainRoot, `${w.root}/main`);

    // Submodule: gitdir without commondir is its own repository.
    w.write("super/.git/modules/lib/HEAD", "ref: refs/heads/main\n");
    w.write("super/lib/.git", `gitdir: ${w.root}/super/.git/modules/lib\n`);
    const s = findRepo(`${w.root}/super/lib`);
    assertEquals(s?.root, `${w.root}/super/lib`);
    assertEquals(s?.mainRoot, `${w.root}/super/lib`);
    assertEquals(s?.linkedWorktree, false);

    // A bare repo in <dir>/.bare with worktrees beside it.
    w.write("proj/.bare/worktrees/main/commondir", "../..\n");
    w.write("proj/main/.git", `gitdir: ${w.root}/proj/.bare/worktrees/main\n`);
    assertEquals(findRepo(`${w.root}/proj/main`)?.mainRoot, `${w.root}/proj`);

    // A garbage .git file still marks the top of a checkout.
    w.write("odd/.git", "not a gitdir line\n");
    assertEquals(findRepo(`${w.root}/odd`)?.root, `${w.root}/odd`);
  } finally {
    w.cleanup();
  }
});

Deno.test("resolvePath normalises . and ..", () => {
  assertEquals(resolvePath("/a/b", "../c/./d"), "/a/c/d");
  assertEquals(resolvePath("/a/b", "/x/../y"), "/y");
  assertEquals(resolvePath("/", ".."), "/");
});
