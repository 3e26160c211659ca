/**
 * Persistent sessions: tmux sessions in the guest that outlive the connection. `enter` attaches
 * to one by name (created on first use, a login shell in the code dir); `sessions` lists them
 * (name, started, attached clients, last activity) and kills one. Session names are validated
 * here and reach the guest only as argv elements (or through `src/lib/shell.ts` where a command
 * line is built); the guest's answers are parsed strictly (the guest is untrusted).
 *
 * @module
 */
import { NotFoundError, RuntimeError, UsageError } from "../lib/errors.ts";

/** The session bare `tachikoma` and `enter` attach to. */
export const DEFAULT_SESSION = "main";

/** The documented detach key (tmux's default prefix, then `d`). */
export const DETACH_KEY = "Ctrl-b d";

/** Session names tachikoma accepts: tmux reserves `:` and `.`; nothing a shell would read. */
export const SESSION_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Returns `name` when it is a valid session name; throws a one-line UsageError otherwise. */
export function checkSessionName(name: string): string {
  if (!SESSION_NAME_RE.test(name)) {
    throw new UsageError(
      `invalid session name ${JSON.stringify(name)}: letters, digits, '-' and '_' ` +
        "(starting with a letter or digit, at most 64)",
    );
  }
  return name;
}

/**
 * The guest side of an attach (`$1`: the session name): the login environment, then
 * `tmux new-session -A` (attach, or create and attach). A plain login shell with a notice
 * instead in a guest without tmux, and on a terminal tmux cannot drive (`TERM` unset or `dumb`,
 * or without the `clear` capability: tmux would exit with "terminal does not support clear").
 */
const ATTACH_SCRIPT = [
  '[ -r "$HOME/.profile" ] && . "$HOME/.profile" </dev/null >/dev/null 2>&1',
  "if ! command -v tmux >/dev/null 2>&1; then",
  "  echo 'tachikoma: this sandbox has no tmux: a plain shell, not persistent " +
  "(tachikoma spawn --reprovision installs it)' >&2",
  'elif [ "${TERM:-dumb}" = dumb ] || ' +
  "{ command -v tput >/dev/null 2>&1 && ! tput clear >/dev/null 2>&1; }; then",
  '  printf "tachikoma: this terminal (TERM=%s) cannot hold a tmux session: a plain shell, ' +
  'not persistent\\n" "${TERM:-unset}" >&2',
  "else",
  '  exec tmux new-session -A -s "$1"',
  "fi",
  'exec "${SHELL:-/bin/sh}" -l',
].join("\n");

/** The argv that attaches to session `name` (validated). */
export function attachArgv(name: string): string[] {
  return ["sh", "-c", ATTACH_SCRIPT, "tachikoma", checkSessionName(name)];
}

/** One session as `sessions` reports it. */
export interface SessionInfo {
  name: string;
  /** RFC 3339. */
  started: string;
  /** Clients attached now. */
  attached: number;
  /** RFC 3339. */
  last_activity: string;
}

/** Lists the sessions; prints `no-tmux` when the guest has none. */
export const LIST_SCRIPT = [
  "command -v tmux >/dev/null 2>&1 || { echo no-tmux; exit 0; }",
  "tmux list-sessions -F '#{session_created}\t#{session_attached}\t#{session_activity}\t" +
  "#{session_name}' 2>/dev/null",
  "exit 0",
].join("\n");

/** Kills session `$1`; exit 3 when there is none of that name. */
export const KILL_SCRIPT = [
  "command -v tmux >/dev/null 2>&1 || exit 3",
  'tmux has-session -t "=$1" 2>/dev/null || exit 3',
  'tmux kill-session -t "=$1"',
].join("\n");

/** What {@link parseSessions} makes of the guest's answer. */
export interface ParsedSessions {
  sessions: SessionInfo[];
  /** False when the guest has no tmux. */
  tmux: boolean;
  /** Lines that were not a session (the guest is untrusted: reported, never trusted). */
  skipped: number;
}

const LINE_RE = /^(\d{1,12})\t(\d{1,6})\t(\d{1,12})\t(.+)$/;

/** Parses {@link LIST_SCRIPT}'s output, strictly. Sorted by name. */
export function parseSessions(stdout: string): ParsedSessions {
  if (stdout.trim() === "no-tmux") return { sessions: [], tmux: false, skipped: 0 };
  const sessions: SessionInfo[] = [];
  let skipped = 0;
  for (const line of stdout.split("\n")) {
    if (line === "") continue;
    const m = LINE_RE.exec(line);
    if (!m) {
      skipped++;
      continue;
    }
    sessions.push({
      name: m[4],
      started: new Date(Number(m[1]) * 1000).toISOString(),
      attached: Number(m[2]),
      last_activity: new Date(Number(m[3]) * 1000).toISOString(),
    });
  }
  sessions.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { sessions, tmux: true, skipped };
}

/** The error for a kill whose session does not exist. */
export function unknownSession(sandbox: string, name: string): NotFoundError {
  return new NotFoundError(`no session ${JSON.stringify(name)} in sandbox ${sandbox}`, {
    hint: `\`tachikoma sessions ${sandbox}\` lists them`,
  });
}

/** The error for a guest whose list or kill failed. */
export function sessionsFailed(sandbox: string, what: string, code: number): RuntimeError {
  return new RuntimeError("guest_output", `${what} in ${sandbox} failed (exit ${code})`);
}

/** What {@link listSessions} returns. */
export interface SessionsResult {
  name: string;
  /** Live state of the sandbox (a sandbox that is not running has no sessions). */
  state: string;
  /** False when the guest has no tmux. */
  tmux: boolean;
  sessions: SessionInfo[];
}

/** The part of the sandbox service the session commands use. */
export interface SessionHost {
  resolve(name?: string): Promise<{ name: string }>;
  backend(): Promise<{ get(name: string): Promise<{ state: string }> }>;
  exec(
    name: string,
    options: { argv: string[]; raw: boolean },
  ): Promise<{ code: number; stdout: Uint8Array; stderr: Uint8Array }>;
}

const decoder = new TextDecoder();

/** Lists the persistent sessions of a sandbox (none when it is not running). */
export async function listSessions(
  host: SessionHost,
  name?: string,
): Promise<SessionsResult & { skipped: number }> {
  const record = await host.resolve(name);
  const state = (await (await host.backend()).get(record.name)).state;
  if (state !== "running") {
    return { name: record.name, state, tmux: true, sessions: [], skipped: 0 };
  }
  const r = await host.exec(record.name, {
    argv: ["sh", "-c", LIST_SCRIPT, "tachikoma"],
    raw: true,
  });
  if (r.code !== 0) throw sessionsFailed(record.name, "listing the sessions", r.code);
  const parsed = parseSessions(decoder.decode(r.stdout));
  return { name: record.name, state, ...parsed };
}

/** Kills one persistent session; NotFoundError when there is none of that name. */
export async function killSession(
  host: SessionHost,
  name: string | undefined,
  session: string,
): Promise<{ name: string; session: string; killed: true }> {
  const record = await host.resolve(name);
  checkSessionName(session);
  const r = await host.exec(record.name, {
    argv: ["sh", "-c", KILL_SCRIPT, "tachikoma", session],
    raw: true,
  });
  if (r.code === 3) throw unknownSession(record.name, session);
  if (r.code !== 0) throw sessionsFailed(record.name, `killing session ${session}`, r.code);
  return { name: record.name, session, killed: true };
}
