/**
 * `claude_flags` reach Claude wherever it is started from a shell that reads `~/.profile`: the
 * profile step writes the wrapper and puts it first on PATH (real shells in a temp guest home,
 * a fake `claude` that prints the arguments it got). Hostile flags arrive byte-exact and run
 * nothing; removing the flags removes the wrapper and the PATH entry.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { createProvisioner } from "../../../src/provision/mod.ts";
import { claudeWrapper, wrapperPath } from "../../../src/provision/claude_flags.ts";
import { Logger } from "../../../src/lib/log.ts";
import type { Config } from "../../../src/config/schema.ts";
import { localSandbox, pwnedPath, testConfig, testContext } from "./helpers.ts";

const dec = new TextDecoder();

/** A fake Claude at `path`: prints each argument followed by NUL. */
async function fakeClaude(path: string, tag = "real"): Promise<void> {
  await Deno.mkdir(path.replace(/\/[^/]+$/, ""), { recursive: true });
  await Deno.writeTextFile(path, `#!/bin/sh\nprintf '%s\\0' ${tag} "$@"\n`, { mode: 0o755 });
}

/** Runs `script` in `sh` after sourcing the guest's .profile (as a login shell would). */
async function inLoginShell(
  home: string,
  script: string,
  path = "/usr/bin:/bin",
): Promise<{ code: number; args: string[]; stderr: string }> {
  const out = await new Deno.Command("sh", {
    args: ["-c", `. "$HOME/.profile" >/dev/null 2>&1; ${script}`],
    cwd: home,
    env: { HOME: home, PATH: path },
    clearEnv: true,
  }).output();
  const text = dec.decode(out.stdout);
  return {
    code: out.code,
    args: text === "" ? [] : text.replace(/\0$/, "").split("\0"),
    stderr: dec.decode(out.stderr),
  };
}

async function provisionProfile(sb: Awaited<ReturnType<typeof localSandbox>>, config: Config) {
  const p = createProvisioner({
    home: sb.dir,
    env: () => undefined,
    logger: new Logger({ level: "error", sink: () => {} }),
    proxyEnv: () => ({}),
  });
  await p.run(testContext(sb, config), {
    after: null,
    only: ["profile"],
    onStepDone: () => Promise.resolve(),
  });
}

Deno.test("claude_flags: hostile flags reach claude byte-exact from a login shell; nothing runs", async () => {
  const sb = await localSandbox();
  try {
    const pwned = pwnedPath();
    const flags = [
      "--model",
      `it's "q"`,
      `$(touch ${pwned})`,
      `\`touch ${pwned}\``,
      "new\nline",
      "ünï 🙂 $HOME *",
      "",
      "--",
      "-",
    ];
    await provisionProfile(sb, testConfig({ claude_flags: flags, credential_proxy: true }));
    await fakeClaude(`${sb.home}/.local/bin/claude`);
    const wrapper = wrapperPath(sb.home);
    assertEquals((await Deno.stat(wrapper)).mode! & 0o777, 0o755);

    const r = await inLoginShell(sb.home, `claude "user arg" '$(x)'`);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.args, ["real", ...flags, "user arg", "$(x)"]);
    // Programs started from that shell see it too (PATH, not a shell function).
    const child = await inLoginShell(sb.home, `sh -c 'claude child'`);
    assertEquals(child.args, ["real", ...flags, "child"]);
    // ~/.profile read twice (nested login shells): one PATH entry.
    const twice = await inLoginShell(sb.home, `. "$HOME/.profile" >/dev/null 2>&1; echo "$PATH"`);
    assertEquals(twice.args[0].split(":").filter((d) => d.includes("tachikoma")).length, 1);
    assertEquals(await Deno.stat(pwned).catch(() => null), null, "a flag was executed");

    // Claude installed elsewhere on PATH (not ~/.local/bin): found, the wrapper not re-entered.
    await Deno.remove(`${sb.home}/.local/bin/claude`);
    await fakeClaude(`${sb.dir}/opt/bin/claude`, "opt");
    const elsewhere = await inLoginShell(sb.home, "claude x", `${sb.dir}/opt/bin:/usr/bin:/bin`);
    assertEquals(elsewhere.args, ["opt", ...flags, "x"]);
    // No Claude at all: a clear error, exit 127.
    const none = await inLoginShell(sb.home, "claude x");
    assertEquals(none.code, 127);
    assertStringIncludes(none.stderr, "Claude Code is not installed");

    // Flags removed: wrapper and PATH entry gone, `claude` is the real one again.
    await fakeClaude(`${sb.home}/.local/bin/claude`);
    await provisionProfile(sb, testConfig({ claude_flags: [], credential_proxy: true }));
    assertEquals(await Deno.stat(wrapper).catch(() => null), null);
    const profile = await Deno.readTextFile(`${sb.home}/.profile`);
    assert(!profile.includes("tachikoma/bin"), profile);
    const plain = await inLoginShell(sb.home, `PATH="$HOME/.local/bin:$PATH"; claude y`);
    assertEquals(plain.args, ["real", "y"]);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("claude_flags: the wrapper quotes through quoteArgv and passes the caller's arguments", () => {
  const text = claudeWrapper("/home/o'brien", ["a b", "it's"]);
  assertStringIncludes(text, `self='/home/o'\\''brien/.local/share/tachikoma/bin/claude'`);
  assertStringIncludes(text, `exec "$real" 'a b' 'it'\\''s' "$@"`);
  assertStringIncludes(claudeWrapper("/h", []), `exec "$real" "$@"`);
});
