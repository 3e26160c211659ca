/**
 * Reaching the guest of a tart VM: the SSH seam (implemented with `src/ssh/`, injected so unit
 * tests don't need it) and the argv used with `tart exec`, where values travel as separate
 * arguments — never pasted into shell text.
 *
 * @module
 */
import type {
  ExecRequest,
  ExecResult,
  PushedFile,
  ShellRequest,
  ShellSession,
} from "../backend.ts";
import { fromBase64, isEnvName } from "../../lib/shell.ts";
import { NotFoundError, RuntimeError, UsageError } from "../../lib/errors.ts";

/** How to authenticate an SSH connection to a guest. */
export type SshAuth =
  /** tachikoma's own key (`~/.ssh/tachikoma`). */
  | { kind: "key" }
  /** Password authentication (tart's images: admin/admin), before the key is authorised. */
  | { kind: "password"; password: string };

/** One SSH destination. */
export interface SshTarget {
  /** The sandbox name (host-key pinning is per sandbox). */
  sandbox: string;
  host: string;
  port: number;
  /** The login user (`ssh_user`); `ExecRequest.user = "root"` is reached with sudo. */
  user: string;
  auth: SshAuth;
}

/** Outcome of {@link GuestSsh.probe}. */
export type SshProbe = "ok" | "auth-failed" | "unreachable";

/** The SSH operations the tart backend needs. */
export interface GuestSsh {
  /** Connects and authenticates (nothing else). */
  probe(target: SshTarget): Promise<SshProbe>;
  /** Runs a command to completion (argv quoted by the SSH layer; root via sudo). */
  exec(target: SshTarget, request: ExecRequest): Promise<ExecResult>;
  /** Opens a PTY session. */
  shell(target: SshTarget, request: ShellRequest): Promise<ShellSession>;
  /** Drops the pooled connections of a sandbox (it stopped, restarted or was deleted). */
  forget(sandbox: string): void;
  /** Closes pooled connections. */
  close(): Promise<void>;
}

/** `sh -c` body that runs `"$@"` as user `$1`, through sudo only when needed. */
const AS_USER =
  'u=$1; shift; if [ "$(id -un)" = "$u" ]; then exec "$@"; else exec sudo -n -H -u "$u" -- "$@"; fi';

/** `sh -c` body: cd to `$1`, export the next `$2` assignments, exec the rest. */
const CD_ENV_EXEC = 'cd -- "$1" || exit 1; n=$2; shift 2; while [ "$n" -gt 0 ]; do ' +
  'export "$1" || exit 1; shift; n=$((n - 1)); done; exec "$@"';

/**
 * The guest argv for `tart exec` implementing an {@link ExecRequest}: the target user (via sudo
 * when the agent runs as someone else), `HOME`/`USER`, the working directory and the request's
 * environment. Every value is a separate argument.
 */
export function tartExecArgv(request: ExecRequest, sshUser: string): string[] {
  if (request.argv.length === 0) throw new UsageError("exec needs a command");
  const user = request.user === "root" ? "root" : sshUser;
  const home = user === "root" ? "/root" : `/home/${sshUser}`;
  const assignments = [`HOME=${home}`, `USER=${user}`, `LOGNAME=${user}`];
  for (const [name, value] of Object.entries(request.env ?? {})) {
    if (!isEnvName(name)) {
      throw new UsageError(`invalid environment variable name: ${JSON.stringify(name)}`);
    }
    assignments.push(`${name}=${value}`);
  }
  return [
    "sh",
    "-c",
    AS_USER,
    "tachikoma",
    user,
    "sh",
    "-c",
    CD_ENV_EXEC,
    "tachikoma",
    request.cwd ?? home,
    String(assignments.length),
    ...assignments,
    ...request.argv,
  ];
}

/** Guest argv writing stdin to `path` atomically with `mode` (parents created). */
export function pushFileArgv(path: string, mode: number): string[] {
  const script = 'set -e; p=$1; d=$(dirname -- "$p"); mkdir -p -- "$d"; ' +
    't="$d/.tachikoma-push.$$"; trap \'rm -f -- "$t"\' EXIT; cat > "$t"; ' +
    'chmod "$2" "$t"; mv -f -- "$t" "$p"; trap - EXIT';
  return ["sh", "-c", script, "tachikoma", path, mode.toString(8).padStart(4, "0")];
}

/** Exit code of {@link pullFileArgv} when the file is missing. */
export const PULL_MISSING = 44;

/** Guest argv printing `path` as base64 (binary-safe on every transport). */
export function pullFileArgv(path: string): string[] {
  const script =
    `[ -e "$1" ] || exit ${PULL_MISSING}; [ -f "$1" ] || { echo "not a file: $1" >&2; exit 1; }; ` +
    'base64 < "$1"';
  return ["sh", "-c", script, "tachikoma", path];
}

/** Runs one command in a guest: the route files travel by in {@link pushFileByExec}. */
export type GuestExec = (request: ExecRequest) => Promise<ExecResult>;

const FILE_TIMEOUT_MS = 120_000;

/**
 * Writes `file` in sandbox `name` through `exec` ({@link pushFileArgv}: the bytes on stdin,
 * parents created, atomic rename), as its owner (default: the sandbox user), mode 0644 unless
 * given.
 */
export async function pushFileByExec(
  exec: GuestExec,
  name: string,
  file: PushedFile,
): Promise<void> {
  const result = await exec({
    argv: pushFileArgv(file.path, file.mode ?? 0o644),
    user: file.owner ?? "user",
    stdin: file.data,
    timeoutMs: FILE_TIMEOUT_MS,
  });
  if (result.code !== 0) {
    throw new RuntimeError(
      "push_failed",
      `writing ${file.path} in ${name} failed (exit ${result.code}): ${tail(result.stderr)}`,
    );
  }
}

/** Reads `path` in sandbox `name` through `exec` ({@link pullFileArgv}); NotFoundError when missing. */
export async function pullFileByExec(
  exec: GuestExec,
  name: string,
  path: string,
): Promise<Uint8Array> {
  const result = await exec({ argv: pullFileArgv(path), timeoutMs: FILE_TIMEOUT_MS });
  if (result.code === PULL_MISSING) throw new NotFoundError(`${path} does not exist in ${name}`);
  if (result.code !== 0) {
    throw new RuntimeError(
      "pull_failed",
      `reading ${path} in ${name} failed (exit ${result.code}): ${tail(result.stderr)}`,
    );
  }
  return fromBase64(new TextDecoder().decode(result.stdout).replace(/\s+/g, ""));
}

/** The last lines of a command's stderr, for an error message. */
function tail(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes).trim().split("\n").slice(-5).join("\n");
}

/**
 * Guest argv mounting the default virtio-fs tag at `root` (idempotent), checking that every
 * share is visible there (`<root>/<name>`), and bind-mounting each share whose guest path is
 * elsewhere (the read-write parts of `.git`, mounted over the read-only `.git` share).
 */
export function mountSharesArgv(
  tag: string,
  root: string,
  shares: { name: string; guestPath: string }[],
): string[] {
  const script = 'set -e; tag=$1; root=$2; shift 2; mkdir -p -- "$root"; ' +
    'if ! mountpoint -q "$root"; then mount -t virtiofs "$tag" "$root"; fi; ' +
    'while [ "$#" -gt 1 ]; do src=$root/$1; dst=$2; shift 2; ' +
    '[ -d "$src" ] || { echo "share not visible in the guest: $src" >&2; exit 1; }; ' +
    'if [ "$dst" != "$src" ] && ! mountpoint -q "$dst"; then mount --bind "$src" "$dst"; fi; ' +
    "done";
  return [
    "sh",
    "-c",
    script,
    "tachikoma",
    tag,
    root,
    ...shares.flatMap((s) => [s.name, s.guestPath]),
  ];
}
