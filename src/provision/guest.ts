/**
 * The guest as provisioning sees it: commands and files through the backend's `exec`, as root
 * or as the sandbox user, on every backend alike.
 *
 * Values never become shell text: scripts here are constant strings run as
 * `sh -c <script> tachikoma <arg>…`, and values travel as those positional arguments (the
 * backend passes argv exactly). File content travels base64 (decoded in the guest by
 * `base64 -d`) and lands atomically (temp file, chmod, rename) with the right owner because it is
 * written by the account that owns it.
 *
 * Output is checked, never trusted blindly: an engine can lose a command's output and still
 * report exit 0 (Incus does under concurrent execs, see src/backends/incus/README.md). Scripts
 * whose output matters run through {@link Guest.query}, which appends a trailer the host must
 * find (absent: the output was lost, the read-only script is run again, then it fails).
 * {@link Guest.readFile} also gets the file's size and SHA-256 ahead of its content, so an empty
 * file and a lost read are told apart; {@link Guest.writeFile} compares the SHA-256 of what
 * landed with the input's.
 *
 * @module
 */
import type { Backend, ExecResult } from "../backends/backend.ts";
import { fromBase64, toBase64 } from "../lib/shell.ts";
import { RuntimeError } from "../lib/errors.ts";
import { GuestCommandError } from "./errors.ts";

/** Who runs a guest command. */
export type GuestUser = "root" | "user";

/** Options of {@link Guest.run}. */
export interface GuestRunOptions {
  as?: GuestUser;
  stdin?: string | Uint8Array;
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  onStdout?: (chunk: Uint8Array) => void;
  onStderr?: (chunk: Uint8Array) => void;
}

/** Options of {@link Guest.shCheck}: how to run, and what is being done (for the error). */
export interface GuestCheckOptions extends GuestRunOptions {
  /** What the script does, for the error (`setting the hostname`). */
  what: string;
}

/** Options of {@link Guest.query}. */
export interface GuestQueryOptions extends GuestCheckOptions {
  /** Null when the answer is right, else why not (it is asked again). */
  accept?: (r: GuestResult) => string | null;
}

/** Who a {@link Guest} acts as, and what aborts its commands. */
export interface GuestOptions {
  /** The sandbox user (config `ssh_user`). */
  user: string;
  signal?: AbortSignal;
}

/** A finished guest command with text output. */
export interface GuestResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Raw stdout bytes. */
  bytes: Uint8Array;
}

const decoder = new TextDecoder();
/** Base64 characters per exec argument (Linux caps one argument at 128 KiB). */
const CHUNK = 96 * 1024;
const MISSING = 44;

/** How often a query whose output was lost (or did not add up) is run in all. */
export const QUERY_ATTEMPTS = 3;
const TRAILER = "tachikoma-output-end";
/** Runs the script `$1` with the other arguments, then prints the trailer and its exit code. */
const QUERY_WRAPPER = 's=$1; shift; sh -c "$s" tachikoma "$@"; rc=$?; ' +
  `printf '\\n${TRAILER} %s\\n' "$rc"; exit "$rc"`;
/** A regular file as `<size>\n<sha256>  -\n<base64>`; exit 44 when there is none. */
const READ_SCRIPT = 'if [ -f "$1" ]; then wc -c < "$1" && sha256sum < "$1" && base64 < "$1"; ' +
  "else exit 44; fi";
const SHA_SCRIPT = 'if [ -f "$1" ]; then sha256sum < "$1"; else exit 44; fi';
const WRITE_SCRIPT = [
  "set -eu",
  "umask 077",
  'mkdir -p -- "$(dirname -- "$1")"',
  't="$1.tachikoma-tmp"',
  'if [ "$4" = first ]; then printf %s "$2" > "$t.b64"; else printf %s "$2" >> "$t.b64"; fi',
  'if [ "$5" = last ]; then',
  '  base64 -d < "$t.b64" > "$t"',
  '  rm -f -- "$t.b64"',
  '  chmod "$3" "$t"',
  '  mv -f -- "$t" "$1"',
  '  sha256sum < "$1"',
  "fi",
].join("\n");

/** A command exited 0, but its output was lost or did not match what it had to be. */
export class GuestOutputError extends RuntimeError {
  constructor(what: string, detail: string) {
    super("guest_output", `${what}: ${detail}`, {
      hint: "the engine lost or garbled the command's output; retry (Incus loses output under " +
        "many concurrent commands)",
    });
  }
}

/** Provisioning's view of one sandbox. */
export class Guest {
  readonly backend: Backend;
  readonly sandbox: string;
  /** The sandbox user (config `ssh_user`). */
  readonly user: string;
  readonly signal?: AbortSignal;
  #home: string | null = null;
  /** The lookup under way (steps side by side share it). */
  #homeLookup: Promise<string> | null = null;

  constructor(backend: Backend, sandbox: string, options: GuestOptions) {
    this.backend = backend;
    this.sandbox = sandbox;
    this.user = options.user;
    this.signal = options.signal;
  }

  /** The user's home directory in the guest (from the passwd database). */
  home(): Promise<string> {
    if (this.#home) return Promise.resolve(this.#home);
    this.#homeLookup ??= this.#lookUpHome().finally(() => this.#homeLookup = null);
    return this.#homeLookup;
  }

  async #lookUpHome(): Promise<string> {
    // Output required: a lost answer must not pass for "no such user" (and a wrong home).
    let r = await this.run(["getent", "passwd", this.user], { as: "root" });
    for (let attempt = 1; attempt < QUERY_ATTEMPTS && r.code === 0 && !r.stdout.trim(); attempt++) {
      r = await this.run(["getent", "passwd", this.user], { as: "root" });
    }
    if (r.code === 0 && !r.stdout.trim()) {
      throw new GuestOutputError(`looking up ${this.user}`, "getent printed nothing, 3 times");
    }
    const fields = r.stdout.trim().split("\n")[0]?.split(":") ?? [];
    const fromPasswd = r.code === 0 && fields[5]?.startsWith("/") ? fields[5] : null;
    this.#home = fromPasswd ?? (this.user === "root" ? "/root" : `/home/${this.user}`);
    return this.#home;
  }

  /** Looks the home up first for a script the user runs (root's need not wait for it). */
  async #userHome(options: GuestRunOptions): Promise<void> {
    if ((options.as ?? "user") === "user" && this.#home === null) await this.home();
  }

  /** Runs `argv`; never throws for a non-zero exit. */
  async run(argv: string[], options: GuestRunOptions = {}): Promise<GuestResult> {
    this.signal?.throwIfAborted();
    const as = options.as ?? "user";
    let env = options.env;
    let cwd = options.cwd;
    if (as === "user" && this.#home !== null) {
      env = { HOME: this.#home, USER: this.user, LOGNAME: this.user, ...env };
      cwd ??= this.#home;
    }
    const r: ExecResult = await this.backend.exec(this.sandbox, {
      argv,
      user: as,
      env,
      cwd,
      stdin: options.stdin,
      timeoutMs: options.timeoutMs,
      signal: this.signal,
      onStdout: options.onStdout,
      onStderr: options.onStderr,
    });
    return {
      code: r.code,
      stdout: decoder.decode(r.stdout),
      stderr: decoder.decode(r.stderr),
      bytes: r.stdout,
    };
  }

  /** Runs `argv`; throws {@link GuestCommandError} (with the guest's stderr) unless it exits 0. */
  async check(argv: string[], what: string, options: GuestRunOptions = {}): Promise<GuestResult> {
    const r = await this.run(argv, options);
    if (r.code !== 0) throw new GuestCommandError(what, r.code, r.stderr || r.stdout);
    return r;
  }

  /** Runs a constant `sh` script with `args` as `$1…`; never throws for a non-zero exit. */
  async sh(script: string, args: string[], options: GuestRunOptions = {}): Promise<GuestResult> {
    await this.#userHome(options);
    return await this.run(["sh", "-c", script, "tachikoma", ...args], options);
  }

  /** Like {@link Guest.sh} but throws {@link GuestCommandError} on a non-zero exit. */
  async shCheck(script: string, args: string[], options: GuestCheckOptions): Promise<GuestResult> {
    const { what, ...run } = options;
    const r = await this.sh(script, args, run);
    if (r.code !== 0) throw new GuestCommandError(what, r.code, r.stderr || r.stdout);
    return r;
  }

  /**
   * Runs a read-only script whose output is required. The output must end with the trailer
   * the wrapper adds (it is removed); when it does not, or `accept` refuses it, the script is
   * run again, {@link QUERY_ATTEMPTS} times in all, then {@link GuestOutputError}. Never throws
   * for a non-zero exit (the trailer carries the script's own status).
   */
  async query(script: string, args: string[], options: GuestQueryOptions): Promise<GuestResult> {
    const { what, accept, ...run } = options;
    await this.#userHome(run);
    let why = "";
    for (let attempt = 1; attempt <= QUERY_ATTEMPTS; attempt++) {
      const raw = await this.run(["sh", "-c", QUERY_WRAPPER, "tachikoma", script, ...args], run);
      const r = stripTrailer(raw);
      if (r === null) {
        why = `exit ${raw.code} with ${raw.bytes.length === 0 ? "no output" : "cut output"}`;
        continue;
      }
      const refused = accept?.(r) ?? null;
      if (refused === null) return r;
      why = refused;
    }
    throw new GuestOutputError(what, `output lost ${QUERY_ATTEMPTS} times (last: ${why})`);
  }

  /**
   * A regular file's bytes, or null when there is none. The guest sends the size and SHA-256
   * first: a read whose output was lost or damaged is repeated, then fails — it is never taken
   * for an empty file.
   */
  async readFile(path: string, as: GuestUser = "user"): Promise<Uint8Array | null> {
    let why = "";
    for (let attempt = 1; attempt <= QUERY_ATTEMPTS; attempt++) {
      const r = await this.query(READ_SCRIPT, [path], { what: `reading ${path}`, as });
      if (r.code === MISSING) return null;
      if (r.code !== 0) throw new GuestCommandError(`reading ${path}`, r.code, r.stderr);
      const [size, sha, ...rest] = r.stdout.split("\n");
      if (!/^\s*\d+\s*$/.test(size ?? "") || !/^[0-9a-f]{64}\b/.test(sha ?? "")) {
        why = "no size/sha256 header";
        continue;
      }
      let data: Uint8Array;
      try {
        data = fromBase64(rest.join("").replace(/\s+/g, ""));
      } catch {
        why = "the content is not base64";
        continue;
      }
      if (data.length !== Number(size)) {
        why = `${data.length} of ${Number(size)} bytes arrived`;
        continue;
      }
      // A mismatch: damaged on the way, or the file changed while it was read.
      if (await sha256Hex(data) !== sha.slice(0, 64)) {
        why = "the content does not match its SHA-256";
        continue;
      }
      return data;
    }
    throw new GuestOutputError(`reading ${path}`, `no intact read in ${QUERY_ATTEMPTS} (${why})`);
  }

  /**
   * Writes `data` to `path` atomically (parents created), owned by `as`, with `mode`.
   * Content is carried base64 in argv chunks, never through a shell's parser.
   */
  async writeFile(
    path: string,
    data: Uint8Array | string,
    options: { as?: GuestUser; mode?: number } = {},
  ): Promise<void> {
    const mode = (options.mode ?? 0o644).toString(8).padStart(4, "0");
    const b64 = toBase64(data);
    const chunks: string[] = [];
    for (let i = 0; i < b64.length; i += CHUNK) chunks.push(b64.slice(i, i + CHUNK));
    if (chunks.length === 0) chunks.push("");
    let written = "";
    for (let i = 0; i < chunks.length; i++) {
      const r = await this.shCheck(
        WRITE_SCRIPT,
        [
          path,
          chunks[i],
          mode,
          i === 0 ? "first" : "more",
          i === chunks.length - 1 ? "last" : "more",
        ],
        { what: `writing ${path}`, as: options.as ?? "user" },
      );
      written = r.stdout;
    }
    const want = await sha256Hex(typeof data === "string" ? new TextEncoder().encode(data) : data);
    let got = written.slice(0, 64);
    if (!/^[0-9a-f]{64}$/.test(got)) {
      // The write's output was lost: ask for the hash of what landed.
      const r = await this.query(SHA_SCRIPT, [path], {
        what: `checking ${path}`,
        as: options.as ?? "user",
        accept: (r) => r.code === 0 && !/^[0-9a-f]{64}\b/.test(r.stdout) ? "no sha256" : null,
      });
      if (r.code !== 0) throw new GuestCommandError(`checking ${path}`, r.code, r.stderr);
      got = r.stdout.slice(0, 64);
    }
    if (got !== want) {
      throw new GuestOutputError(
        `writing ${path}`,
        `the file's SHA-256 (${got.slice(0, 12)}…) is not the input's (${want.slice(0, 12)}…)`,
      );
    }
  }
}

/** `r` without the query trailer, or null when the trailer is missing (output lost or cut). */
function stripTrailer(r: GuestResult): GuestResult | null {
  const text = r.stdout;
  const m = new RegExp(`\n${TRAILER} (\\d+)\n$`).exec(text);
  if (!m || Number(m[1]) !== r.code) return null;
  const stdout = text.slice(0, m.index);
  return { ...r, stdout, bytes: new TextEncoder().encode(stdout) };
}

/** SHA-256 of `data`, lowercase hex. */
async function sha256Hex(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
