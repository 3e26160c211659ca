/**
 * The README's quick start through a real pseudo-terminal: `tachikoma` (bare) in the main
 * checkout, driven by util-linux `script` (which gives the CLI a PTY on stdin, stdout and
 * stderr). The test answers the branch prompt like a user, then types into the sandbox's shell
 * (the memory engine's echo shell ends with `exit N`).
 *
 * @module
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { CLI_MAIN, cliWorld } from "./helpers.ts";
import { gitIn } from "../core/helpers.ts";
import { quoteArgv } from "../../../src/lib/shell.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const hasScript = new Deno.Command("script", { args: ["--version"], stdout: "null" })
  .output().then((o) => o.success, () => false);

/** Runs `tachikoma <args>` on a PTY; `answers` are typed one by one, each once `waitFor` shows. */
async function onPty(
  w: Awaited<ReturnType<typeof cliWorld>>,
  args: string[],
  steps: { waitFor: string; type: string }[],
): Promise<{ code: number; output: string }> {
  const command = quoteArgv([Deno.execPath(), "run", "-A", "--frozen", CLI_MAIN, ...args]);
  const child = new Deno.Command("script", {
    args: ["-q", "-e", "-f", "-c", command, "/dev/null"],
    cwd: w.repo,
    clearEnv: true,
    env: { ...w.env, TERM: "dumb" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  let output = "";
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      output += decoder.decode(chunk, { stream: true });
      while (steps.length > 0 && output.includes(steps[0].waitFor)) {
        await writer.write(new TextEncoder().encode(steps.shift()!.type));
      }
    }
  })();
  const deadline = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const status = await child.status;
  clearTimeout(deadline);
  await reading;
  await writer.close().catch(() => {});
  await child.stderr.cancel();
  assertEquals(steps, [], `unanswered prompts; output:\n${output}`);
  return { code: status.code, output };
}

Deno.test({
  name:
    "quick start on a PTY: bare `tachikoma` in the main checkout asks for a branch, then opens the sandbox's shell",
  ...opts,
  ignore: !(await hasScript),
  async fn() {
    await using w = await cliWorld();
    const run = await onPty(w, [], [
      { waitFor: "New branch name [work-1]: ", type: "bad name\n" },
      { waitFor: "not a valid branch name", type: "feat/pty\n" },
      { waitFor: "ready at", type: "exit 7\n" },
    ]);
    assertEquals(run.code, 7, run.output);
    assertStringIncludes(run.output, "'main' is checked out in the main checkout");
    assertStringIncludes(run.output, `"bad name" is not a valid branch name`);
    assertStringIncludes(run.output, "Created tachikoma-myapp-feat-pty, ready at 127.0.0.1");
    const worktree = `${w.dir}/myapp-feat-pty`;
    assertEquals(await gitIn(worktree, "branch", "--show-current"), "feat/pty");
    assertEquals(await gitIn(w.repo, "branch", "--show-current"), "main");
    const state = await w.state();
    assertEquals(state.vms.map((v) => v.branch), ["feat/pty"]);
  },
});

Deno.test({
  name: "quick start on a PTY: --json never prompts and keeps the error and its hint",
  ...opts,
  ignore: !(await hasScript),
  async fn() {
    await using w = await cliWorld();
    const run = await onPty(w, ["--json"], []);
    assertEquals(run.code, 1, run.output);
    assert(!run.output.includes("New branch name"), run.output);
    assertStringIncludes(run.output, "checked out in the main checkout");
    assertStringIncludes(run.output, "tachikoma spawn <new-branch>");
    assertEquals((await w.state().catch(() => ({ vms: [] }))).vms, []);
  },
});

Deno.test({
  name: "quick start without a terminal: the error and hint as before, no prompt",
  ...opts,
  async fn() {
    await using w = await cliWorld();
    const run = await w.run([], { stdin: "feat/x\n" });
    assertEquals(run.code, 1);
    assert(!run.stderr.includes("New branch name"), run.stderr);
    assertStringIncludes(run.stderr, "checked out in the main checkout");
    assertStringIncludes(run.stderr, "tachikoma spawn <new-branch>");
  },
});
