/**
 * Step 2, `code`: the worktree at `/mnt/tachikoma/code` (`~/code` links to it) with a git that
 * works inside the guest — without ever writing the host's `.git` file.
 *
 * A linked worktree's `.git` file holds the host path of its git dir
 * (`gitdir: /Users/me/src/app/.git/worktrees/feat`). The repo's `.git` is shared read-only at
 * `/mnt/tachikoma/git` with its data parts and this worktree's entry read-write over it (see
 * `shares.ts`), so the guest gets a symlink AT that host path pointing to
 * `/mnt/tachikoma/git/worktrees/feat`: the unmodified `.git` file resolves, and the worktree's
 * `commondir` (`../..`) resolves through the symlink's real path to the shared `.git`. The host
 * paths come from the host (`src/git/worktree_git.ts`), never from the guest's copy of the
 * `.git` file. No global
 * GIT_DIR/GIT_WORK_TREE (they break `git clone` in the guest). The guest also gets the host's git
 * identity (not a made-up one), `safe.directory` for the code dir, and
 * `gc.worktreePruneExpire = never` so a `git gc` in the guest can never prune the host's
 * worktrees (whose host paths do not exist in the guest).
 *
 * @module
 */
import type { Share } from "../backends/backend.ts";
import type { StepDef } from "./context.ts";
import { ProvisionError } from "./errors.ts";
import type { Guest } from "./guest.ts";
import { repairWorktreeLinks, resolveWorktreeGit } from "../git/worktree_git.ts";
import { codeByGit, GIT_CONFIG, type GitCodeInputs, linkHomeCode } from "./code_git.ts";
import { buildShares, ensureGitParts, GUEST_CODE_DIR, guestWorktreeGitDir } from "./shares.ts";

/** Inputs of the code step: shared (the engine mounts the host), or by git. */
export type CodeInputs = SharedCodeInputs | GitCodeInputs;

/** Inputs of the code step on an engine that mounts the host. */
export interface SharedCodeInputs {
  mode?: undefined;
  shares: Share[];
  /** The worktree's administrative dir on the host (`<common>/worktrees/<id>`). */
  worktreeGitDir: string;
  gitName: string | null;
  gitEmail: string | null;
}

const PROBE = [
  'c="$1"',
  'if [ ! -d "$c" ]; then echo missing',
  'elif [ -d "$c/.git" ]; then echo main',
  'elif [ -f "$c/.git" ]; then echo file',
  "else echo none; fi",
].join("\n");

const GIT_LINK = [
  "set -eu",
  'link="$1"; target="$2"',
  'if [ ! -d "$target" ]; then echo "$target is not a directory in the sandbox" >&2; exit 3; fi',
  'if [ -e "$link" ] && [ ! -L "$link" ]; then',
  '  echo "$link already exists in the sandbox and is not a symlink" >&2; exit 4',
  "fi",
  'mkdir -p -- "$(dirname -- "$link")"',
  'ln -sfn -- "$target" "$link"',
].join("\n");

/** Step 2. */
export const codeStep: StepDef<CodeInputs> = {
  name: "code",
  label: "Sharing the code",
  async inputs(host) {
    if (!host.ctx.backend.capabilities.mountHost) {
      const id = await host.gitIdentity();
      return {
        mode: "git",
        branch: host.ctx.record.branch,
        claudeDirs: [...host.ctx.config.share_claude_dirs],
        gitName: id.name,
        gitEmail: id.email,
      };
    }
    const w = await resolveWorktreeGit({
      runner: host.deps.runner,
      mainRoot: host.repoRoot,
      workTree: host.ctx.record.worktree_path,
    });
    await repairWorktreeLinks(w);
    await ensureGitParts(w.commonDir);
    const shares = await buildShares({
      worktreePath: w.workTree,
      gitCommonDir: w.commonDir,
      worktreeGitDir: w.gitDir,
      repoRoot: host.repoRoot,
      home: host.deps.home,
      claudeDirs: host.ctx.config.share_claude_dirs,
    });
    const id = await host.gitIdentity();
    return { shares, worktreeGitDir: w.gitDir, gitName: id.name, gitEmail: id.email };
  },
  async run(host, guest, inputs) {
    if (inputs.mode === "git") return await codeByGit(host, guest, inputs);
    await guest.backend.mountShares(guest.sandbox, inputs.shares);
    // The look at the share, ~/code's link and (for a linked worktree, as the host's git says)
    // the git dir's link are independent: one guest round trip for the three.
    const linkedOnHost = /\/worktrees\/[^/]+$/.test(inputs.worktreeGitDir);
    const [probe, , gitLink] = await Promise.all([
      guest.query(PROBE, [GUEST_CODE_DIR], {
        what: "looking at the code share",
        accept: (r) => /^(missing|main|file|none)$/.test(r.stdout.trim()) ? null : "no answer",
      }),
      linkHomeCode(host, guest),
      linkedOnHost
        ? linkWorktreeGitDir(guest, inputs.worktreeGitDir).then(() => null, (e) => e)
        : null,
    ]);
    if (probe.code !== 0) {
      throw new ProvisionError("code", "looking at the code share failed", {
        stderr: probe.stderr,
      });
    }
    const kind = probe.stdout.trim();
    if (kind === "missing") {
      throw new ProvisionError(
        "code",
        `the worktree is not visible in the sandbox at ${GUEST_CODE_DIR}`,
      );
    }
    let linked = false;
    if (kind === "file") {
      if (!linkedOnHost) await linkWorktreeGitDir(guest, inputs.worktreeGitDir);
      else if (gitLink) throw gitLink;
      linked = true;
    } else if (kind === "none") {
      host.warn(`${host.ctx.record.worktree_path} is not a git checkout; git is not set up`);
    }
    if (!inputs.gitName || !inputs.gitEmail) {
      host.warn(
        "the host's git has no user.name/user.email for this repo; commits in the sandbox " +
          "will ask for one (set them with `git config --global user.name …`)",
      );
    }
    const r = await guest.shCheck(GIT_CONFIG, [
      GUEST_CODE_DIR,
      inputs.gitName ? "1" : "0",
      inputs.gitName ?? "",
      inputs.gitEmail ? "1" : "0",
      inputs.gitEmail ?? "",
      linked ? "linked" : "main",
    ], { what: "configuring git" });
    if (r.stdout.includes("nogit")) {
      host.warn(`git is not installed in ${guest.sandbox}; skipped the git setup`);
    } else if (r.stdout.includes("brokengit") && kind !== "none") {
      host.warn(
        `git does not work on the worktree inside ${guest.sandbox}: ${r.stderr.trim()}`,
      );
    }
  },
};

async function linkWorktreeGitDir(guest: Guest, worktreeGitDir: string): Promise<void> {
  const where = { link: worktreeGitDir, target: guestWorktreeGitDir(worktreeGitDir) };
  // Inside the user's home the user makes it (right owner); elsewhere only root can.
  const home = await guest.home();
  const as = where.link.startsWith(`${home}/`) ? "user" : "root";
  const r = await guest.sh(GIT_LINK, [where.link, where.target], { as });
  if (r.code !== 0) {
    const why = r.code === 3
      ? `this worktree's git dir is not shared at ${where.target}`
      : `cannot create the git dir link ${where.link} in the sandbox`;
    throw new ProvisionError("code", why, { stderr: r.stderr });
  }
}
