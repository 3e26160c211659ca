import { assertEquals } from "@std/assert";
import { confirm, type PromptIo, readLine } from "../../../src/lib/prompt.ts";

/** A terminal double: answers come in the given chunks; what is written is kept. */
function io(chunks: string[]): PromptIo & { written: string } {
  const encoder = new TextEncoder();
  const state = {
    written: "",
    write(text: string) {
      state.written += text;
      return Promise.resolve();
    },
    read(buffer: Uint8Array) {
      const next = chunks.shift();
      if (next === undefined) return Promise.resolve(null);
      const bytes = encoder.encode(next);
      buffer.set(bytes);
      return Promise.resolve(bytes.length);
    },
  };
  return state;
}

Deno.test("prompt: one line, across reads and multi-byte characters; CRLF; end of input", async () => {
  const t = io(["fea", "t/ü", "\r\n", "ignored\n"]);
  assertEquals(await readLine("Name: ", t), "feat/ü");
  assertEquals(t.written, "Name: ");
  assertEquals(await readLine("? ", io([])), null);
  assertEquals(await readLine("? ", io(["partial"])), "partial");
  assertEquals(await readLine("? ", io(["\n"])), "");
});

Deno.test("prompt: confirm is yes only for y/yes", async () => {
  for (const [answer, expected] of [["y\n", true], ["YES\n", true], [" yes \n", true]] as const) {
    assertEquals(await confirm("? ", io([answer])), expected, answer);
  }
  for (const answer of ["\n", "n\n", "yep\n", "no\n"]) {
    assertEquals(await confirm("? ", io([answer])), false, answer);
  }
  assertEquals(await confirm("? ", io([])), false);
});
