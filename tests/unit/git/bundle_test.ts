/**
 * The pure parts of host bundle handling: `list-heads` parsing keeps only `<id> <ref>` lines,
 * and the private ref of any sandbox name is a valid ref name under `refs/tachikoma/pull/`.
 */
import { assert, assertEquals } from "@std/assert";
import { firstLines, parseHeads, privateRef } from "../../../src/git/bundle.ts";

const A = "a".repeat(40);

Deno.test("parseHeads keeps `<id> <ref>` lines only", () => {
  const text = [
    `${A} refs/heads/feat/x`,
    "junk",
    `${"b".repeat(64)} refs/tags/v1`,
    `${A.slice(1)} refs/heads/short-id`,
    `${A}refs/heads/no-space`,
    "",
  ].join("\n");
  assertEquals(parseHeads(text), [
    { id: A, ref: "refs/heads/feat/x" },
    { id: "b".repeat(64), ref: "refs/tags/v1" },
  ]);
});

Deno.test("privateRef: a valid ref name under refs/tachikoma/pull/ for any sandbox name", async () => {
  const names = ["tachikoma-myapp-feat-x", "a/../b", "x$(id)`y`", "ü ñ", "-lead", "a".repeat(300)];
  const seen = new Set<string>();
  for (const name of names) {
    const ref = privateRef(name);
    assert(ref.startsWith("refs/tachikoma/pull/"), ref);
    assert(!seen.has(ref), `distinct: ${ref}`);
    seen.add(ref);
    const out = await new Deno.Command("git", { args: ["check-ref-format", ref] }).output();
    assert(out.success, `git accepts ${ref}`);
  }
  assertEquals(privateRef("tachikoma-myapp-feat-x"), "refs/tachikoma/pull/tachikoma-myapp-feat-x");
});

Deno.test("firstLines: three lines at most, control characters masked, capped", () => {
  assertEquals(firstLines("a\n\nb\nc\nd"), "a / b / c");
  assertEquals(firstLines("x\u001b[31my\u0007"), "x?[31my?");
  assertEquals(firstLines("z".repeat(10_000)).length, 300);
});
