/**
 * Naming: tachikoma's slug rules, collision handling, worktree dir names, hashing.
 */
import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { RuntimeError } from "../../../src/lib/errors.ts";
import {
  branchSlug,
  detachedBranchName,
  type NamedRecord,
  resolveSandboxName,
  sandboxBaseName,
  sha256Hex,
  shortHash,
  slugify,
  worktreeDirName,
} from "../../../src/lib/naming.ts";

const SLUG = /^[a-z0-9]+(-[a-z0-9]+)*$/;

async function webSha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function rec(name: string, branch: string, extra: Partial<NamedRecord> = {}): NamedRecord {
  return { name, repo: "myapp", branch, ...extra };
}

Deno.test("tachikoma's tested examples", () => {
  assertEquals(sandboxBaseName("myapp", "main"), "tachikoma-myapp-main");
  assertEquals(
    sandboxBaseName("myapp", "feature/auth-system"),
    "tachikoma-myapp-feature-auth-system",
  );
  assertEquals(sandboxBaseName("myapp", "feat/ABC_123!"), "tachikoma-myapp-feat-abc-123");
  assertEquals(sandboxBaseName("myapp", ""), "tachikoma-myapp");
  const long = sandboxBaseName("myapp", "a".repeat(100));
  assert(long.length <= 63);
  assert(!long.endsWith("-"));
  assertEquals(long, "tachikoma-myapp-" + "a".repeat(63 - "tachikoma-myapp-".length));
});

Deno.test("slugify: the rules step by step", () => {
  assertEquals(slugify("Hello World"), "hello-world");
  assertEquals(slugify("--a__b..c//d  e--"), "a-b-c-d-e");
  assertEquals(slugify("My.Repo_v2"), "my-repo-v2");
  assertEquals(slugify(""), "");
  assertEquals(slugify("///"), "");
  // The repo part is slugified too.
  assertEquals(sandboxBaseName("My App", "main"), "tachikoma-my-app-main");
  // The cut is at max bytes, then trailing '-' trimmed.
  assertEquals(slugify("abcde-fgh", 6), "abcde");
  assertEquals(slugify("abcdef-gh", 6), "abcdef");
  assertEquals(slugify("ab", 0), "");
  const cut = slugify("x".repeat(62) + "-yyy");
  assertEquals(cut, "x".repeat(62));
});

Deno.test("slugify: unicode (lowercased first, then everything non-ASCII is '-')", () => {
  assertEquals(slugify("Café"), "caf");
  assertEquals(slugify("ÜBER-straße"), "ber-stra-e");
  assertEquals(slugify("日本語"), "");
  assertEquals(slugify("feat/🚀-launch"), "feat-launch");
  assertEquals(slugify("Ωmega"), "mega");
  // Unicode lowercasing can produce ASCII: KELVIN SIGN → 'k', 'İ' → 'i' + U+0307.
  assertEquals(slugify("\u212Aelvin"), "kelvin");
  assertEquals(slugify("\u0130stanbul"), "i-stanbul");
  assertEquals(sandboxBaseName("myapp", "日本語"), "tachikoma-myapp");
  // Non-ASCII never counts against bytes: the result is ASCII.
  const mixed = slugify("é".repeat(50) + "a".repeat(100));
  assertEquals(mixed, "a".repeat(63));
});

Deno.test("slugify: hostile branch names give plain slugs", () => {
  const cases: [string, string][] = [
    ["feat/$(touch /tmp/pwned)-'q\"x", "tachikoma-myapp-feat-touch-tmp-pwned-q-x"],
    ["a\nb\r\nc", "tachikoma-myapp-a-b-c"],
    ["`id`;rm -rf /", "tachikoma-myapp-id-rm-rf"],
    ["$HOME ${PATH}", "tachikoma-myapp-home-path"],
    ["x\0y\ttab", "tachikoma-myapp-x-y-tab"],
    ["../../etc/passwd", "tachikoma-myapp-etc-passwd"],
  ];
  for (const [branch, want] of cases) {
    const name = sandboxBaseName("myapp", branch);
    assertEquals(name, want);
    assert(SLUG.test(name), name);
    const slug = branchSlug(branch);
    assert(slug === "" || SLUG.test(slug), slug);
  }
});

Deno.test("branchSlug", () => {
  assertEquals(branchSlug("feature/Auth_System"), "feature-auth-system");
  assertEquals(branchSlug("b".repeat(80)), "b".repeat(63));
  assertEquals(branchSlug("日本"), "");
});

Deno.test("sha256Hex matches Web Crypto (block boundaries, unicode)", async () => {
  const inputs = [
    "",
    "abc",
    "a".repeat(55),
    "a".repeat(56),
    "a".repeat(63),
    "a".repeat(64),
    "a".repeat(65),
    "a".repeat(1000),
    "/home/me/src/myapp\0feat/x",
    "日本語 🚀 café",
  ];
  for (const text of inputs) assertEquals(sha256Hex(text), await webSha256(text), text);
  assertEquals(
    sha256Hex("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assertEquals(shortHash("abc"), "ba7816");
  assertEquals(shortHash("abc", 10), "ba7816bf8f");
});

Deno.test("resolveSandboxName: no records → the base name", () => {
  assertEquals(
    resolveSandboxName({ repo: "myapp", repoRoot: "/src/myapp", branch: "main", records: [] }),
    "tachikoma-myapp-main",
  );
});

Deno.test("resolveSandboxName: feat/x, feat-x and Feat_X get distinct stable names", async () => {
  const repoRoot = "/home/me/src/myapp";
  const records: NamedRecord[] = [];
  const spawn = (branch: string) => {
    const name = resolveSandboxName({ repo: "myapp", repoRoot, branch, records });
    if (!records.some((r) => r.name === name)) {
      records.push(rec(name, branch, { repo_root: repoRoot }));
    }
    return name;
  };
  const a = spawn("feat/x");
  const b = spawn("feat-x");
  const c = spawn("Feat_X");
  assertEquals(a, "tachikoma-myapp-feat-x");
  assertEquals(b, `tachikoma-myapp-feat-x-${(await webSha256(`${repoRoot}\0feat-x`)).slice(0, 6)}`);
  assertEquals(c, `tachikoma-myapp-feat-x-${(await webSha256(`${repoRoot}\0Feat_X`)).slice(0, 6)}`);
  assertEquals(new Set([a, b, c]).size, 3);
  // The same branch always gets the same name back — in any order.
  assertEquals(spawn("Feat_X"), c);
  assertEquals(spawn("feat/x"), a);
  assertEquals(spawn("feat-x"), b);
  for (const n of [a, b, c]) assert(SLUG.test(n) && n.length <= 63, n);
  // The suffix is stable: a fresh resolution with only the first record gives the same b.
  assertEquals(
    resolveSandboxName({ repo: "myapp", repoRoot, branch: "feat-x", records: [records[0]] }),
    b,
  );
});

Deno.test("resolveSandboxName: an existing record's name is kept (no renames)", () => {
  // A record whose name is not the current base (e.g. created with a hash suffix or by an
  // older naming rule) is still found by repo + branch.
  const records = [rec("tachikoma-myapp-feat-x-abcdef", "feat-x", { repo_root: "/r/myapp" })];
  assertEquals(
    resolveSandboxName({ repo: "myapp", repoRoot: "/r/myapp", branch: "feat-x", records }),
    "tachikoma-myapp-feat-x-abcdef",
  );
  // tachikoma v1 records have no repo_root: matched by repo dir name + branch.
  const v1 = [rec("tachikoma-myapp-main", "main")];
  assertEquals(
    resolveSandboxName({ repo: "myapp", repoRoot: "/r/myapp", branch: "main", records: v1 }),
    "tachikoma-myapp-main",
  );
});

Deno.test("resolveSandboxName: same dir name, different repo roots → distinct", async () => {
  const records = [rec("tachikoma-app-main", "main", { repo: "app", repo_root: "/work/app" })];
  const other = resolveSandboxName({ repo: "app", repoRoot: "/oss/app", branch: "main", records });
  assertEquals(other, `tachikoma-app-main-${(await webSha256("/oss/app\0main")).slice(0, 6)}`);
  assertEquals(
    resolveSandboxName({ repo: "app", repoRoot: "/work/app", branch: "main", records }),
    "tachikoma-app-main",
  );
});

Deno.test("resolveSandboxName: branches cut to the same 63 chars get distinct names ≤ 63", () => {
  const repoRoot = "/src/myapp";
  const prefix = "feature/" + "very-long-branch-name-".repeat(4);
  const b1 = prefix + "one";
  const b2 = prefix + "two";
  assertEquals(sandboxBaseName("myapp", b1), sandboxBaseName("myapp", b2));
  const n1 = resolveSandboxName({ repo: "myapp", repoRoot, branch: b1, records: [] });
  const records = [rec(n1, b1, { repo_root: repoRoot })];
  const n2 = resolveSandboxName({ repo: "myapp", repoRoot, branch: b2, records });
  assertNotEquals(n1, n2);
  assert(n1.length >= 60 && n1.length <= 63 && SLUG.test(n1), n1);
  assert(n2.length <= 63 && SLUG.test(n2), n2);
  assertEquals(n2.slice(-7), `-${shortHash(`${repoRoot}\0${b2}`)}`);
  assert(n2.startsWith(n1.slice(0, 50)));
  // A cut ending on '-' is trimmed before the suffix (no '--').
  const dashy = "x".repeat(40) + "-" + "y".repeat(30);
  const r1 = resolveSandboxName({ repo: "myapp", repoRoot, branch: dashy, records: [] });
  const r2 = resolveSandboxName({
    repo: "myapp",
    repoRoot,
    branch: dashy + "z",
    records: [rec(r1, dashy, { repo_root: repoRoot })],
  });
  assert(SLUG.test(r2) && r2.length <= 63, r2);
});

Deno.test("resolveSandboxName: hash suffix taken too → a longer hash; `taken` is honoured", () => {
  const repoRoot = "/src/myapp";
  const h = sha256Hex(`${repoRoot}\0feat-x`);
  const records = [
    rec("tachikoma-myapp-feat-x", "feat/x"),
    rec(`tachikoma-myapp-feat-x-${h.slice(0, 6)}`, "something-else"),
  ];
  assertEquals(
    resolveSandboxName({ repo: "myapp", repoRoot, branch: "feat-x", records }),
    `tachikoma-myapp-feat-x-${h.slice(0, 8)}`,
  );
  // A VM that exists outside the state file (reported by `taken`) is not reused either.
  const name = resolveSandboxName({
    repo: "myapp",
    repoRoot,
    branch: "main",
    records: [],
    taken: (n) => n === "tachikoma-myapp-main",
  });
  assertEquals(name, `tachikoma-myapp-main-${shortHash(`${repoRoot}\0main`)}`);
});

Deno.test("resolveSandboxName: hostile branches resolve to plain slugs", () => {
  const records: NamedRecord[] = [];
  for (const branch of ["feat/$(touch /tmp/pwned)-'q\"x", "feat/`touch /tmp/pwned`-q-x", "a\nb"]) {
    const name = resolveSandboxName({ repo: "myapp", repoRoot: "/r", branch, records });
    assert(SLUG.test(name) && name.length <= 63, name);
    assert(!records.some((r) => r.name === name));
    records.push(rec(name, branch, { repo_root: "/r" }));
  }
});

Deno.test("detachedBranchName: the short commit id", () => {
  assertEquals(detachedBranchName("1a2B3c4\n"), "1a2b3c4");
  assertEquals(
    resolveSandboxName({ repo: "myapp", branch: detachedBranchName("deadbee"), records: [] }),
    "tachikoma-myapp-deadbee",
  );
  for (const bad of ["", "HEAD", "xyz1234", "12", "$(id)"]) {
    assertThrows(() => detachedBranchName(bad), RuntimeError, "not a commit id");
  }
});

Deno.test("worktreeDirName: one path component, same collision handling", async () => {
  assertEquals(worktreeDirName("myapp", "main"), "myapp-main");
  assertEquals(worktreeDirName("myapp", "feature/x"), "myapp-feature-x");
  assertEquals(worktreeDirName("My.App", "Feat/ABC_1"), "My.App-feat-abc-1");
  assertEquals(
    worktreeDirName("myapp", "日本語"),
    `myapp-${(await webSha256("日本語")).slice(0, 8)}`,
  );
  for (const branch of ["feat/$(touch /tmp/pwned)-'q\"x", "a\nb", "../../x", "`id`"]) {
    const dir = worktreeDirName("myapp", branch);
    assert(/^myapp-[a-z0-9-]+$/.test(dir), dir);
  }
  // Collision: the caller says which names belong to a different worktree.
  const owned = new Set(["myapp-feat-x"]);
  const dir = worktreeDirName("myapp", "feat-x", {
    repoRoot: "/src/myapp",
    taken: (d) => owned.has(d),
  });
  assertEquals(dir, `myapp-feat-x-${shortHash("/src/myapp\0feat-x")}`);
  owned.add(dir);
  assertEquals(
    worktreeDirName("myapp", "feat-x", { repoRoot: "/src/myapp", taken: (d) => owned.has(d) }),
    `myapp-feat-x-${shortHash("/src/myapp\0feat-x", 8)}`,
  );
  // Never longer than a path component may be.
  const huge = worktreeDirName("r".repeat(300), "b".repeat(100), { taken: () => false });
  assert(new TextEncoder().encode(huge).length <= 255);
  assert(huge.endsWith("-" + "b".repeat(63)));
  const hugeUnicode = worktreeDirName("é".repeat(200), "main", {
    taken: (d) => d.endsWith("main"),
  });
  assert(new TextEncoder().encode(hugeUnicode).length <= 255);
  assert(!hugeUnicode.includes("\uFFFD"));
});
