/**
 * The guest is hostile to `pull`: its bundle names refs outside the branch (refs/heads/main, a
 * tag, refs/remotes/…, a ref named like a shell command), is not a bundle at all, lacks the
 * branch, is too big; its answers are junk or huge; its repository's config and hooks try to
 * run things. Every time: the host's other refs are unchanged, the branch moves only by the
 * fast-forward tachikoma decides, and nothing ran on the host (no marker file appears).
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { gitIn } from "./helpers.ts";
import { type DiskGuest, gitHarness, guestGit } from "./disk_guest.ts";
import { pullSandbox } from "../../../src/core/code_sync.ts";
import type { ExecRequest, ExecResult } from "../../../src/backends/backend.ts";
import type { SandboxRecord } from "../../../src/state/schema.ts";

const BRANCH = "feat/hostile";
const SHELL_REF = "refs/heads/x$(touch${IFS}PWNED);y`id`";

/** Every ref of the host repo but the branch and tachikoma's private refs. */
async function otherRefs(root: string): Promise<string> {
  const all = await gitIn(root, "for-each-ref", "--format=%(refname) %(objectname)");
  return all.split("\n").filter((l) =>
    !l.startsWith(`refs/heads/${BRANCH} `) && !l.startsWith("refs/tachikoma/")
  ).join("\n");
}

function isTakeOut(request: ExecRequest): boolean {
  return request.argv[4]?.includes("bundle create") ?? false;
}

/** A marker script: touches `<dir>/<name>` unless it runs inside the guest's root. */
async function marker(dir: string, guestRoot: string, name: string): Promise<string> {
  const path = `${dir}/${name}.sh`;
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\ncase "$PWD" in ${guestRoot}*) exit 0 ;; esac\ntouch '${dir}/ran-${name}'\n`,
  );
  await Deno.chmod(path, 0o755);
  return path;
}

interface World {
  guest: DiskGuest;
  record: SandboxRecord;
  root: string;
  worktree: string;
  markers: string;
  refs: string;
  deps: Parameters<typeof pullSandbox>[0];
  dispose: () => Promise<void>;
}

/** A spawned code-by-git sandbox whose repository plants hooks and config everywhere. */
async function hostileWorld(): Promise<World> {
  const { h, guest, service } = await gitHarness();
  const spawned = await service.spawn({ branch: BRANCH });
  const markers = `${h.repo.dir}/markers`;
  await Deno.mkdir(markers);
  const hooks = `${h.repo.dir}/guest-hooks`;
  await Deno.mkdir(hooks);
  for (const hook of ["post-merge", "post-checkout", "reference-transaction", "pre-commit"]) {
    await Deno.copyFile(await marker(markers, guest.root, hook), `${hooks}/${hook}`);
    await Deno.copyFile(`${hooks}/${hook}`, `${guest.codeDir}/.git/hooks/${hook}`);
    // Hooks in the host repo too: host git runs none of them.
    await Deno.copyFile(`${hooks}/${hook}`, `${h.repo.root}/.git/hooks/${hook}`);
  }
  const fsmonitor = await marker(markers, guest.root, "fsmonitor");
  await guestGit(guest, "config", "core.hooksPath", hooks);
  await guestGit(guest, "config", "core.fsmonitor", fsmonitor);
  await guestGit(guest, "config", "uploadpack.packObjectsHook", fsmonitor);
  return {
    guest,
    record: spawned.record,
    root: h.repo.root,
    worktree: spawned.worktree.path,
    markers,
    refs: await otherRefs(h.repo.root),
    deps: service.deps,
    dispose: async () => await h[Symbol.asyncDispose](),
  };
}

async function assertNothingRan(w: World): Promise<void> {
  const ran = [];
  for await (const e of Deno.readDir(w.markers)) if (e.name.startsWith("ran-")) ran.push(e.name);
  assertEquals(ran, [], "nothing ran on the host");
  assertEquals(await otherRefs(w.root), w.refs, "the host's other refs are unchanged");
  const pwned = await Array.fromAsync(Deno.readDir(w.worktree)).then((l) =>
    l.filter((e) => e.name.includes("PWNED"))
  );
  assertEquals(pwned, []);
}

async function guestCommit(guest: DiskGuest, file: string): Promise<string> {
  await Deno.writeTextFile(`${guest.codeDir}/${file}`, `${file}\n`);
  await guestGit(guest, "add", file);
  await guestGit(guest, "-c", "core.hooksPath=/dev/null", "commit", "-q", "-m", file);
  return await guestGit(guest, "rev-parse", "HEAD");
}

/** Replaces the bundle the guest made with `make(path)`'s. */
function swapBundle(guest: DiskGuest, make: (path: string) => Promise<void>): void {
  guest.tamper = async (request, result, map) => {
    if (isTakeOut(request)) await make(map(request.argv[6]));
    return result;
  };
}

Deno.test("hostile bundle: refs outside the branch are never written; the branch fast-forwards", async () => {
  const w = await hostileWorld();
  try {
    const legit = await guestCommit(w.guest, "legit.txt");
    // main, a tag, a remote-tracking ref and a ref named like a command, all in the bundle.
    await guestGit(w.guest, "checkout", "-q", "-b", "side");
    await guestCommit(w.guest, "evil.txt");
    await guestGit(w.guest, "update-ref", "refs/heads/main", "HEAD");
    await guestGit(w.guest, "tag", "evil");
    await guestGit(w.guest, "update-ref", "refs/remotes/origin/main", "HEAD");
    await guestGit(w.guest, "update-ref", SHELL_REF, "HEAD");
    await guestGit(w.guest, "checkout", "-q", BRANCH);
    swapBundle(w.guest, async (path) => {
      await Deno.remove(path).catch(() => {});
      await guestGit(
        w.guest,
        "bundle",
        "create",
        "-q",
        path,
        `refs/heads/${BRANCH}`,
        "refs/heads/main",
        "refs/tags/evil",
        "refs/remotes/origin/main",
        SHELL_REF,
      );
    });
    const result = await pullSandbox(w.deps, w.record);
    assertEquals([result.action, result.to], ["fast_forward", legit]);
    assertEquals(await gitIn(w.worktree, "rev-parse", "HEAD"), legit);
    await assertNothingRan(w);
    assertEquals(await gitIn(w.root, "tag", "--list"), "");
  } finally {
    await w.dispose();
  }
});

Deno.test("hostile bundle: not a bundle, no branch, too big → refused, nothing changed", async () => {
  const w = await hostileWorld();
  try {
    const before = await gitIn(w.worktree, "rev-parse", "HEAD");
    await guestCommit(w.guest, "new.txt");
    // Not a bundle (a script).
    swapBundle(w.guest, (path) => Deno.writeTextFile(path, "#!/bin/sh\ntouch PWNED\n"));
    let error = await assertRejects(() => pullSandbox(w.deps, w.record));
    assertStringIncludes((error as Error).message, "does not verify");
    // A bundle without the branch.
    swapBundle(w.guest, async (path) => {
      await Deno.remove(path).catch(() => {});
      await guestGit(w.guest, "bundle", "create", "-q", path, "HEAD~1:README", "HEAD");
    });
    error = await assertRejects(() => pullSandbox(w.deps, w.record));
    assertStringIncludes((error as Error).message, `has no branch '${BRANCH}'`);
    // Too big.
    w.guest.tamper = null;
    error = await assertRejects(() => pullSandbox(w.deps, w.record, { maxBytes: 64 }));
    assertStringIncludes((error as Error).message, "over the 64-byte limit");
    assertEquals(await gitIn(w.worktree, "rev-parse", "HEAD"), before);
    assertEquals(
      await gitIn(w.root, "for-each-ref", "refs/tachikoma/"),
      "",
      "no private ref from a refused bundle",
    );
    await assertNothingRan(w);
  } finally {
    await w.dispose();
  }
});

Deno.test("hostile answers: huge, junk or lying output is refused; status does not record it", async () => {
  const w = await hostileWorld();
  try {
    const before = await gitIn(w.worktree, "rev-parse", "HEAD");
    await guestCommit(w.guest, "x.txt");
    const huge = new TextEncoder().encode("A".repeat(8 * 1024 * 1024));
    const answers: Uint8Array[] = [
      huge,
      new TextEncoder().encode("bundle $(touch PWNED) 12\n\ntachikoma-output-end 0\n"),
      new TextEncoder().encode("same ../../etc/passwd\n\ntachikoma-output-end 0\n"),
    ];
    for (const stdout of answers) {
      w.guest.tamper = (request: ExecRequest, result: ExecResult) =>
        isTakeOut(request) ? { ...result, stdout } : result;
      const error = await assertRejects(() => pullSandbox(w.deps, w.record));
      assertStringIncludes((error as Error).message, "output lost");
      assert((error as Error).message.length < 400, "the error does not carry the output");
    }
    // status: a junk answer is a warning, not a record.
    const recorded = (await w.deps.store.get(w.record.name))?.code_sync;
    w.guest.tamper = (request: ExecRequest, result: ExecResult) =>
      request.argv[4]?.includes("rev-list --left-right")
        ? { ...result, stdout: new TextEncoder().encode("head zzz 1\t2\n") }
        : result;
    const { SandboxService } = await import("../../../src/core/sandbox_service.ts");
    const service = new SandboxService(w.deps, w.root);
    const status = await service.status(w.record.name);
    assert(status.warnings.some((m) => m.includes("where its branch stands")), status.warnings[0]);
    assertEquals((await w.deps.store.get(w.record.name))?.code_sync, recorded);
    assertEquals(await gitIn(w.worktree, "rev-parse", "HEAD"), before);
    await assertNothingRan(w);
  } finally {
    await w.dispose();
  }
});
