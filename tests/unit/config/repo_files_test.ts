/**
 * Where repo config is read from: the main checkout only, found without trusting anything a
 * guest can write (its worktree, its `.git` file, the shared `.git` directory). Hostile layouts
 * are built the way a guest could leave them.
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { repoConfigPlace } from "../../../src/config/repo_files.ts";
import { git, load, makeWorld, type World } from "./helpers.ts";

/** A repo with one commit and a linked worktree `repo-feat` on branch `feat`. */
function withWorktree(w: World): string {
  w.write("repo/README", "x\n");
  git(w.repo, "add", "README");
  git(w.repo, "commit", "-q", "-m", "init");
  const wt = `${w.root}/repo-feat`;
  git(w.repo, "worktree", "add", "-q", "-b", "feat", wt);
  return wt;
}

/** Writes a state file recording `worktree` as a sandbox worktree of `repoRoot`. */
function recordSandbox(w: World, worktree: string, repoRoot?: string): string {
  const state = `${w.configDir}/state.json`;
  w.write(
    state,
    JSON.stringify({
      version: 2,
      vms: [{
        name: "tachikoma-repo-feat",
        repo: "repo",
        branch: "feat",
        worktree_path: worktree,
        ...(repoRoot ? { repo_root: repoRoot } : {}),
        created_at: "2026-01-01T00:00:00Z",
        last_used: "2026-01-01T00:00:00Z",
        status: "running",
        ip: null,
      }],
    }),
  );
  return state;
}

Deno.test("repo files: main checkout, subdirectory, plain linked worktree (its .git file's shape)", () => {
  const w = makeWorld();
  try {
    const wt = withWorktree(w);
    const stateFile = `${w.configDir}/state.json`;
    const main = repoConfigPlace(`${w.repo}`, { stateFile });
    assertEquals([main.root, main.via, main.worktree], [w.repo, "checkout", null]);
    Deno.mkdirSync(`${wt}/deep/er`, { recursive: true });
    const linked = repoConfigPlace(`${wt}/deep/er`, { stateFile });
    assertEquals([linked.root, linked.via, linked.worktree, linked.problem], [
      w.repo,
      "git_file",
      wt,
      null,
    ]);
    assertEquals(repoConfigPlace(w.home, { stateFile }).root, null);
  } finally {
    w.cleanup();
  }
});

Deno.test("repo files: a sandbox worktree's main checkout comes from the state file, whatever the guest wrote", async () => {
  const w = makeWorld();
  try {
    const wt = withWorktree(w);
    const stateFile = recordSandbox(w, wt, w.repo);
    w.write("repo/.tachikoma.toml", "vm_cpus = 2\n");
    // The guest planted a fake main checkout inside the worktree, pointed the worktree's .git
    // file at it and added a nested repository with its own config.
    w.write("repo-feat/fake/.git/worktrees/x/gitdir", `${wt}/.git\n`);
    w.write("repo-feat/fake/.git/worktrees/x/commondir", "../..\n");
    w.write("repo-feat/fake/.tachikoma.toml", "vm_cpus = 9\n");
    w.write("repo-feat/.git", `gitdir: ${wt}/fake/.git/worktrees/x\n`);
    w.write("repo-feat/sub/.git/HEAD", "ref: refs/heads/main\n");
    w.write("repo-feat/sub/.tachikoma.toml", "vm_cpus = 7\n");
    for (const cwd of [wt, `${wt}/sub`, `${wt}/fake`]) {
      const place = repoConfigPlace(cwd, { stateFile });
      assertEquals([place.root, place.via, place.worktree], [w.repo, "state", wt], cwd);
      assertEquals((await load(w, {}, { cwd })).config.vm_cpus, 2, cwd);
    }
  } finally {
    w.cleanup();
  }
});

Deno.test("repo files: an unmanaged worktree's .git redirected into itself or into a .git is refused", async () => {
  const w = makeWorld();
  try {
    const wt = withWorktree(w);
    const stateFile = `${w.configDir}/state.json`;
    w.write("repo/.tachikoma.toml", "vm_cpus = 2\n");
    // A fake main checkout inside the worktree, with a consistent back-pointer.
    w.write("repo-feat/fake/.git/worktrees/x/gitdir", `${wt}/.git\n`);
    w.write("repo-feat/fake/.tachikoma.toml", "vm_cpus = 9\n");
    w.write("repo-feat/.git", `gitdir: ${wt}/fake/.git/worktrees/x\n`);
    let place = repoConfigPlace(wt, { stateFile });
    assertEquals(place.root, null);
    assertStringIncludes(place.problem!, "is not a main checkout");
    const loaded = await load(w, {}, { cwd: wt });
    assertEquals(loaded.config.vm_cpus, 4, "neither the fake nor anything else is read");
    assertEquals(loaded.files.repo, null);
    assertEquals(loaded.logged.filter((l) => l.startsWith("warning:")).length, 1);
    assertStringIncludes(loaded.logged.join("\n"), "no repo config file is read");

    // A "main checkout" inside the shared .git directory.
    w.write("repo/.git/worktrees/feat/evil/.git/worktrees/y/gitdir", `${wt}/.git\n`);
    w.write("repo/.git/worktrees/feat/evil/.tachikoma.toml", "vm_cpus = 9\n");
    w.write("repo-feat/.git", `gitdir: ${w.repo}/.git/worktrees/feat/evil/.git/worktrees/y\n`);
    place = repoConfigPlace(wt, { stateFile });
    assertEquals(place.root, null);
    assertStringIncludes(place.problem!, "is not a main checkout");

    // A .git file that names no git directory.
    w.write("repo-feat/.git", "pwned\n");
    assertStringIncludes(repoConfigPlace(wt, { stateFile }).problem!, "names no git directory");

    // Not a worktree's shape (a submodule's or a separate git dir's): a guest-written directory
    // tachikoma does not know as a sandbox worktree looks like any checkout. The trust gate
    // still holds: its gated keys need the user to trust that file.
    w.write("repo-feat/.git", `gitdir: ${w.root}/elsewhere\n`);
    w.write("repo-feat/.tachikoma.toml", 'vm_cpus = 9\ncredential_command = "touch /tmp/x"\n');
    assertEquals(repoConfigPlace(wt, { stateFile }).root, wt);
    const own = await load(w, {}, { cwd: wt });
    assertEquals(own.config.vm_cpus, 9);
    assertEquals(own.config.credential_command, undefined);
    assertEquals(own.ignored.map((i) => i.key), ["credential_command"]);
  } finally {
    w.cleanup();
  }
});

Deno.test("repo files: a worktree redirected to another repository fails the back-pointer check", () => {
  const w = makeWorld();
  try {
    const wt = withWorktree(w);
    const other = `${w.root}/other`;
    Deno.mkdirSync(other);
    git(other, "init", "-q", "-b", "main");
    w.write("other/README", "y\n");
    git(other, "add", "README");
    git(other, "commit", "-q", "-m", "init");
    git(other, "worktree", "add", "-q", "-b", "o", `${w.root}/other-o`);
    // The guest cannot write other/.git, so the back-pointer there names other-o, not wt.
    w.write("repo-feat/.git", `gitdir: ${other}/.git/worktrees/other-o\n`);
    const place = repoConfigPlace(wt, { stateFile: `${w.configDir}/state.json` });
    assertEquals(place.root, null);
    assertStringIncludes(place.problem!, "does not point back at");
  } finally {
    w.cleanup();
  }
});

Deno.test("repo files: relative gitdir paths and the .bare layout; a bare repository has no repo config", () => {
  const w = makeWorld({ git: false });
  try {
    const stateFile = `${w.configDir}/state.json`;
    // worktree.useRelativePaths: both pointers relative.
    Deno.mkdirSync(`${w.root}/main/.git/refs`, { recursive: true });
    w.write("main/.git/worktrees/wt/gitdir", "../../../../wt/.git\n");
    w.write("wt/.git", "gitdir: ../main/.git/worktrees/wt\n");
    assertEquals(repoConfigPlace(`${w.root}/wt`, { stateFile }).root, `${w.root}/main`);

    w.write("proj/.bare/worktrees/main/gitdir", `${w.root}/proj/main/.git\n`);
    w.write("proj/main/.git", `gitdir: ${w.root}/proj/.bare/worktrees/main\n`);
    assertEquals(repoConfigPlace(`${w.root}/proj/main`, { stateFile }).root, `${w.root}/proj`);

    w.write("bare.git/worktrees/b/gitdir", `${w.root}/b/.git\n`);
    w.write("b/.git", `gitdir: ${w.root}/bare.git/worktrees/b\n`);
    const bare = repoConfigPlace(`${w.root}/b`, { stateFile });
    assertEquals(bare.root, null);
  } finally {
    w.cleanup();
  }
});

Deno.test("repo files: a state record without repo_root (tachikoma 0.2) falls back to the checked .git file", () => {
  const w = makeWorld();
  try {
    const wt = withWorktree(w);
    const stateFile = recordSandbox(w, wt);
    const place = repoConfigPlace(wt, { stateFile });
    assertEquals([place.root, place.via], [w.repo, "git_file"]);
    // A nested .git inside such a worktree is not taken for a main checkout.
    w.write("repo-feat/sub/.git/HEAD", "ref: refs/heads/main\n");
    const nested = repoConfigPlace(`${wt}/sub`, { stateFile });
    assertEquals(nested.root, null);
    assertStringIncludes(nested.problem!, "has no repo_root");
  } finally {
    w.cleanup();
  }
});
