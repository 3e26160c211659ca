/**
 * `make compile` either builds (release machines) or, where deno cannot download its runtime,
 * fails with exactly one line saying so.
 */
import { assert, assertEquals } from "@std/assert";

const ROOT = new URL("../../../", import.meta.url).pathname;

Deno.test("compile builds the binary or names the missing runtime download in one line", async () => {
  const out = await new Deno.Command("bash", {
    args: [`${ROOT}scripts/compile.sh`, Deno.execPath(), "x86_64-unknown-linux-gnu"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr).trim();
  if (out.success) {
    const bin = `${ROOT}dist/tachikoma-x86_64-unknown-linux-gnu`;
    const v = await new Deno.Command(bin, { args: ["--version"], stdout: "piped" }).output();
    assert(v.success);
    assert(/^\d+\.\d+\.\d+ \([0-9a-f]+/.test(new TextDecoder().decode(v.stdout)));
    const sums = await Deno.readTextFile(`${ROOT}dist/SHA256SUMS`);
    assert(sums.includes("tachikoma-x86_64-unknown-linux-gnu"));
  } else {
    const lines = stderr.split("\n");
    assertEquals(lines.length, 1, stderr);
    assert(/could not download the Deno runtime \(denort\)/.test(lines[0]), stderr);
  }
  // build_info.json is a build artefact, never left behind.
  await Deno.stat(`${ROOT}src/build_info.json`).then(
    () => assert(false, "src/build_info.json left behind"),
    () => {},
  );
});
