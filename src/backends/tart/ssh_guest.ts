/**
 * {@link GuestSsh} on top of `src/ssh/`: pooled connections per sandbox and auth kind, host keys
 * checked against tachikoma's pinned known_hosts, `root` reached with `sudo -n`.
 *
 * Key auth uses `connectSsh` with `~/.ssh/tachikoma`. The password fallback (tart's images:
 * admin/admin, used only before tachikoma's key is authorised) opens its ssh2 client here with
 * the same host-key check and wraps it in the same {@link SshConnection}.
 *
 * @module
 */
import type { Client, ConnectConfig } from "ssh2";
import type { ExecRequest, ExecResult, ShellRequest, ShellSession } from "../backend.ts";
import type { Config } from "../../config/schema.ts";
import type { BackendContext } from "../backend.ts";
import {
  errorMessage,
  RuntimeError,
  TimeoutError,
  UnreachableError,
  UsageError,
} from "../../lib/errors.ts";
import { isEnvName } from "../../lib/shell.ts";
import { registerSecret } from "../../lib/redact.ts";
import { paths } from "../../config/paths.ts";
import { connectSsh, SshConnection, type SshTarget as Ssh2Target } from "../../ssh/client.ts";
import { KnownHosts } from "../../ssh/known_hosts.ts";
import { HostKeyGate } from "../../ssh/host_key_gate.ts";
import { keyPaths } from "../../ssh/keys.ts";
import type { GuestSsh, SshProbe, SshTarget } from "./guest.ts";

/** Options of {@link SshGuest}. */
export interface SshGuestOptions {
  knownHosts: KnownHosts;
  /** Path of tachikoma's private key. */
  privateKeyPath: string;
  /** Handshake budget (ms). */
  connectTimeoutMs?: number;
}

/** The real SSH layer of the tart backend. */
export class SshGuest implements GuestSsh {
  readonly #o: SshGuestOptions;
  readonly #pool = new Map<string, Promise<SshConnection>>();

  constructor(options: SshGuestOptions) {
    this.#o = options;
  }

  async probe(target: SshTarget): Promise<SshProbe> {
    if (target.auth.kind === "key" && !(await this.#readKey())) return "auth-failed";
    try {
      await this.#connection(target);
      return "ok";
    } catch (error) {
      if (error instanceof RuntimeError && error.code === "ssh_auth") return "auth-failed";
      if (error instanceof UnreachableError || error instanceof TimeoutError) return "unreachable";
      throw error; // host key mismatch and anything unexpected
    }
  }

  async exec(target: SshTarget, request: ExecRequest): Promise<ExecResult> {
    const { argv, env } = asUser(target, request);
    const run = async () =>
      await (await this.#connection(target)).exec(argv, {
        env,
        cwd: request.cwd,
        stdin: request.stdin,
        timeoutMs: request.timeoutMs,
        signal: request.signal,
        onStdout: request.onStdout,
        onStderr: request.onStderr,
      });
    try {
      const r = await run();
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    } catch (error) {
      // A pooled connection may have died (guest restarted): reconnect once.
      if (!(error instanceof UnreachableError) || !/lost/.test(error.message)) throw error;
      this.#drop(this.#key(target));
      const r = await run();
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    }
  }

  async shell(target: SshTarget, request: ShellRequest): Promise<ShellSession> {
    let argv = request.argv;
    if (request.user === "root" && target.user !== "root") {
      argv = argv?.length ? ["sudo", "-n", "-H", "--", ...argv] : ["sudo", "-n", "-i"];
    }
    const connection = await this.#connection(target);
    return await connection.shell({ size: request.size, argv, env: request.env, cwd: request.cwd });
  }

  forget(sandbox: string): void {
    for (const key of [...this.#pool.keys()]) {
      if (key.startsWith(`${sandbox}|`)) this.#drop(key);
    }
  }

  async close(): Promise<void> {
    const all = [...this.#pool.values()];
    this.#pool.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close(), () => {})));
  }

  #key(target: SshTarget): string {
    const secret = target.auth.kind === "password" ? target.auth.password : "";
    return [target.sandbox, target.host, target.port, target.user, target.auth.kind, secret].join(
      "|",
    );
  }

  #drop(key: string): void {
    const existing = this.#pool.get(key);
    this.#pool.delete(key);
    existing?.then((c) => c.close(), () => {});
  }

  /** The pooled connection to `target`, opened (again) when there is none or it closed. */
  async #connection(target: SshTarget): Promise<SshConnection> {
    const key = this.#key(target);
    const pooled = this.#pool.get(key);
    if (pooled) {
      const connection = await pooled.catch(() => null);
      if (connection?.isOpen) return connection;
      // Closed meanwhile (the guest restarted) or failed: replace it, unless someone already did.
      if (this.#pool.get(key) === pooled) this.#pool.delete(key);
      if (this.#pool.has(key)) return await this.#connection(target);
    }
    const pending = this.#open(target);
    this.#pool.set(key, pending);
    pending.catch(() => {
      if (this.#pool.get(key) === pending) this.#pool.delete(key);
    });
    return await pending;
  }

  async #readKey(): Promise<string | null> {
    try {
      return await Deno.readTextFile(this.#o.privateKeyPath);
    } catch {
      return null;
    }
  }

  async #open(target: SshTarget): Promise<SshConnection> {
    const ssh2Target: Ssh2Target = {
      host: target.host,
      port: target.port,
      user: target.user,
      alias: target.sandbox,
    };
    if (target.auth.kind === "key") {
      const privateKey = await this.#readKey();
      if (privateKey === null) {
        throw new RuntimeError("ssh_auth", `no SSH key at ${this.#o.privateKeyPath}`);
      }
      return await connectSsh(ssh2Target, {
        privateKey,
        knownHosts: this.#o.knownHosts,
        timeoutMs: this.#o.connectTimeoutMs,
      });
    }
    return await this.#openWithPassword(ssh2Target, target.auth.password);
  }

  async #openWithPassword(target: Ssh2Target, password: string): Promise<SshConnection> {
    registerSecret(password);
    const { Client } = await import("ssh2");
    // Host keys are judged inside the handshake, synchronously (see src/ssh/host_key_gate.ts).
    const gate = await HostKeyGate.open(this.#o.knownHosts, target.alias);
    const client: Client = new Client();
    const where = `${target.user}@${target.host}:${target.port}`;
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      password,
      tryKeyboard: false,
      readyTimeout: this.#o.connectTimeoutMs ?? 15_000,
      hostVerifier: gate.verifier,
    };
    try {
      await new Promise<void>((resolve, reject) => {
        client.once("ready", () => resolve());
        client.once("error", (error: Error & { level?: string }) => {
          client.end();
          if (error.level === "client-authentication") {
            return reject(
              new RuntimeError("ssh_auth", `${target.alias} (${where}) rejected the password`),
            );
          }
          reject(
            new UnreachableError(
              `cannot reach ${target.alias} over SSH at ${where}: ${errorMessage(error)}`,
            ),
          );
        });
        client.connect(config);
      });
      await gate.commit();
    } catch (error) {
      client.end();
      if (gate.refused) throw await gate.refusal();
      throw error;
    }
    return new SshConnection(client, target);
  }
}

/** Wraps argv for `user` (root through `sudo -n`, which drops the caller's environment). */
function asUser(
  target: SshTarget,
  request: Pick<ExecRequest, "user" | "argv" | "env">,
): { argv: string[]; env?: Record<string, string> } {
  const { user, argv, env } = request;
  if (user !== "root" || target.user === "root") return { argv, env };
  const pairs = Object.entries(env ?? {}).map(([k, v]) => {
    if (!isEnvName(k)) {
      throw new UsageError(`invalid environment variable name: ${JSON.stringify(k)}`);
    }
    return `${k}=${v}`;
  });
  return { argv: ["sudo", "-n", "-H", "--", ...(pairs.length ? ["env", ...pairs] : []), ...argv] };
}

/** The SSH layer for `config` (known_hosts in the state directory, key in `~/.ssh`). */
export function openGuestSsh(_config: Config, context: BackendContext): SshGuest {
  return new SshGuest({
    knownHosts: new KnownHosts(paths(context.stateDir).knownHosts),
    privateKeyPath: keyPaths().privatePath,
  });
}
