import { assertEquals, assertThrows } from "@std/assert";
import {
  applyBlock,
  binaryToBytes,
  bytesToBinary,
  findBlocks,
  MarkedBlockError,
  readBlock,
  utf8ToBinary,
} from "../../../src/ssh/marked_block.ts";

const M = { begin: "# BEGIN x", end: "# END x" };
const top = { markers: M, placement: "top" as const, label: "f" };
const bottom = { markers: M, placement: "bottom" as const, label: "f" };

Deno.test("top insertion uses the file's CRLF and removal restores the exact bytes", () => {
  const original = "Host a\r\n  User b"; // CRLF, no final newline
  const added = applyBlock(original, ["one", "two"], top);
  assertEquals(added, "# BEGIN x\r\none\r\ntwo\r\n# END x\r\nHost a\r\n  User b");
  assertEquals(applyBlock(added, null, top), original);
  assertEquals(applyBlock("", ["a"], top), "# BEGIN x\na\n# END x\n");
  assertEquals(applyBlock("x", null, top), "x", "no block: removal changes nothing");
});

Deno.test("bytes that are not UTF-8 survive untouched", () => {
  const raw = new Uint8Array([0x48, 0xff, 0xfe, 0x0a, 0xe9, 0x0a]);
  const text = bytesToBinary(raw);
  const out = applyBlock(text, [utf8ToBinary("ü")], bottom);
  const back = binaryToBytes(out);
  assertEquals(back.subarray(0, raw.length), raw);
  assertEquals(new TextDecoder().decode(back.subarray(raw.length)), "# BEGIN x\nü\n# END x\n");
  assertEquals(binaryToBytes(applyBlock(out, null, bottom)), raw);
});

Deno.test("an existing block is replaced in place; duplicates dropped; trimmed markers match", () => {
  const text = "a\n  # BEGIN x \r\nold\n# END x\nb\n# BEGIN x\ndup\n# END x\nc";
  assertEquals(applyBlock(text, ["new"], top), "a\n# BEGIN x\nnew\n# END x\nb\nc");
  // END at EOF without newline stays without one.
  assertEquals(applyBlock("a\n# BEGIN x\nold\n# END x", ["n"], top), "a\n# BEGIN x\nn\n# END x");
  assertEquals(readBlock(text, M, "f"), ["old"]);
  assertEquals(readBlock("nothing", M, "f"), null);
});

Deno.test("bottom placement adds a line break only when the text lacks one", () => {
  assertEquals(applyBlock("x", ["v"], bottom), "x\n# BEGIN x\nv\n# END x\n");
  assertEquals(applyBlock("x\n", ["v"], bottom), "x\n# BEGIN x\nv\n# END x\n");
});

Deno.test("broken markers fail with the file and line, and nothing is rewritten", () => {
  const e = assertThrows(() => findBlocks("a\n# BEGIN x\nb", M, "~/.ssh/config"), MarkedBlockError);
  assertEquals(e.message, "~/.ssh/config: line 2: '# BEGIN x' has no matching '# END x'");
  assertThrows(
    () => applyBlock("# END x\n", ["v"], top),
    MarkedBlockError,
    "line 1: '# END x' without",
  );
  assertThrows(
    () => applyBlock("# BEGIN x\n# BEGIN x\n# END x\n", ["v"], top),
    MarkedBlockError,
    "line 2: '# BEGIN x' inside the block opened on line 1",
  );
});
