/**
 * The guest side of src/core/sandbox_files.ts: the constant scripts (values only as `"$1"`…,
 * content on stdin), how they are run (as the sandbox user, from the code directory), the
 * trailer that ends every script's output so lost output is told apart from empty output, the
 * retried read-only {@link query}, and the mapping of exit codes to typed errors.
 *
 * @module
 */
import type { Backend, ExecResult } from "../backends/backend.ts";
import {
  ConflictError,
  NotFoundError,
  RuntimeError,
  TachikomaError,
  UsageError,
} from "../lib/errors.ts";
import { GUEST_CODE_DIR } from "../provision/shares.ts";

/** The sandbox a file operation acts on. */
export interface FileTarget {
  backend: Backend;
  /** Sandbox name (as the engine knows it). */
  sandbox: string;
  /** Aborts the guest command. */
  signal?: AbortSignal;
}

/** Exit codes the scripts use for conditions the caller maps to typed errors. */
export const EXIT = { notFound: 64, isDir: 65, notDir: 66, denied: 67, changed: 68 } as const;

/** Ends every script's output (its exit status is kept), so lost output can be told apart. */
export const TRAILER = "tachikoma-output-end";
const END = `\nrc=$?; printf '\\n%s\\n' ${TRAILER}; exit "$rc"`;
/** How often a read-only command whose answer was lost or cut is run in all. */
export const FILE_QUERY_ATTEMPTS = 3;

/** The scripts below: every value is a positional parameter, none is spliced into shell text. */
// Every script gets its values as "$1"…; none of them is ever spliced into shell text.
export const READ_SCRIPT = `
f=$1 off=$2 n=$3
if [ -d "$f" ]; then printf '%s is a directory\\n' "$f" >&2; exit ${EXIT.isDir}; fi
if [ ! -e "$f" ]; then printf 'no such file: %s\\n' "$f" >&2; exit ${EXIT.notFound}; fi
if [ ! -r "$f" ]; then printf 'permission denied: %s\\n' "$f" >&2; exit ${EXIT.denied}; fi
s=$(stat -L -c %s -- "$f") || exit 1
printf '%s\\n' "$s"
if [ "$off" = 0 ]; then head -c "$n" -- "$f"; else tail -c "+$((off + 1))" -- "$f" | head -c "$n"; fi
`;

export const WRITE_SCRIPT = `
f=$1 mode=$2 parents=$3 expect=$4
if [ -L "$f" ]; then
  t=$(readlink -f -- "$f" && printf x) || { printf 'cannot resolve the link %s\\n' "$f" >&2; exit 1; }
  f=\${t%?x}
fi
case $f in */*) d=\${f%/*}; d=\${d:-/};; *) d=.;; esac
if [ -d "$f" ]; then printf '%s is a directory\\n' "$f" >&2; exit ${EXIT.isDir}; fi
if [ ! -d "$d" ]; then
  if [ "$parents" = 1 ]; then mkdir -p -- "$d" || exit 1
  else printf 'no such directory: %s\\n' "$d" >&2; exit ${EXIT.notFound}; fi
fi
if [ -n "$expect" ]; then
  if [ ! -e "$f" ]; then printf '%s was removed since it was read\\n' "$f" >&2; exit ${EXIT.changed}; fi
  cur=$(sha256sum < "$f") || exit 1
  if [ "\${cur%% *}" != "$expect" ]; then
    printf '%s changed since it was read\\n' "$f" >&2; exit ${EXIT.changed}
  fi
fi
if [ -z "$mode" ]; then
  if [ -e "$f" ]; then mode=$(stat -c %a -- "$f") || exit 1; else mode=644; fi
fi
if tmp=$(mktemp "$d/.tachikoma-write.XXXXXX" 2>/dev/null); then
  trap 'rm -f -- "$tmp"' EXIT
  cat > "$tmp" || exit 1
  chmod "$mode" "$tmp" || exit 1
  mv -f -- "$tmp" "$f" || exit 1
  trap - EXIT
elif [ -e "$f" ] && [ -w "$f" ]; then
  cat > "$f" || exit 1
  [ -z "$2" ] || chmod "$mode" "$f" || exit 1
else
  printf 'permission denied: cannot write %s\\n' "$f" >&2; exit ${EXIT.denied}
fi
stat -c '%s %a' -- "$f"
sha256sum < "$f"
`;

/** Size, mode and SHA-256 of the file a write landed in (the link's target for a link). */
export const VERIFY_SCRIPT = `
f=$1
if [ -L "$f" ]; then f=$(readlink -f -- "$f") || exit 1; fi
stat -c '%s %a' -- "$f" || exit 1
sha256sum < "$f"
`;

export const LIST_SCRIPT = `
p=$1 rec=$2 max=$3
if [ ! -e "$p" ]; then printf 'no such file or directory: %s\\n' "$p" >&2; exit ${EXIT.notFound}; fi
if [ ! -d "$p" ]; then printf '%s is not a directory\\n' "$p" >&2; exit ${EXIT.notDir}; fi
if [ "$rec" = 1 ]; then
  find "$p" -mindepth 1 -printf '%p\\t%y\\t%s\\t%m\\0' | sort -z | head -z -n "$max"
else
  find "$p" -mindepth 1 -maxdepth 1 -printf '%p\\t%y\\t%s\\t%m\\0' | sort -z | head -z -n "$max"
fi
`;

/** What a path is (for delete): `file`, `symlink`, `other`; exits as the other scripts. */
export const KIND_SCRIPT = `
f=$1
if [ -d "$f" ] && [ ! -L "$f" ]; then printf '%s is a directory\\n' "$f" >&2; exit ${EXIT.isDir}; fi
if [ ! -e "$f" ] && [ ! -L "$f" ]; then printf 'no such file: %s\\n' "$f" >&2; exit ${EXIT.notFound}; fi
if [ -L "$f" ]; then echo symlink; elif [ -f "$f" ]; then echo file; else echo other; fi
`;

/** Deletes one file or symlink (never a directory); prints `gone` when it is. */
export const DELETE_SCRIPT = `
f=$1
if [ -d "$f" ] && [ ! -L "$f" ]; then printf '%s is a directory\\n' "$f" >&2; exit ${EXIT.isDir}; fi
if [ ! -e "$f" ] && [ ! -L "$f" ]; then printf 'no such file: %s\\n' "$f" >&2; exit ${EXIT.notFound}; fi
if ! rm -f -- "$f" 2>/dev/null || [ -e "$f" ] || [ -L "$f" ]; then
  printf 'permission denied: cannot delete %s\\n' "$f" >&2; exit ${EXIT.denied}
fi
echo gone
`;

/** One run of a file script: the script, its values ("$1"…) and what it reads on stdin. */
export interface ScriptCall {
  script: string;
  args: string[];
  stdin?: Uint8Array;
}

/** What {@link query} runs and how it judges the answer. */
export interface QueryRequest extends Omit<ScriptCall, "stdin"> {
  /** What is being done, for the error (`reading x`). */
  what: string;
  /** Null when the output (without its trailer) is right, else why not. */
  accept: (stdout: Uint8Array) => string | null;
  /** Exit codes whose output must carry the trailer and pass `accept` (default `[0]`). */
  codes?: number[];
}

/** Runs a file script as the sandbox user in the code directory; values as "$1"…. */
export function run(target: FileTarget, call: ScriptCall): Promise<ExecResult> {
  const { script, args, stdin } = call;
  return target.backend.exec(target.sandbox, {
    argv: ["sh", "-c", script + END, "sh", ...args],
    cwd: GUEST_CODE_DIR,
    user: "user",
    stdin,
    signal: target.signal,
  });
}

/** `stdout` without the trailer, or null when it is missing (the output was lost or cut). */
export function stripTrailer(stdout: Uint8Array): Uint8Array | null {
  const tail = new TextEncoder().encode(`\n${TRAILER}\n`);
  if (stdout.length < tail.length) return null;
  const at = stdout.length - tail.length;
  for (let i = 0; i < tail.length; i++) if (stdout[at + i] !== tail[i]) return null;
  return stdout.subarray(0, at);
}

/**
 * Runs a read-only script; when it exits with one of `codes` its trailer must be there and
 * `accept` (given the output without it) must agree, else it is run again,
 * {@link FILE_QUERY_ATTEMPTS} times in all, then fails. Other exit codes are returned as is.
 */
export async function query(target: FileTarget, request: QueryRequest): Promise<ExecResult> {
  const { script, args, what, accept, codes = [0] } = request;
  let why = "";
  for (let attempt = 1; attempt <= FILE_QUERY_ATTEMPTS; attempt++) {
    const result = await run(target, { script, args });
    if (!codes.includes(result.code)) return result;
    const stdout = stripTrailer(result.stdout);
    if (stdout === null) {
      why = `exit ${result.code} with ${result.stdout.length ? "cut" : "no"} output`;
      continue;
    }
    const refused = accept(stdout);
    if (refused === null) return { ...result, stdout };
    why = refused;
  }
  throw new RuntimeError(
    "guest_output",
    `${what} in the sandbox: its answer was lost ${FILE_QUERY_ATTEMPTS} times (last: ${why})`,
    { hint: "the engine lost the command's output; retry" },
  );
}

/** `<size> <mode>\n<sha256>  -` as printed by the write and verify scripts, or null. */
export function parseLanded(
  stdout: Uint8Array | null,
): { size: number; bits: string; sha256: string } | null {
  if (stdout === null) return null;
  const m = /^(\d+) ([0-7]+)\n([0-9a-f]{64})\b/.exec(new TextDecoder().decode(stdout));
  return m ? { size: Number(m[1]), bits: m[2], sha256: m[3] } : null;
}

/** Maps a script's exit status to a typed error. */
export function check(result: ExecResult, path: string, action: string): void {
  if (result.code === 0) return;
  const detail = new TextDecoder().decode(result.stderr).trim().split("\n").slice(-3).join("; ");
  const message = detail || `exit status ${result.code}`;
  switch (result.code) {
    case EXIT.notFound:
      throw new NotFoundError(message, {
        hint: "relative paths start at the code directory (/mnt/tachikoma/code)",
      });
    case EXIT.isDir:
    case EXIT.notDir:
      throw new UsageError(message);
    case EXIT.denied:
      throw new RuntimeError("permission_denied", message, {
        hint: "the tools act as the sandbox user; use exec_in_sandbox with sudo for other files",
      });
    case EXIT.changed:
      throw new ConflictError(message, { hint: "read the file again and redo the edit" });
  }
  throw new TachikomaError(
    "guest_command_failed",
    `cannot ${action} ${path} in the sandbox: ${message}`,
  );
}
