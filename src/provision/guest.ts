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
 * @module
 */
import type { Backend, ExecResult } from "../backends/backend.ts";
import { fromBase64, toBase64 } from "../lib/shell.ts";
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

const READ_SCRIPT = 'if [ -f "$1" ]; then exec base64 < "$1"; else exit 44; fi';
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
  "fi",
].join("\n");

/** Provisioning's view of one sandbox. */
export class Guest {
  readonly backend: Backend;
  readonly sandbox: string;
  /** The sandbox user (config `ssh_user`). */
  readonly user: string;
  readonly signal?: AbortSignal;
  #home: string | null = null;

  constructor(backend: Backend, sandbox: string, user: string, signal?: AbortSignal) {
    this.backend = backend;
    this.sandbox = sandbox;
    this.user = user;
    this.signal = signal;
  }

  /** The user's home directory in the guest (from the passwd database). */
  async home(): Promise<string> {
    if (this.#home) return this.#home;
    const r = await this.run(["getent", "passwd", this.user], { as: "root" });
    const fields = r.stdout.trim().split("\n")[0]?.split(":") ?? [];
    const fromPasswd = r.code === 0 && fields[5]?.startsWith("/") ? fields[5] : null;
    this.#home = fromPasswd ?? (this.user === "root" ? "/root" : `/home/${this.user}`);
    return this.#home;
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
    if (this.#home === null) await this.home();
    return await this.run(["sh", "-c", script, "tachikoma", ...args], options);
  }

  /** Like {@link Guest.sh} but throws {@link GuestCommandError} on a non-zero exit. */
  async shCheck(
    script: string,
    args: string[],
    what: string,
    options: GuestRunOptions = {},
  ): Promise<GuestResult> {
    const r = await this.sh(script, args, options);
    if (r.code !== 0) throw new GuestCommandError(what, r.code, r.stderr || r.stdout);
    return r;
  }

  /** A regular file's bytes, or null when there is none. */
  async readFile(path: string, as: GuestUser = "user"): Promise<Uint8Array | null> {
    const r = await this.sh(READ_SCRIPT, [path], { as });
    if (r.code === MISSING) return null;
    if (r.code !== 0) throw new GuestCommandError(`reading ${path}`, r.code, r.stderr);
    return fromBase64(r.stdout.replace(/\s+/g, ""));
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
    for (let i = 0; i < chunks.length; i++) {
      await this.shCheck(
        WRITE_SCRIPT,
        [
          path,
          chunks[i],
          mode,
          i === 0 ? "first" : "more",
          i === chunks.length - 1 ? "last" : "more",
        ],
        `writing ${path}`,
        { as: options.as ?? "user" },
      );
    }
  }
}
