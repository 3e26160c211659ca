/**
 * The token store (one 0600 file per sandbox in 0700 directories, hostile names kept inside,
 * concurrent creation agrees, revocation) and the proxy's registry over it (lookups follow
 * creation, revocation and replacement at once; malformed values never match).
 */
import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { FakeClock } from "../../testing/fake_clock.ts";
import { redact } from "../../../src/lib/redact.ts";
import { TokenRegistry } from "../../../src/proxy/token_registry.ts";
import {
  constantTimeEqual,
  ensureToken,
  hasToken,
  isTokenShape,
  newToken,
  readToken,
  revokeToken,
  sandboxOfFileName,
  tokenFileName,
  tokenPath,
  tokensDir,
} from "../../../src/proxy/tokens.ts";

const HOSTILE = [
  "../escape",
  "../../etc/passwd",
  "a/b",
  ".",
  "..",
  ".hidden",
  "-dash",
  "~tilde",
  "tk-$(touch /tmp/pwned)",
  "tk-`id`",
  "tk-'quote'\"",
  "tk-new\nline",
  "tk space",
  "tk-ünïcødé-🐙",
  "a\0b",
];

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tk-tokens-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await allFiles(p));
    else out.push(p);
  }
  return out.sort();
}

Deno.test("tokens: 32 random bytes, base64url; stored 0600 in 0700 directories; redacted", async () => {
  await withDir(async (dir) => {
    const token = await ensureToken(dir, "tachikoma-repo-main");
    assert(isTokenShape(token));
    assertEquals(token.length, 43);
    assertEquals(new Set(Array.from({ length: 50 }, newToken)).size, 50);
    assertEquals((await Deno.stat(`${dir}/proxy`)).mode! & 0o777, 0o700);
    assertEquals((await Deno.stat(tokensDir(dir))).mode! & 0o777, 0o700);
    const path = tokenPath(dir, "tachikoma-repo-main");
    assertEquals(path, `${dir}/proxy/tokens/tachikoma-repo-main`);
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
    assertEquals((await Deno.readTextFile(path)).trim(), token);
    assertEquals(await ensureToken(dir, "tachikoma-repo-main"), token, "not replaced");
    assertEquals(await readToken(dir, "tachikoma-repo-main"), token);
    assertEquals(redact(`token=${token}`), "token=[REDACTED]");
    // Nothing else was left behind (no temporary files).
    assertEquals(await allFiles(dir), [path]);
  });
});

Deno.test("tokens: a directory made too open is tightened; a symlinked one is refused", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/proxy/tokens`, { recursive: true, mode: 0o755 });
    await Deno.chmod(`${dir}/proxy/tokens`, 0o755);
    await ensureToken(dir, "tk-a");
    assertEquals((await Deno.stat(tokensDir(dir))).mode! & 0o777, 0o700);
  });
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/elsewhere`);
    await Deno.mkdir(`${dir}/proxy`, { mode: 0o700 });
    await Deno.symlink(`${dir}/elsewhere`, `${dir}/proxy/tokens`);
    await assertRejects(() => ensureToken(dir, "tk-a"), Error, "not a directory");
    assertEquals(await allFiles(`${dir}/elsewhere`), []);
  });
});

Deno.test("tokens: concurrent creators of one sandbox's token all get the same one", async () => {
  await withDir(async (dir) => {
    const tokens = await Promise.all(Array.from({ length: 20 }, () => ensureToken(dir, "tk-a")));
    assertEquals(new Set(tokens).size, 1);
    assertEquals(await readToken(dir, "tk-a"), tokens[0]);
    assertEquals(await allFiles(tokensDir(dir)), [tokenPath(dir, "tk-a")]);
  });
});

Deno.test("tokens: revoke removes it; a new one differs; each sandbox has its own", async () => {
  await withDir(async (dir) => {
    const a = await ensureToken(dir, "tk-a");
    const b = await ensureToken(dir, "tk-b");
    assertNotEquals(a, b);
    assert(await revokeToken(dir, "tk-a"));
    assertEquals(await hasToken(dir, "tk-a"), false);
    assertEquals(await revokeToken(dir, "tk-a"), false, "revoking twice is fine");
    assertEquals(await readToken(dir, "tk-b"), b);
    const again = await ensureToken(dir, "tk-a");
    assertNotEquals(again, a);
  });
});

Deno.test("tokens: hostile sandbox names cannot leave the directory and map back exactly", async () => {
  await withDir(async (dir) => {
    const made = new Map<string, string>();
    for (const name of HOSTILE) {
      const file = tokenFileName(name);
      assert(!file.includes("/") && file !== "." && file !== ".." && !file.startsWith("."), file);
      assertEquals(sandboxOfFileName(file), name, JSON.stringify(name));
      made.set(name, await ensureToken(dir, name));
    }
    // Everything is a direct child of the tokens directory, and nothing else was written.
    const files = await allFiles(dir);
    assertEquals(files.length, HOSTILE.length);
    for (const f of files) assertEquals(f.slice(0, f.lastIndexOf("/")), tokensDir(dir));
    for (const [name, token] of made) assertEquals(await readToken(dir, name), token);
    assertEquals(new Set(made.values()).size, HOSTILE.length);
    // Plain names stay readable on disk.
    assertEquals(tokenFileName("tachikoma-repo-feat-x"), "tachikoma-repo-feat-x");
    assertEquals(sandboxOfFileName(".tmp-123"), null);
    assertEquals(sandboxOfFileName("~!!"), null);
  });
});

Deno.test("tokens: constant-time comparison is still a comparison", () => {
  const t = newToken();
  assert(constantTimeEqual(t, t));
  assert(!constantTimeEqual(t, t.slice(0, 42) + (t[42] === "A" ? "B" : "A")));
  assert(!constantTimeEqual(t, t.slice(0, 42)));
  assert(!constantTimeEqual("", t));
});

Deno.test("token registry: new tokens are found, revoked and replaced ones refused, at once", async () => {
  await withDir(async (dir) => {
    const registry = new TokenRegistry(dir, { clock: new FakeClock() });
    assertEquals(await registry.lookup(newToken()), null, "no directory yet");
    const a = await ensureToken(dir, "tk-a");
    assertEquals(await registry.lookup(a), "tk-a");
    const b = await ensureToken(dir, "tk-b");
    assertEquals(await registry.lookup(b), "tk-b");
    assertEquals(await registry.lookup(a), "tk-a");
    await revokeToken(dir, "tk-a");
    assertEquals(await registry.lookup(a), null);
    // Replaced behind the registry's back (same file name, new content): old refused.
    await Deno.writeTextFile(tokenPath(dir, "tk-b"), newToken() + "\n");
    assertEquals(await registry.lookup(b), null);
    const hostile = await ensureToken(dir, "../tk-c\n$(x)");
    assertEquals(await registry.lookup(hostile), "../tk-c\n$(x)");
    for (const bad of ["", "x", a + "x", ` ${hostile}`, hostile.toLowerCase() + "!"]) {
      assertEquals(await registry.lookup(bad), null, JSON.stringify(bad));
    }
    // Stray files are not tokens.
    await Deno.writeTextFile(`${tokensDir(dir)}/.tmp-stray`, newToken());
    await Deno.writeTextFile(`${tokensDir(dir)}/tk-junk`, "not a token\n");
    assertEquals(
      await registry.lookup(await Deno.readTextFile(`${tokensDir(dir)}/.tmp-stray`)),
      null,
    );
  });
});
