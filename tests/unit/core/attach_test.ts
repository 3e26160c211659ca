import { assert, assertEquals, assertRejects } from "@std/assert";
import { EchoSession } from "../../../src/backends/memory/mod.ts";
import type { TermSize } from "../../../src/backends/backend.ts";
import { attach, type TerminalIO } from "../../../src/core/attach.ts";
import { InterruptedError, UnreachableError } from "../../../src/lib/errors.ts";
import { buildShares, pathSlug } from "../../../src/provision/shares.ts";

const enc = (s: string) => new TextEncoder().encode(s);

/** A terminal double: scripted input chunks (null = EOF, "hold" = never more). */
class FakeTerminal implements TerminalIO {
  written = "";
  rawCalls: boolean[] = [];
  resize: (() => void) | null = null;
  unsubscribed = false;
  currentSize: TermSize = { cols: 120, rows: 40 };
  #input: (string | null)[];
  #hold = Promise.withResolvers<null>();

  constructor(readonly isTerminal: boolean, input: (string | null)[] = []) {
    this.#input = input;
  }
  async read(buffer: Uint8Array): Promise<number | null> {
    await new Promise((r) => setTimeout(r, 1));
    if (this.#input.length === 0) return await this.#hold.promise;
    const next = this.#input.shift()!;
    if (next === null) return null;
    const bytes = enc(next);
    buffer.set(bytes);
    return bytes.length;
  }
  write(data: Uint8Array): Promise<void> {
    this.written += new TextDecoder().decode(data);
    return Promise.resolve();
  }
  setRaw(raw: boolean): void {
    this.rawCalls.push(raw);
  }
  size(): TermSize {
    return this.currentSize;
  }
  onResize(listener: () => void): () => void {
    this.resize = listener;
    return () => (this.unsubscribed = true);
  }
}

Deno.test("attach: raw mode on a TTY, input forwarded, resize sent, exit status, restored", async () => {
  const term = new FakeTerminal(true, ["ls\n", "exit 3\n"]);
  let session!: EchoSession;
  const code = await attach(
    (size) => {
      session = new EchoSession(size);
      term.currentSize = { cols: 90, rows: 30 };
      setTimeout(() => term.resize?.(), 0);
      return Promise.resolve(session);
    },
    term,
    { sandbox: "s" },
  );
  assertEquals(code, 3);
  assertEquals(term.rawCalls, [true, false], "raw mode set, then restored");
  assertEquals(session.input, "ls\nexit 3\n");
  assertEquals(term.written, "ls\nexit 3\n");
  assertEquals(session.sizes, [{ cols: 120, rows: 40 }, { cols: 90, rows: 30 }]);
  assert(term.unsubscribed);
});

Deno.test("attach: piped stdin is not put in raw mode; its end is sent as Ctrl-D", async () => {
  const term = new FakeTerminal(false, ["echo hi\n", null]);
  let session!: EchoSession;
  const done = attach(
    (size) => {
      session = new EchoSession(size);
      return Promise.resolve(session);
    },
    term,
    { sandbox: "s" },
  );
  while (!session?.input.includes("\x04")) await new Promise((r) => setTimeout(r, 1));
  session.finish(0);
  assertEquals(await done, 0);
  assertEquals(term.rawCalls, []);
  assertEquals(session.input, "echo hi\n\x04");
});

Deno.test("attach: a dropped connection restores the terminal and says so", async () => {
  const term = new FakeTerminal(true);
  const done = attach(
    (size) => {
      const s = new EchoSession(size);
      setTimeout(() => s.disconnect(new Error("broken pipe")), 5);
      return Promise.resolve(s);
    },
    term,
    { sandbox: "tachikoma-x" },
  );
  const error = await assertRejects(() => done, UnreachableError, "connection to tachikoma-x lost");
  assert(error.hint?.includes("tachikoma enter tachikoma-x"));
  assertEquals(term.rawCalls, [true, false]);
});

Deno.test("attach: Ctrl-C (abort) closes the session and restores the terminal", async () => {
  const term = new FakeTerminal(false);
  const controller = new AbortController();
  let session!: EchoSession;
  const done = attach(
    (size) => {
      session = new EchoSession(size);
      setTimeout(() => controller.abort(new InterruptedError()), 5);
      return Promise.resolve(session);
    },
    term,
    { sandbox: "s", signal: controller.signal },
  );
  await assertRejects(() => done, InterruptedError);
  assert(session.closed);
  assert(term.unsubscribed);
});

Deno.test("shares: code and .git (read-only, data parts read-write over it) always; claude dirs and memory only when they exist", async () => {
  const dirs = new Set(["/h/.git-common", "/home/u/.claude/rules", "/home/u/.claude/my_skills"]);
  dirs.add(`/home/u/.claude/projects/${pathSlug("/src/my app")}/memory`);
  const shares = await buildShares({
    worktreePath: "/src/my app-x",
    gitCommonDir: "/h/.git-common",
    worktreeGitDir: "/h/.git-common/worktrees/my app-x",
    repoRoot: "/src/my app",
    home: "/home/u",
    claudeDirs: ["rules", "agents", "my_skills", "../etc"],
    isDir: (p) => Promise.resolve(dirs.has(p)),
  });
  assertEquals(shares.map((s) => [s.name, s.hostPath, s.guestPath, s.readOnly]), [
    ["code", "/src/my app-x", "/mnt/tachikoma/code", false],
    ["git", "/h/.git-common", "/mnt/tachikoma/git", true],
    ["git-objects", "/h/.git-common/objects", "/mnt/tachikoma/git/objects", false],
    ["git-refs", "/h/.git-common/refs", "/mnt/tachikoma/git/refs", false],
    ["git-logs", "/h/.git-common/logs", "/mnt/tachikoma/git/logs", false],
    [
      "git-worktree",
      "/h/.git-common/worktrees/my app-x",
      "/mnt/tachikoma/git/worktrees/my app-x",
      false,
    ],
    ["claude-rules", "/home/u/.claude/rules", "/mnt/tachikoma/claude-rules", true],
    ["claude-my-skills", "/home/u/.claude/my_skills", "/mnt/tachikoma/claude-my-skills", true],
    [
      "claude-memory",
      "/home/u/.claude/projects/-src-my app/memory",
      "/mnt/tachikoma/claude-memory",
      true,
    ],
  ]);
});
