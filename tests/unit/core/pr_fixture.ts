/**
 * A world for `tachikoma pr` tests, all real git: a bare `origin`, a main checkout that pushed
 * `main`, a linked worktree on the sandbox's branch, and a fake `gh` (a shell script: the real
 * one cannot reach GitHub here) that records its cwd, its git-config environment and its argv
 * (NUL-separated, so any byte survives) and answers like gh does: `pr create` prints the URL on
 * stdout (refusing, as gh would, when the branch has no upstream), an existing pull request
 * makes `pr create` fail and `pr view --json url,state` answer.
 *
 * @module
 */
import type { SandboxRecord } from "../../../src/state/schema.ts";

/** The host git identity tests commit with (a private global config). */
export const HOST_NAME = "Host Person";
/** Its email. */
export const HOST_EMAIL = "host@example.invalid";

/** A private global git config (the machine's is never read). */
export const GIT_CONFIG_FILE = Deno.makeTempFileSync({ prefix: "tk-pr-gitconfig-" });
Deno.writeTextFileSync(
  GIT_CONFIG_FILE,
  `[user]\n\tname = ${HOST_NAME}\n\temail = ${HOST_EMAIL}\n` +
    "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n",
);
Deno.env.set("GIT_CONFIG_GLOBAL", GIT_CONFIG_FILE);
Deno.env.set("GIT_CONFIG_NOSYSTEM", "1");
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(GIT_CONFIG_FILE);
  } catch {
    // already gone
  }
});

const dec = new TextDecoder();

/** Runs git in `cwd`; throws with stderr on failure. Returns stdout without its last newline. */
export async function gitIn(cwd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (out.code !== 0) throw new Error(`git ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout).replace(/\n$/, "");
}

/** How the fake gh answers. */
export type GhMode = "ok" | "exists" | "fail";

/** One recorded gh invocation. */
export interface GhCall {
  cwd: string;
  /** `GIT_CONFIG_COUNT` as gh saw it ("" when unset). */
  gitConfigCount: string;
  argv: string[];
}

/** The fake gh: records every call under `<bin>/calls/<n>`, behaves per `<bin>/mode`. */
const FAKE_GH = `#!/bin/sh
here=$(dirname "$0")
n=$(ls "$here/calls" | wc -l)
printf '%s\\0' "$PWD" "\${GIT_CONFIG_COUNT-}" "$@" > "$here/calls/$n"
mode=$(cat "$here/mode")
case "$1 $2" in
  "--version "*) echo "gh version 2.62.0 (fake)"; exit 0 ;;
  "pr create")
    if ! git rev-parse --abbrev-ref --symbolic-full-name '@{upstream}' >/dev/null 2>&1; then
      echo "fake gh: the current branch has no upstream (push it first)" >&2
      exit 1
    fi
    case "$mode" in
      ok) echo "https://github.com/acme/myapp/pull/42"; exit 0 ;;
      exists)
        printf 'a pull request for branch "%s" into branch "main" already exists:\\n' \\
          "$(git branch --show-current)" >&2
        echo "https://github.com/acme/myapp/pull/7" >&2
        exit 1 ;;
      fail) echo "HTTP 401: Bad credentials (https://api.github.com/graphql)" >&2; exit 1 ;;
    esac ;;
  "pr view")
    if [ "$mode" = exists ]; then
      echo '{"state":"OPEN","url":"https://github.com/acme/myapp/pull/7"}'
      exit 0
    fi
    echo "no pull requests found for branch \\"$(git branch --show-current)\\"" >&2
    exit 1 ;;
esac
echo "fake gh: unexpected arguments: $*" >&2
exit 2
`;

/** Everything a pr test needs. */
export interface PrWorld extends AsyncDisposable {
  dir: string;
  /** The main checkout. */
  root: string;
  /** The bare origin. */
  remote: string;
  /** The sandbox's worktree. */
  worktree: string;
  branch: string;
  /** Directory holding the fake `gh` (put it first on PATH). */
  bin: string;
  /** The fake gh's path. */
  gh: string;
  /** The sandbox's state record. */
  record: SandboxRecord;
  setMode(mode: GhMode): Promise<void>;
  /** gh invocations so far, in order. */
  calls(): Promise<GhCall[]>;
}

/** Builds a {@link PrWorld}. */
export async function prWorld(
  options: { branch?: string; name?: string } = {},
): Promise<PrWorld> {
  const branch = options.branch ?? "feat";
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "tk-pr-" }));
  const remote = `${dir}/remote.git`;
  const root = `${dir}/myapp`;
  const worktree = `${dir}/myapp-wt`;
  const bin = `${dir}/bin`;
  try {
    await setUp();
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  async function setUp() {
    await gitIn(dir, "init", "-q", "--bare", "-b", "main", remote);
    await Deno.mkdir(root);
    await gitIn(root, "init", "-q", "-b", "main");
    await Deno.writeTextFile(`${root}/README`, "hello\n");
    await gitIn(root, "add", "README");
    await gitIn(root, "commit", "-q", "-m", "init");
    await gitIn(root, "remote", "add", "origin", remote);
    await gitIn(root, "push", "-q", "origin", "main");
    await gitIn(root, "worktree", "add", "-q", "-b", branch, worktree);
    await Deno.mkdir(`${bin}/calls`, { recursive: true });
    await Deno.writeTextFile(`${bin}/gh`, FAKE_GH, { mode: 0o755 });
    await Deno.chmod(`${bin}/gh`, 0o755);
    await Deno.writeTextFile(`${bin}/mode`, "ok");
  }
  const stamp = "2026-05-01T12:00:00.000Z";
  return {
    dir,
    root,
    remote,
    worktree,
    branch,
    bin,
    gh: `${bin}/gh`,
    record: {
      name: options.name ?? "tachikoma-myapp-feat",
      repo: "myapp",
      branch,
      worktree_path: worktree,
      created_at: stamp,
      last_used: stamp,
      status: "running",
      ip: "127.0.0.1",
      backend: "memory",
      repo_root: root,
    },
    setMode: (mode) => Deno.writeTextFile(`${bin}/mode`, mode),
    async calls() {
      const names: number[] = [];
      for await (const e of Deno.readDir(`${bin}/calls`)) names.push(Number(e.name));
      names.sort((a, b) => a - b);
      const calls: GhCall[] = [];
      for (const n of names) {
        const fields = dec.decode(await Deno.readFile(`${bin}/calls/${n}`)).split("\0");
        fields.pop(); // after the last NUL
        const [cwd, gitConfigCount, ...argv] = fields;
        calls.push({ cwd, gitConfigCount, argv });
      }
      return calls;
    },
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
