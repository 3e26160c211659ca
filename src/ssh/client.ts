/**
 * SSH to a sandbox with the npm `ssh2` client (loaded lazily: only commands that open a
 * connection pay for it). Host keys are checked against tachikoma's pinned known_hosts
 * ({@link KnownHosts}); authentication uses tachikoma's own key only.
 *
 * Remote commands are built from an argv with the one quoting path, `quoteArgv` from
 * `src/lib/shell.ts`; environment variables and the working directory become part of that argv
 * (`cd '<dir>' && exec env 'K=V' … '<argv>'`), never string-pasted.
 *
 * @module
 */
import type { Client, ClientChannel, ConnectConfig } from "ssh2";
import type { ShellSession, TermSize } from "../lib/terminal.ts";
import { errorMessage, RuntimeError, TimeoutError, UnreachableError } from "../lib/errors.ts";
import { isEnvName, quote, quoteArgv } from "../lib/shell.ts";
import { pumpStdin, type StdinSource } from "../lib/stdin.ts";
import { algorithmsForKeyType, type KnownHosts } from "./known_hosts.ts";
import { HostKeyGate } from "./host_key_gate.ts";
import { channelSession, concat, ExecRun, signalExitCode } from "./channel.ts";

export { signalExitCode } from "./channel.ts";

/** Where and as whom to connect. */
export interface SshTarget {
  /** IP address or host name. */
  host: string;
  port: number;
  user: string;
  /** The sandbox name: the key under which its host key is pinned. */
  alias: string;
  /** The sandbox's state `created_at` (a newer sandbox may present a new host key). */
  createdAt?: string | null;
}

/** Options of {@link connectSsh}. */
export interface SshConnectOptions {
  /** The private key (OpenSSH format). */
  privateKey: string | Uint8Array;
  knownHosts: KnownHosts;
  /** Handshake budget (default 15 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Forward the local ssh-agent (`$SSH_AUTH_SOCK`). */
  agentForward?: boolean;
}

/** Options of {@link SshConnection.exec}. */
export interface SshExecOptions {
  /** Bytes or text, or a stream forwarded as it arrives (with backpressure). */
  stdin?: StdinSource;
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  onStdout?: (chunk: Uint8Array) => void;
  onStderr?: (chunk: Uint8Array) => void;
}

/** What a remote command produced. */
export interface SshExecResult {
  /** Exit code; 128+n when killed by signal n. */
  code: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** The signal name when the command was killed by one. */
  signal?: string;
}

/** An interactive session request. */
export interface SshShellRequest {
  size: TermSize;
  /** Run this instead of the login shell (still with a PTY). */
  argv?: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** `$TERM` for the PTY (default: the local `$TERM`, else xterm-256color). */
  term?: string;
}

/**
 * The remote command line for `argv`, run in `cwd` with `env` added: built only with
 * `quoteArgv`/`quote`, so every value arrives byte-exact. Throws on an invalid env name.
 */
export function remoteCommand(
  argv: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): string {
  if (argv.length === 0) throw new Error("remoteCommand: empty argv");
  const envArgs = Object.entries(options.env ?? {}).map(([k, v]) => {
    if (!isEnvName(k)) throw new Error(`invalid environment variable name: ${JSON.stringify(k)}`);
    return `${k}=${v}`;
  });
  const full = envArgs.length ? ["env", ...envArgs, ...argv] : argv;
  const line = quoteArgv(full);
  return options.cwd === undefined ? line : `cd ${quote(options.cwd)} && exec ${line}`;
}

type Ssh2Module = typeof import("ssh2");
let ssh2Module: Promise<Ssh2Module> | undefined;
function loadSsh2(): Promise<Ssh2Module> {
  ssh2Module ??= import("ssh2");
  return ssh2Module;
}

/** Opens an SSH connection to a sandbox. */
export async function connectSsh(
  target: SshTarget,
  options: SshConnectOptions,
): Promise<SshConnection> {
  options.signal?.throwIfAborted();
  const { Client } = await loadSsh2();
  const gate = await HostKeyGate.open(options.knownHosts, target.alias, target.createdAt);
  const client = new Client();
  const where = `${target.user}@${target.host}:${target.port}`;
  const config: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.user,
    privateKey: typeof options.privateKey === "string"
      ? options.privateKey
      : new TextDecoder().decode(options.privateKey),
    readyTimeout: options.timeoutMs ?? 15_000,
    keepaliveInterval: 15_000,
    keepaliveCountMax: 4,
    hostVerifier: gate.verifier,
  };
  if (options.agentForward && Deno.env.get("SSH_AUTH_SOCK")) {
    config.agent = Deno.env.get("SSH_AUTH_SOCK");
    config.agentForward = true;
  }
  if (gate.pins.length > 0) {
    // Negotiate a key type we have pinned (like OpenSSH's preference for known key types).
    const algos = [...new Set(gate.pins.flatMap((p) => algorithmsForKeyType(p.type)))];
    (config as { algorithms?: unknown }).algorithms = { serverHostKey: algos };
  }
  try {
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        client.end();
        reject(options.signal?.reason);
      };
      options.signal?.addEventListener("abort", onAbort, { once: true });
      const settle = (error?: unknown) => {
        options.signal?.removeEventListener("abort", onAbort);
        if (error === undefined) resolve();
        else reject(error);
      };
      client.once("ready", () => settle());
      client.once("error", (error: Error & { level?: string; code?: string }) => {
        client.end();
        settle(mapConnectError(error, target, where));
      });
      try {
        client.connect(config);
      } catch (error) {
        settle(mapConnectError(error as Error, target, where));
      }
    });
    await gate.commit();
  } catch (error) {
    client.end();
    if (gate.refused) throw await gate.refusal();
    throw error;
  }
  return new SshConnection(client, target);
}

function mapConnectError(
  error: Error & { level?: string; code?: string },
  target: SshTarget,
  where: string,
): Error {
  const message = errorMessage(error);
  if (error.level === "client-authentication") {
    return new RuntimeError(
      "ssh_auth",
      `sandbox '${target.alias}' (${where}) rejected tachikoma's SSH key`,
      {
        cause: error,
        hint: "re-inject the key with `tachikoma spawn --reprovision` (step ssh_key)",
      },
    );
  }
  if (/timed out/i.test(message)) {
    return new TimeoutError(`SSH to sandbox '${target.alias}' (${where}) timed out: ${message}`, {
      cause: error,
    });
  }
  if (/handshake failed/i.test(message) && /host key/i.test(message)) {
    return new RuntimeError(
      "host_key",
      `sandbox '${target.alias}' offers no host key of the pinned type: ${message}`,
      { hint: `if you recreated it yourself, run \`tachikoma ssh forget ${target.alias}\`` },
    );
  }
  return new UnreachableError(
    `cannot reach sandbox '${target.alias}' over SSH at ${where}: ${message}`,
    { cause: error, hint: "is the sandbox running? `tachikoma status`" },
  );
}

/** An open SSH connection. */
export class SshConnection {
  readonly #client: Client;
  readonly #target: SshTarget;
  #closed = false;
  #lost: Error | null = null;

  constructor(client: Client, target: SshTarget) {
    this.#client = client;
    this.#target = target;
    client.on("error", (error: Error) => {
      this.#lost = error;
    });
    client.on("close", () => {
      this.#closed = true;
    });
  }

  /** The target this connection reaches. */
  get target(): SshTarget {
    return this.#target;
  }

  /** False once the connection closed (the guest stopped, the network dropped it, or close()). */
  get isOpen(): boolean {
    return !this.#closed;
  }

  #lostError(): UnreachableError {
    const reason = this.#lost ? `: ${errorMessage(this.#lost)}` : "";
    return new UnreachableError(`SSH connection to sandbox '${this.#target.alias}' lost${reason}`);
  }

  /**
   * Opens a channel and runs `setup` on it synchronously inside ssh2's callback, before any
   * event can be emitted (awaiting first would lose an early `exit`, `data` or `close`).
   */
  #open<T>(
    kind: "exec" | "shell",
    request: { command: string | null; pty: SshShellRequest | null },
    setup: (channel: ClientChannel) => T,
  ): Promise<T> {
    const { command, pty } = request;
    return new Promise<T>((resolve, reject) => {
      if (this.#closed) return reject(this.#lostError());
      const cb = (error: Error | undefined, channel: ClientChannel) => {
        if (error) {
          reject(new RuntimeError("ssh_channel", `cannot open an SSH ${kind}: ${error.message}`));
        } else resolve(setup(channel));
      };
      const window = pty
        ? {
          rows: pty.size.rows,
          cols: pty.size.cols,
          term: pty.term ?? Deno.env.get("TERM") ?? "xterm-256color",
        }
        : undefined;
      try {
        if (command === null) this.#client.shell(window ?? false, cb);
        else if (window) this.#client.exec(command, { pty: window }, cb);
        else this.#client.exec(command, cb);
      } catch (error) {
        reject(this.#lost ? this.#lostError() : error);
      }
    });
  }

  /** Runs `argv` to completion (no PTY); the exit code is the command's. */
  async exec(argv: string[], options: SshExecOptions = {}): Promise<SshExecResult> {
    options.signal?.throwIfAborted();
    const run = await this.#open(
      "exec",
      { command: remoteCommand(argv, options), pty: null },
      (channel) => new ExecRun(channel, options),
    );
    const { channel } = run;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stopped = new Promise<never>((_, reject) => {
      const kill = (error: unknown) => {
        try {
          channel.signal("KILL");
        } catch { /* the server may not support signals */ }
        channel.close();
        reject(error);
      };
      const onAbort = () => kill(options.signal?.reason);
      options.signal?.addEventListener("abort", onAbort, { once: true });
      run.done.finally(() => options.signal?.removeEventListener("abort", onAbort));
      if (options.signal?.aborted) return onAbort(); // aborted while the channel opened
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() =>
          kill(
            new TimeoutError(
              `command in sandbox '${this.#target.alias}' timed out after ${options.timeoutMs} ms`,
            ),
          ), options.timeoutMs);
      }
    });
    stopped.catch(() => {});
    const inputDone = new AbortController();
    if (options.stdin === undefined) channel.end();
    else {
      pumpStdin(options.stdin, {
        write: (chunk) =>
          channel.write(chunk) || inputDone.signal.aborted ? undefined : new Promise<void>(
            (resolve) => {
              const done = () => {
                channel.off("drain", done);
                channel.off("close", done);
                inputDone.signal.removeEventListener("abort", done);
                resolve();
              };
              channel.once("drain", done);
              channel.once("close", done);
              inputDone.signal.addEventListener("abort", done, { once: true });
            },
          ),
        end: () => channel.end(),
      }, inputDone.signal);
    }
    try {
      await Promise.race([run.done, stopped]);
    } finally {
      inputDone.abort();
      clearTimeout(timer);
    }
    if (run.code === null && run.signal === undefined) throw this.#lostError();
    return {
      code: run.code ?? signalExitCode(run.signal!),
      stdout: concat(run.out),
      stderr: concat(run.err),
      ...(run.signal ? { signal: run.signal } : {}),
    };
  }

  /**
   * Opens an interactive PTY session: the login shell, or `argv` (with `env`/`cwd`, the login
   * shell is started through `env` in that directory).
   */
  async shell(request: SshShellRequest): Promise<ShellSession> {
    let command: string | null = null;
    if (request.argv?.length) command = remoteCommand(request.argv, request);
    else if (request.env || request.cwd !== undefined) {
      // The login shell itself, with env and cwd: `exec env K=V "${SHELL:-/bin/sh}" -l`.
      const cd = request.cwd === undefined ? "" : `cd ${quote(request.cwd)} && `;
      command = `${cd}exec ${quoteArgv(["env", ...envPairs(request.env)])} "\${SHELL:-/bin/sh}" -l`;
    }
    return await this.#open(
      "shell",
      { command, pty: request },
      (channel) => channelSession(channel, () => this.#lostError()),
    );
  }

  /** Closes the connection. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      // A dead peer never confirms the close: don't wait for it longer than 2 s.
      const timer = setTimeout(resolve, 2_000);
      this.#client.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      this.#client.end();
    });
  }
}

function envPairs(env: Record<string, string> | undefined): string[] {
  return Object.entries(env ?? {}).map(([k, v]) => {
    if (!isEnvName(k)) throw new Error(`invalid environment variable name: ${JSON.stringify(k)}`);
    return `${k}=${v}`;
  });
}
