import { assert, assertStringIncludes } from "@std/assert";
import { runCli } from "./helpers.ts";

async function syntaxCheck(shell: string, file: string): Promise<{ ok: boolean; err: string }> {
  const out = await new Deno.Command(shell, { args: ["-n", file], stderr: "piped" }).output();
  return { ok: out.success, err: new TextDecoder().decode(out.stderr) };
}

function has(cmd: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

for (const shell of ["bash", "zsh", "fish"] as const) {
  Deno.test({
    name: `completions ${shell}: valid syntax, has subcommands, aliases and flags`,
    ignore: !has(shell),
    async fn() {
      const r = await runCli(["completions", shell]);
      assert(r.code === 0, r.stderr);
      const file = await Deno.makeTempFile({ suffix: `.${shell}` });
      await Deno.writeTextFile(file, r.stdout);
      const check = await syntaxCheck(shell, file);
      assert(check.ok, `${shell} -n failed: ${check.err}`);
      const flag = (f: string) => shell === "fish" ? `-l ${f}` : `--${f}`;
      for (const word of ["checkpoint", "destroy", "delete", flag("worktree"), flag("json")]) {
        assertStringIncludes(r.stdout, word);
      }
      await Deno.remove(file);
    },
  });
}

Deno.test({
  name: "bash completion completes subcommands, nested subcommands and flags",
  ignore: !has("bash"),
  async fn() {
    const r = await runCli(["completions", "bash"]);
    const file = await Deno.makeTempFile({ suffix: ".bash" });
    await Deno.writeTextFile(file, r.stdout);
    const script = `source ${file}
COMP_WORDS=(tachikoma chec); COMP_CWORD=1; _tachikoma_complete; echo "1:\${COMPREPLY[*]}"
COMP_WORDS=(tachikoma cp ""); COMP_CWORD=2; _tachikoma_complete; echo "2:\${COMPREPLY[*]}"
COMP_WORDS=(tachikoma delete --w); COMP_CWORD=2; _tachikoma_complete; echo "3:\${COMPREPLY[*]}"
COMP_WORDS=(tachikoma list --js); COMP_CWORD=2; _tachikoma_complete; echo "4:\${COMPREPLY[*]}"`;
    const out = new TextDecoder().decode(
      (await new Deno.Command("bash", { args: ["-c", script], stdout: "piped" }).output()).stdout,
    );
    assertStringIncludes(out, "1:checkpoint");
    assertStringIncludes(out, "2:create list restore delete");
    assertStringIncludes(out, "3:--worktree");
    assertStringIncludes(out, "4:--json");
    await Deno.remove(file);
  },
});

Deno.test({
  name: "fish completion completes nested subcommands",
  ignore: !has("fish"),
  async fn() {
    const r = await runCli(["completions", "fish"]);
    const file = await Deno.makeTempFile({ suffix: ".fish" });
    await Deno.writeTextFile(file, r.stdout);
    const out = new TextDecoder().decode(
      (await new Deno.Command("fish", {
        args: ["-c", `source ${file}; complete -C "tachikoma checkpoint "`],
        stdout: "piped",
      }).output()).stdout,
    );
    assertStringIncludes(out, "restore");
    await Deno.remove(file);
  },
});
