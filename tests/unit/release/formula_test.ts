import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { parseSums, renderFormula } from "../../../scripts/formula.ts";

const SUMS = [
  "aarch64-apple-darwin",
  "x86_64-apple-darwin",
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
].map((t, i) => `${String(i).repeat(64)}  tachikoma-${t}`).join("\n");

Deno.test("formula has a url and sha256 per platform, completions and a version test", async () => {
  const text = renderFormula("1.2.3", parseSums(SUMS), "https://example.invalid/dl");
  assertStringIncludes(
    text,
    'url "https://example.invalid/dl/v1.2.3/tachikoma-aarch64-apple-darwin"',
  );
  assertStringIncludes(text, `sha256 "${"0".repeat(64)}"`);
  assertStringIncludes(text, `sha256 "${"3".repeat(64)}"`);
  assertStringIncludes(
    text,
    'generate_completions_from_executable(bin/"tachikoma", "completions")',
  );
  assertStringIncludes(text, 'shell_output("#{bin}/tachikoma --version")');
  const hasRuby = await new Deno.Command("sh", { args: ["-c", "command -v ruby"], stdout: "null" })
    .output().then((o) => o.success);
  if (hasRuby) {
    const file = await Deno.makeTempFile({ suffix: ".rb" });
    await Deno.writeTextFile(file, text);
    const out = await new Deno.Command("ruby", {
      args: ["-c", file],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    assertEquals(out.success, true, new TextDecoder().decode(out.stderr));
    await Deno.remove(file);
  } else {
    console.error("formula_test: ruby not installed, `ruby -c` skipped");
  }
});

Deno.test("formula refuses a missing platform sum and a bad version", () => {
  assertThrows(() => renderFormula("1.2.3", new Map(), "x"), Error, "no SHA-256 for");
  assertThrows(() => renderFormula("v1", parseSums(SUMS), "x"), Error, "VERSION must look like");
});
