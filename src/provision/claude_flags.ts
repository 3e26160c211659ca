/**
 * `claude_flags`: extra arguments for Claude Code wherever it is started in the guest.
 *
 * tachikoma does not start Claude itself: the user (or an agent) runs `claude` in the sandbox's
 * shell. So the flags live in a small wrapper, `~/.local/share/tachikoma/bin/claude`, that runs
 * the real Claude (`~/.local/bin/claude`, where both install methods put it, else the next
 * `claude` on `PATH`) with the flags before the caller's own arguments. The profile block puts
 * the wrapper's directory first on `PATH`, so every shell that reads `~/.profile` (the shell
 * `tachikoma` opens, `bash -l`, `tachikoma exec -- bash -lc 'claude …'`) and every program it
 * starts gets it. The flags are quoted by `quoteArgv` (src/lib/shell.ts), so quotes, `$()`,
 * backticks, newlines and unicode reach Claude as the exact arguments configured.
 *
 * With no flags there is no wrapper and no `PATH` entry (a wrapper from an earlier provisioning
 * is removed).
 *
 * @module
 */
import { quote, quoteArgv } from "../lib/shell.ts";

/** The wrapper's directory under the guest user's home. */
export const WRAPPER_DIR = ".local/share/tachikoma/bin";

/** The wrapper's path for a guest home. */
export function wrapperPath(home: string): string {
  return `${home}/${WRAPPER_DIR}/claude`;
}

/** The wrapper script (POSIX sh) running the real Claude with `flags` first. */
export function claudeWrapper(home: string, flags: string[]): string {
  return [
    "#!/bin/sh",
    "# Written by tachikoma at every provisioning from claude_flags: edits are lost.",
    `self=${quote(wrapperPath(home))}`,
    'real=""',
    'if [ -x "$HOME/.local/bin/claude" ]; then',
    '  real="$HOME/.local/bin/claude"',
    "else",
    "  set -f",
    "  IFS=:",
    "  for d in $PATH; do",
    '    if [ "$d/claude" != "$self" ] && [ -x "$d/claude" ] && [ ! -d "$d/claude" ]; then',
    '      real="$d/claude"',
    "      break",
    "    fi",
    "  done",
    "  unset IFS",
    "  set +f",
    "fi",
    'if [ -z "$real" ]; then',
    '  echo "claude: Claude Code is not installed in this sandbox" >&2',
    "  exit 127",
    "fi",
    `exec "$real" ${flags.length ? quoteArgv(flags) + " " : ""}"$@"`,
    "",
  ].join("\n");
}

/**
 * The profile-block line putting the wrapper's directory first on `PATH` (once, however often
 * `~/.profile` is read).
 */
export function wrapperPathLine(home: string): string {
  const dir = quote(`${home}/${WRAPPER_DIR}`);
  return `case ":$PATH:" in *:${dir}:*) ;; *) PATH=${dir}:"$PATH"; export PATH ;; esac`;
}
