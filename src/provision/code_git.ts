/**
 * "Code by git", the guest side: on an engine that cannot mount host directories
 * (`capabilities.mountHost` false: a remote Incus server, TrueNAS) the branch is brought into a
 * normal repository at the guest path the share would use (`/mnt/tachikoma/code`), owned by
 * the guest user, with a `.git` of its own. Everything moves as git bundles over the engine's
 * files channel (or, without one, base64 over exec): host `git bundle create` → file into the
 * guest → guest `git clone`/`git fetch` from it; and back (`tachikoma pull`): guest
 * `git bundle create` → file out of the guest → host checks (`src/git/bundle.ts`). Host git never
 * talks to anything the guest runs.
 *
 * The guest is untrusted: what it prints is parsed strictly (commit ids, counts) and capped,
 * and its bundle is checked on the host before one ref is taken from it.
 *
 * @module
 */
import type { GitRunner, WorktreeGit } from "../git/worktree_git.ts";
import { createBranchBundle, firstLines } from "../git/bundle.ts";
import { RuntimeError } from "../lib/errors.ts";
import type { Guest } from "./guest.ts";
import type { HostContext } from "./context.ts";
import { safeWorktreeGit } from "../git/worktree_git.ts";
import { GuestCommandError } from "./errors.ts";
import { GUEST_CODE_DIR } from "./shares.ts";

/** Inputs of the code step on an engine that cannot mount the host (see `code_git.ts`). */
export interface GitCodeInputs {
  mode: "git";
  branch: string;
  /** The host's `~/.claude` dirs that would be shared (they are not: a notice says so). */
  claudeDirs: string[];
  gitName: string | null;
  gitEmail: string | null;
}

/** Largest bundle taken from a guest (512 MiB). */
export const MAX_BUNDLE_BYTES = 512 * 1024 * 1024;

/** A guest file path for one transfer (`/tmp/tachikoma-code-<random>.bundle`). */
function transferPath(): string {
  const nonce = Array.from(
    crypto.getRandomValues(new Uint8Array(8)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  return `/tmp/tachikoma-code-${nonce}.bundle`;
}

/** `~/code` → `$1`, unless `~/code` is a real directory (prints `exists`). */
export const HOME_LINK = [
  'if [ -L "$HOME/code" ] || [ ! -e "$HOME/code" ]; then ln -sfn -- "$1" "$HOME/code"',
  "else echo exists; fi",
].join("\n");

/**
 * `~/code` made a link to the code dir ({@link HOME_LINK}). A real `~/code` is left alone, and a
 * link that cannot be made is reported, each with a warning: the step goes on without it.
 */
export async function linkHomeCode(
  host: Pick<HostContext, "warn">,
  guest: Pick<Guest, "sh" | "sandbox">,
): Promise<void> {
  const r = await guest.sh(HOME_LINK, [GUEST_CODE_DIR]);
  if (r.code !== 0) {
    const why = r.stderr.trim() || `exit ${r.code}`;
    host.warn(`cannot link ~/code to ${GUEST_CODE_DIR} in ${guest.sandbox}: ${why}`);
  } else if (r.stdout.includes("exists")) {
    host.warn(
      `~/code in ${guest.sandbox} is a real directory; not linking it to ${GUEST_CODE_DIR}`,
    );
  }
}

/** Git settings in the guest: safe.directory, the host's identity (`$6 = linked`: gc guard). */
export const GIT_CONFIG = [
  "set -eu",
  "command -v git >/dev/null 2>&1 || { echo nogit; exit 0; }",
  'git config --global --get-all safe.directory 2>/dev/null | grep -qxF -- "$1" ||',
  '  git config --global --add safe.directory "$1"',
  '[ "$2" = 1 ] && git config --global user.name "$3"',
  '[ "$4" = 1 ] && git config --global user.email "$5"',
  '[ "$6" = linked ] && git config --global gc.worktreePruneExpire never',
  'git -C "$1" rev-parse --is-inside-work-tree >/dev/null || echo "brokengit"',
].join("\n");

const IDS = "id -u && id -g";

/** Root: the code dir exists, is empty or already a repository; an empty one gets the user. */
const PREPARE = [
  "set -eu",
  'd="$1"',
  'if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then echo notdir; exit 0; fi',
  'mkdir -p -- "$d"',
  'if [ -d "$d/.git" ]; then echo repo; exit 0; fi',
  'if [ -n "$(ls -A -- "$d")" ]; then echo notempty; exit 0; fi',
  'chown -- "$2:$3" "$d"',
  "echo empty",
].join("\n");

/** User: clone the branch from the bundle, or fetch it next to the guest's own work. */
const BRING_IN = [
  "set -eu",
  'd="$1"; b="$2"; br="$3"',
  "trap 'rm -f -- \"$b\"' EXIT",
  'if [ -d "$d/.git" ]; then',
  '  git -C "$d" fetch -q --no-tags -- "$b" "+refs/heads/$br:refs/remotes/host/$br"',
  "  echo fetched",
  "else",
  '  git clone -q --no-tags --branch "$br" -- "$b" "$d"',
  '  git -C "$d" remote remove origin',
  "  echo cloned",
  "fi",
].join("\n");

/** User: the branch as a bundle at `$2` (only what the host lacks when it has `$4`). */
const TAKE_OUT = [
  "set -eu",
  'd="$1"; out="$2"; br="$3"; basis="$4"',
  '[ -d "$d/.git" ] || { echo norepo; exit 0; }',
  'g=$(git -C "$d" rev-parse -q --verify "refs/heads/$br^{commit}") || { echo nobranch; exit 0; }',
  'rm -f -- "$out"',
  'if [ "$g" = "$basis" ]; then echo "same $g"; exit 0; fi',
  'if [ -n "$basis" ] && git -C "$d" merge-base --is-ancestor "$basis" "$g" 2>/dev/null; then',
  '  git -C "$d" bundle create -q "$out" "refs/heads/$br" "^$basis"',
  "else",
  '  git -C "$d" bundle create -q "$out" "refs/heads/$br"',
  "fi",
  'echo "bundle $g $(wc -c < "$out")"',
].join("\n");

/** User: the branch head, and (when the guest has the host's head `$3`) behind/ahead counts. */
const STATE = [
  'd="$1"; br="$2"; h="$3"',
  '[ -d "$d/.git" ] || { echo norepo; exit 0; }',
  'g=$(git -C "$d" rev-parse -q --verify "refs/heads/$br^{commit}") || { echo nobranch; exit 0; }',
  'if [ -n "$h" ] && git -C "$d" cat-file -e "$h^{commit}" 2>/dev/null; then',
  '  c=$(git -C "$d" rev-list --left-right --count "$h...$g") || c=""',
  '  echo "head $g $c"',
  'else echo "head $g"; fi',
].join("\n");

/** Where the code is in the guest and who runs host git. */
export interface CodeGitOptions {
  guest: Guest;
  /** The sandbox's branch. */
  branch: string;
  /** The code dir in the guest (default {@link GUEST_CODE_DIR}). */
  dir?: string;
}

/** What {@link bringBranchIn} did. */
export interface BroughtIn {
  /** The host commit the guest got. */
  head: string;
  /** `cloned`: a new repository; `fetched`: the guest had one (its branch untouched). */
  action: "cloned" | "fetched";
}

/**
 * Brings `refs/heads/<branch>` of the host into the guest: a new repository at the code dir
 * (owned by the guest user, the branch checked out, no remote), or — when the guest already
 * has one — a fetch into `refs/remotes/host/<branch>` that leaves the guest's work alone.
 */
export async function bringBranchIn(
  options: CodeGitOptions & { run: GitRunner; w: WorktreeGit },
): Promise<BroughtIn> {
  const { guest, branch } = options;
  const dir = options.dir ?? GUEST_CODE_DIR;
  const ids = await guest.query(IDS, [], {
    what: "asking the guest user's ids",
    accept: (r) => r.code !== 0 || /^\d+\n\d+\n?$/.test(r.stdout) ? null : "no ids",
  });
  if (ids.code !== 0) {
    throw new GuestCommandError("asking the guest user's ids", ids.code, ids.stderr);
  }
  const [uid, gid] = ids.stdout.trim().split("\n");
  const prepared = await guest.query(PREPARE, [dir, uid, gid], {
    what: `preparing ${dir}`,
    as: "root",
    accept: (r) =>
      r.code !== 0 || /^(notdir|repo|notempty|empty)$/.test(r.stdout.trim()) ? null : "no answer",
  });
  if (prepared.code !== 0) {
    throw new GuestCommandError(`preparing ${dir}`, prepared.code, prepared.stderr);
  }
  const kind = prepared.stdout.trim();
  if (kind === "notdir" || kind === "notempty") {
    throw new RuntimeError(
      "code_git",
      `${dir} in ${guest.sandbox} ${
        kind === "notdir" ? "is not a directory" : "is not empty and not a git repository"
      }: the branch cannot be brought in`,
      { hint: `remove it in the sandbox, then \`tachikoma spawn --reprovision\`` },
    );
  }
  const temp = await Deno.makeTempDir({ prefix: "tachikoma-bundle-" });
  try {
    const local = `${temp}/out.bundle`;
    const head = await createBranchBundle(options.run, options.w, { branch, path: local });
    const remote = transferPath();
    await putFile(guest, remote, await Deno.readFile(local));
    const r = await guest.sh(BRING_IN, [dir, remote, branch]);
    if (r.code !== 0) {
      throw new GuestCommandError(`bringing '${branch}' into ${dir}`, r.code, r.stderr);
    }
    return { head, action: r.stdout.includes("fetched") ? "fetched" : "cloned" };
  } finally {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
  }
}

/** What the guest's branch is, as {@link takeBranchOut} found it. */
export type TakenOut =
  | { kind: "same"; head: string }
  | { kind: "bundle"; head: string; bundle: Uint8Array }
  | { kind: "missing"; why: "norepo" | "nobranch" };

/**
 * The guest's branch as a bundle (only the commits after `basis` when the guest has it), or
 * `same` when it is at `basis`. The bundle is capped at `maxBytes` ({@link MAX_BUNDLE_BYTES});
 * nothing it says is trusted here (the host checks it).
 */
export async function takeBranchOut(
  options: CodeGitOptions & { basis: string | null; maxBytes?: number },
): Promise<TakenOut> {
  const { guest, branch } = options;
  const dir = options.dir ?? GUEST_CODE_DIR;
  const max = options.maxBytes ?? MAX_BUNDLE_BYTES;
  const remote = transferPath();
  try {
    const r = await guest.query(TAKE_OUT, [dir, remote, branch, options.basis ?? ""], {
      what: `bundling '${branch}' in ${guest.sandbox}`,
      accept: (r) => r.code !== 0 || ANSWER.test(r.stdout.slice(0, 300)) ? null : "no answer",
    });
    if (r.code !== 0) {
      throw new RuntimeError(
        "code_git",
        `bundling '${branch}' in ${guest.sandbox} failed (exit ${r.code}): ${firstLines(r.stderr)}`,
      );
    }
    const m = ANSWER.exec(r.stdout.slice(0, 300))!;
    if (m[1] === "norepo" || m[1] === "nobranch") return { kind: "missing", why: m[1] };
    const head = m[3];
    if (m[2] === "same") return { kind: "same", head };
    if (m[4] === undefined) {
      throw new RuntimeError("code_git", `${guest.sandbox} did not say how big its bundle is`);
    }
    if (Number(m[4]) > max) throw tooBig(guest.sandbox, Number(m[4]), max);
    const bundle = await getFile(guest, remote);
    if (bundle.length > max) throw tooBig(guest.sandbox, bundle.length, max);
    return { kind: "bundle", head, bundle };
  } finally {
    await guest.run(["rm", "-f", "--", remote]).catch(() => {});
  }
}

const ANSWER =
  /^(?:(norepo|nobranch)|(?:(same|bundle) ([0-9a-f]{40}|[0-9a-f]{64})(?: (\d{1,15}))?))\n?$/;

function tooBig(sandbox: string, size: number, max: number): RuntimeError {
  return new RuntimeError(
    "code_git",
    `the bundle from ${sandbox} is ${size} bytes, over the ${max}-byte limit: nothing was taken`,
    { hint: "push the branch from the sandbox another way" },
  );
}

/** The guest's branch head and, when it has `basis`, how far behind/ahead of it. */
export interface GuestBranchState {
  /** Null: the guest has no repository or no such branch. */
  head: string | null;
  /** Commits of `basis` the guest lacks / guest commits `basis` lacks (null: not known). */
  behind: number | null;
  ahead: number | null;
}

/** Asks the guest where its branch is (read-only; the answer is validated, not trusted). */
export async function guestBranchState(
  options: CodeGitOptions & { basis: string | null },
): Promise<GuestBranchState> {
  const { guest, branch } = options;
  const dir = options.dir ?? GUEST_CODE_DIR;
  const r = await guest.query(STATE, [dir, branch, options.basis ?? ""], {
    what: `asking ${guest.sandbox} for '${branch}'`,
    accept: (r) => STATE_ANSWER.test(r.stdout.slice(0, 300)) ? null : "no answer",
  });
  const m = STATE_ANSWER.exec(r.stdout.slice(0, 300))!;
  if (!m[1]) return { head: null, behind: null, ahead: null };
  return {
    head: m[1],
    behind: m[2] === undefined ? null : Number(m[2]),
    ahead: m[3] === undefined ? null : Number(m[3]),
  };
}

const STATE_ANSWER =
  /^(?:norepo|nobranch|head ([0-9a-f]{40}|[0-9a-f]{64})(?: (\d{1,9})\t(\d{1,9}))? ?)\n?$/;

/** Writes a file into the guest (the engine's files channel, else base64 over exec). */
async function putFile(guest: Guest, path: string, data: Uint8Array): Promise<void> {
  if (guest.backend.capabilities.files) {
    await guest.backend.pushFile(guest.sandbox, { path, data, owner: "user", mode: 0o600 });
  } else {
    await guest.writeFile(path, data, { mode: 0o600 });
  }
}

/** Reads a file out of the guest (the engine's files channel, else base64 over exec). */
async function getFile(guest: Guest, path: string): Promise<Uint8Array> {
  if (guest.backend.capabilities.files) return await guest.backend.pullFile(guest.sandbox, path);
  const data = await guest.readFile(path);
  if (data === null) {
    throw new RuntimeError("code_git", `${guest.sandbox} made no bundle at ${path}`);
  }
  return data;
}

/**
 * The code step on an engine that cannot mount the host: the branch brought in by git
 * ({@link bringBranchIn}), `~/code` linked to it, the host's git identity; the Claude dirs that
 * would be shared are not (a notice says so).
 */
export async function codeByGit(
  host: HostContext,
  guest: Guest,
  inputs: GitCodeInputs,
): Promise<void> {
  const record = host.ctx.record;
  const w = await safeWorktreeGit({
    runner: host.deps.runner,
    mainRoot: host.repoRoot,
    workTree: record.worktree_path,
  });
  await bringBranchIn({
    guest,
    branch: inputs.branch,
    run: { runner: host.deps.runner, signal: host.ctx.signal },
    w,
  });
  await linkHomeCode(host, guest);
  if (!inputs.gitName || !inputs.gitEmail) {
    host.warn(
      "the host's git has no user.name/user.email for this repo; commits in the sandbox " +
        "will ask for one (set them with `git config --global user.name …`)",
    );
  }
  await guest.shCheck(GIT_CONFIG, [
    GUEST_CODE_DIR,
    inputs.gitName ? "1" : "0",
    inputs.gitName ?? "",
    inputs.gitEmail ? "1" : "0",
    inputs.gitEmail ?? "",
    "main",
  ], { what: "configuring git" });
  host.warn(
    `${guest.backend.name} cannot mount host directories: ${guest.sandbox} has its own copy of ` +
      `'${inputs.branch}' (\`tachikoma pull\` brings its commits back)` +
      (inputs.claudeDirs.length
        ? `; the host's ~/.claude dirs (${inputs.claudeDirs.join(", ")}) and project memory ` +
          "are not shared"
        : ""),
  );
}
