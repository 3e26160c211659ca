import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import {
  branchNameProblem,
  type BranchPrompt,
  MAX_ATTEMPTS,
  offerNewBranch,
  suggestBranch,
} from "../../../src/core/quick_start.ts";
import { spawnSandbox } from "../../../src/core/spawn.ts";
import { ConflictError, UsageError } from "../../../src/lib/errors.ts";
import { defaultRunner } from "../../../src/lib/process.ts";
import { gitIn, harness } from "./helpers.ts";

/** A prompt answering from a script, recording what it was shown. */
class ScriptedPrompt implements BranchPrompt {
  readonly asked: { message: string; suggestion: string }[] = [];
  readonly refused: string[] = [];
  constructor(private readonly answers: (string | null)[]) {}
  ask(question: { message: string; suggestion: string }): Promise<string | null> {
    this.asked.push(question);
    return Promise.resolve(this.answers.length ? this.answers.shift()! : null);
  }
  refuse(reason: string): Promise<void> {
    this.refused.push(reason);
    return Promise.resolve();
  }
}

const HOSTILE = [
  "-rf",
  "--help",
  "a b",
  "a..b",
  "x~1",
  "x^",
  "x:y",
  "x?",
  "x*",
  "x[",
  "a\\b",
  "@{-1}",
  "x@{u}",
  "end.lock",
  "trailing/",
  "/leading",
  ".hidden",
  "a\nb",
  "tab\there",
  "@",
  "HEAD~",
  "HEAD",
];

Deno.test("quick start: the main checkout's branch → the user picks a new branch, spawn makes its worktree", async () => {
  await using h = await harness();
  const prompt = new ScriptedPrompt(["feat/quick"]);
  const choice = await offerNewBranch(h.deps, { cwd: h.repo.root, prompt });
  assertEquals(choice, { branch: "feat/quick", instead: "main" });
  assertEquals(prompt.asked.length, 1);
  assertEquals(prompt.asked[0].suggestion, "work-1");
  assertStringIncludes(prompt.asked[0].message, "'main' is checked out in the main checkout");

  const result = await spawnSandbox(h.deps, { cwd: h.repo.root, branch: choice!.branch });
  assertEquals(result.action, "created");
  assertEquals(result.worktree.branchCreated, true);
  assertEquals(await gitIn(result.worktree.path, "branch", "--show-current"), "feat/quick");
  assertEquals(await gitIn(h.repo.root, "branch", "--show-current"), "main", "main untouched");
  assertEquals((await h.backend.peek(result.name))?.state, "running");
});

Deno.test("quick start: an empty answer takes the suggestion, which skips taken names", async () => {
  await using h = await harness();
  await gitIn(h.repo.root, "branch", "work-1");
  await gitIn(h.repo.root, "branch", "work-2");
  const prompt = new ScriptedPrompt([""]);
  const choice = await offerNewBranch(h.deps, { cwd: h.repo.root, prompt });
  assertEquals(choice?.branch, "work-3");
  assertEquals(suggestBranch(new Set()), "work-1");
});

Deno.test("quick start: hostile names are refused with a reason, then a good one is taken", async () => {
  await using h = await harness();
  const prompt = new ScriptedPrompt(["-rf", "a b", "$(touch pwned)", "main", "x$(id)`id`'q'ü"]);
  const choice = await offerNewBranch(h.deps, { cwd: h.repo.root, prompt });
  // Shell syntax without spaces makes a valid git branch name: git decides, nothing runs it.
  assertEquals(choice?.branch, "x$(id)`id`'q'ü");
  assertEquals(prompt.refused.length, 4);
  assertStringIncludes(prompt.refused[0], `"-rf" is not a valid branch name`);
  assertStringIncludes(prompt.refused[1], `"a b" is not a valid branch name`);
  // Only the first question carries the explanation.
  assertStringIncludes(prompt.refused[3], "main checkout's branch");
  assertEquals(prompt.asked[1].message, "");
  await assertRejects(() => Deno.stat(`${h.repo.root}/pwned`), Deno.errors.NotFound);

  const result = await spawnSandbox(h.deps, { cwd: h.repo.root, branch: choice!.branch });
  assertEquals(await gitIn(result.worktree.path, "branch", "--show-current"), "x$(id)`id`'q'ü");
  for (const dir of [h.repo.root, h.repo.dir, result.worktree.path]) {
    await assertRejects(() => Deno.stat(`${dir}/pwned`), Deno.errors.NotFound);
  }
});

Deno.test("quick start: every hostile name gets one clear reason; git's rules decide", async () => {
  await using h = await harness();
  const repo = { mainRoot: h.repo.root, branch: "main" };
  for (const name of HOSTILE) {
    const problem = await branchNameProblem(defaultRunner, repo, name);
    if (problem === null) throw new Error(`${JSON.stringify(name)} was accepted`);
    assert(!problem.includes("\n"), `one line: ${problem}`);
  }
  assertStringIncludes((await branchNameProblem(defaultRunner, repo, "main"))!, "main checkout");
  assertEquals(await branchNameProblem(defaultRunner, repo, "feat/ünïcode-✓"), null);
  assertEquals(await branchNameProblem(defaultRunner, repo, "it's`x`"), null);
});

Deno.test("quick start: nothing is offered without a prompt, in a linked worktree, or on a detached HEAD", async () => {
  await using h = await harness();
  const prompt = new ScriptedPrompt(["x"]);
  assertEquals(await offerNewBranch(h.deps, { cwd: h.repo.root, prompt: null }), null);
  // Without an offer, spawn refuses the main checkout's branch as before.
  const refused = await assertRejects(
    () => spawnSandbox(h.deps, { cwd: h.repo.root }),
    ConflictError,
  );
  assertStringIncludes(refused.message, "checked out in the main checkout");
  assertStringIncludes(refused.hint ?? "", "tachikoma spawn <new-branch>");

  await gitIn(h.repo.root, "worktree", "add", "-q", "-b", "side", `${h.repo.dir}/side`);
  assertEquals(await offerNewBranch(h.deps, { cwd: `${h.repo.dir}/side`, prompt }), null);
  await gitIn(h.repo.root, "switch", "-q", "--detach");
  assertEquals(await offerNewBranch(h.deps, { cwd: h.repo.root, prompt }), null);
  assertEquals(prompt.asked.length, 0);
});

Deno.test("quick start: giving up (end of input, or too many refusals) offers nothing", async () => {
  await using h = await harness();
  assertEquals(
    await offerNewBranch(h.deps, { cwd: h.repo.root, prompt: new ScriptedPrompt([null]) }),
    null,
  );
  const stubborn = new ScriptedPrompt(Array(MAX_ATTEMPTS + 2).fill("bad name"));
  assertEquals(await offerNewBranch(h.deps, { cwd: h.repo.root, prompt: stubborn }), null);
  assertEquals(stubborn.asked.length, MAX_ATTEMPTS);
  assertEquals(stubborn.refused.length, MAX_ATTEMPTS);
});

Deno.test("quick start: a repo without a commit yet says to commit first, before asking", async () => {
  await using h = await harness();
  const fresh = `${h.repo.dir}/fresh`;
  await Deno.mkdir(fresh);
  await gitIn(fresh, "init", "-q", "-b", "main");
  const prompt = new ScriptedPrompt(["x"]);
  const error = await assertRejects(
    () => offerNewBranch(h.deps, { cwd: fresh, prompt }),
    UsageError,
  );
  assertStringIncludes(error.message, "'main' has no commit yet");
  assertStringIncludes(error.hint ?? "", "git commit --allow-empty -m init");
  assertEquals(prompt.asked.length, 0);
});
