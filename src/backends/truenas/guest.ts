/**
 * Commands and files in a TrueNAS instance: over SSH to its IPv4 address with tachikoma's key,
 * as the sandbox user (root through sudo), on the tart backend's SSH layer
 * ({@link GuestSsh}, `src/backends/tart/ssh_guest.ts`) and its files over exec
 * ({@link pushFileByExec}: stdin in, base64 out).
 * TrueNAS has no exec API, so nothing works before the first boot's sshd is up.
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
import { type GuestSsh, pullFileByExec, pushFileByExec, type SshTarget } from "../tart/guest.ts";

/** Where SSH reaches an instance (its address is looked up by the backend). */
export interface TruenasGuestOptions {
  ssh: GuestSsh;
  sshUser: string;
  sshPort: number;
  /** The running instance's IPv4 address (throws when it has none). */
  address(name: string): Promise<string>;
}

/** SSH access to TrueNAS instances. */
export class TruenasGuest {
  readonly #o: TruenasGuestOptions;

  constructor(options: TruenasGuestOptions) {
    this.#o = options;
  }

  /** Drops pooled connections of an instance (restarted, rolled back or deleted). */
  forget(name: string): void {
    this.#o.ssh.forget(name);
  }

  async #target(name: string): Promise<SshTarget> {
    return {
      sandbox: name,
      host: await this.#o.address(name),
      port: this.#o.sshPort,
      user: this.#o.sshUser,
      auth: { kind: "key" },
    };
  }

  /** Runs a command. */
  async exec(name: string, request: ExecRequest): Promise<ExecResult> {
    return await this.#o.ssh.exec(await this.#target(name), request);
  }

  /** Opens a PTY session. */
  async shell(name: string, request: ShellRequest): Promise<ShellSession> {
    return await this.#o.ssh.shell(await this.#target(name), request);
  }

  /** Writes a file (parents created, atomic rename). */
  async pushFile(name: string, file: PushedFile): Promise<void> {
    await pushFileByExec((request) => this.exec(name, request), name, file);
  }

  /** Reads a file; NotFoundError when missing. */
  async pullFile(name: string, path: string): Promise<Uint8Array> {
    return await pullFileByExec((request) => this.exec(name, request), name, path);
  }

  /** Closes SSH connections. */
  async close(): Promise<void> {
    await this.#o.ssh.close();
  }
}
