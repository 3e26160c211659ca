import { assertEquals, assertMatch, assertThrows } from "@std/assert";
import {
  dirArgs,
  type DirShare,
  formatDirSpec,
  validateDirShare,
} from "../../../src/backends/tart/dir_spec.ts";
import { UsageError } from "../../../src/lib/errors.ts";
// The fake tart's parser implements tart's own --dir rules (tart-contract.md §7.1).
import { groupShares, parseDirSpec } from "../../fixtures/tart/dir_parse.ts";

const share = (name: string, hostPath: string, readOnly = false): DirShare => ({
  name,
  hostPath,
  readOnly,
});

Deno.test("formatDirSpec: name:path and name:path:ro", () => {
  assertEquals(formatDirSpec(share("code", "/w/t")), "code:/w/t");
  assertEquals(
    formatDirSpec(share("claude-rules", "/Users/u/.claude/rules", true)),
    "claude-rules:/Users/u/.claude/rules:ro",
  );
});

Deno.test("formatDirSpec: paths tart cannot express are refused with a clear error", () => {
  const colon = assertThrows(() => formatDirSpec(share("code", "/a/b:c")), UsageError);
  assertMatch(colon.message, /"\/a\/b:c".*contains ':'/);
  assertThrows(() => formatDirSpec(share("code", "relative/dir")), UsageError, "must be absolute");
  assertThrows(() => formatDirSpec(share("code", "~/x")), UsageError, "must be absolute");
  assertThrows(() => formatDirSpec(share("code", "/a/b,ro")), UsageError, "options");
  assertThrows(() => formatDirSpec(share("code", "/a/x,tag=y")), UsageError, "options");
  assertThrows(() => formatDirSpec(share("code", "/a\nb")), UsageError, "control character");
  assertThrows(() => formatDirSpec(share("co:de", "/a")), UsageError, "share name");
  assertThrows(() => formatDirSpec(share("", "/a")), UsageError, "share name");
  assertThrows(() => formatDirSpec(share("a,ro", "/a")), UsageError, "share name");
});

Deno.test("formatDirSpec: read-only shares may have ',ro' in the path (options are the last field)", () => {
  validateDirShare(share("x", "/a/b,ro", true));
  const parsed = parseDirSpec(formatDirSpec(share("x", "/a/b,ro", true)), "/cwd", "/home/u");
  assertEquals(parsed, {
    name: "x",
    path: "/a/b,ro",
    readOnly: true,
    tag: "com.apple.virtio-fs.automount",
    url: false,
  });
});

Deno.test("dirArgs round-trips through tart's parser: names, paths, ro, one tag", () => {
  const shares = [
    share("code", "/Users/me/wt/my repo ü 'quoted' $(x) `y`"),
    share("dotgit", "/Users/me/repo/.git"),
    share("claude-rules", "/Users/me/.claude/rules", true),
    share("claude-memory", "/p/with,comma", false),
  ];
  const args = dirArgs(shares);
  assertEquals(args.filter((a) => a === "--dir").length, 4);
  const parsed = args.filter((_, i) => i % 2 === 1).map((v) => parseDirSpec(v, "/cwd", "/h"));
  assertEquals(
    parsed.map((p) => [p.name, p.path, p.readOnly]),
    shares.map((s) => [s.name, s.hostPath, s.readOnly]),
  );
  const groups = groupShares(parsed);
  assertEquals([...groups.keys()], ["com.apple.virtio-fs.automount"]);
  assertEquals(groups.get("com.apple.virtio-fs.automount")!.length, 4);
});

Deno.test("the misparse the validation prevents: tart reads /a/b:c as name '/a/b', path 'c'", () => {
  const p = parseDirSpec("/a/b:c", "/cwd", "/h");
  assertEquals([p.name, p.path], ["/a/b", "/cwd/c"]);
  const rw = parseDirSpec("/a:rw", "/cwd", "/h");
  assertEquals([rw.name, rw.path, rw.readOnly], ["/a", "/cwd/rw", false]);
});

Deno.test("dirArgs: duplicate names are refused (tart would keep the last one)", () => {
  assertThrows(() => dirArgs([share("a", "/x"), share("a", "/y")]), UsageError, "two shares");
  assertEquals(dirArgs([]), []);
});
