/**
 * Running commands in a tart guest by the best route available:
 *
 * 1. SSH with tachikoma's key, once it is authorised (the normal case);
 * 2. before that (first key injection), `tart exec` when the Tart Guest Agent answers;
 * 3. else SSH with a password — tart's Ubuntu/Debian images have `admin`/`admin`
 *    (`TACHIKOMA_TART_PASSWORD`, empty to disable).
 *
 * While on a fallback route every call first retries the key, so the switch to SSH happens as
 * soon as provisioning has authorised it. Files travel through the same routes (stdin in,
 * base64 out), so they are binary-safe everywhere.
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
import type { Clock } from "../../lib/clock.ts";
import {
  ConflictError,
  NotFoundError,
  UnreachableError,
  UnsupportedError,
} from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { TartCli, type TartResolver } from "./cli.ts";
import {
  type GuestSsh,
  pullFileByExec,
  pushFileByExec,
  type SshTarget,
  tartExecArgv,
} from "./guest.ts";

/** How commands currently reach a guest. */
type Route = { kind: "ssh"; target: SshTarget } | { kind: "tart-exec" };

/** Settings of {@link GuestAccess}. */
export interface GuestAccessOptions {
  cli: TartCli;
  ssh: GuestSsh;
  clock: Clock;
  sshUser: string;
  sshPort: number;
  resolver: TartResolver;
  /** Password for the password-SSH fallback; null disables it. */
  password: string | null;
}

const encoder = new TextEncoder();
const AGENT_DOWN_RE = /Tart Guest Agent|control socket/;

/** Routes guest commands of tart VMs. */
export class GuestAccess {
  readonly sshPort: number;
  readonly #o: GuestAccessOptions;
  readonly #routes = new Map<string, Route>();
  readonly #addresses = new Map<string, string>();

  constructor(options: GuestAccessOptions) {
    this.#o = options;
    this.sshPort = options.sshPort;
  }

  /** The address learnt by waitForAddress in this process, if any. */
  cachedAddress(name: string): string | undefined {
    return this.#addresses.get(name);
  }

  /** Records a fresh address (after boot). */
  rememberAddress(name: string, ip: string): void {
    this.#addresses.set(name, ip);
    this.#routes.delete(name);
  }

  /** Forgets what is known about a VM (stopped, restarted or deleted), its SSH connections too. */
  forget(name: string): void {
    this.#addresses.delete(name);
    this.#routes.delete(name);
    this.#o.ssh.forget(name);
  }

  /** The VM's address; it must be running (a stopped VM's old DHCP lease is never used). */
  async address(name: string): Promise<string> {
    const cached = this.#addresses.get(name);
    if (cached) return cached;
    const vm = await this.#o.cli.find(name);
    if (!vm) throw new NotFoundError(`tart VM ${name} does not exist`);
    if (vm.state !== "running") {
      throw new ConflictError(`${name} is not running (${vm.state})`, {
        hint: `start it: tachikoma spawn (or tachikoma enter ${name})`,
      });
    }
    const ip = await this.#o.cli.ip(name, this.#o.resolver);
    if (!ip) {
      throw new UnreachableError(`${name} has no IP address yet`, {
        hint: `tart ip --wait 30 ${name}`,
      });
    }
    this.#addresses.set(name, ip);
    return ip;
  }

  /** Runs a command in the guest by the best available route. */
  async exec(name: string, request: ExecRequest): Promise<ExecResult> {
    const route = await this.#route(name, false);
    if (route.kind === "ssh") return await this.#o.ssh.exec(route.target, request);
    const result = await this.#o.cli.exec(name, tartExecArgv(request, this.#o.sshUser), {
      stdin: request.stdin,
      timeoutMs: request.timeoutMs,
      signal: request.signal,
    });
    if (TartCli.execNotRunning(result)) {
      this.forget(name);
      throw new ConflictError(`${name} is not running`);
    }
    if (result.code === 1 && AGENT_DOWN_RE.test(result.stderr)) {
      this.#routes.delete(name);
      throw new UnreachableError(`the tart guest agent of ${name} stopped answering`, {
        hint: "retry; tachikoma falls back to SSH when the agent is absent",
      });
    }
    if (result.timedOut) {
      throw new UnreachableError(`command in ${name} did not finish in time`);
    }
    const stdout = encoder.encode(result.stdout);
    const stderr = encoder.encode(result.stderr);
    if (stdout.length) request.onStdout?.(stdout);
    if (stderr.length) request.onStderr?.(stderr);
    return { code: result.code, stdout, stderr };
  }

  /** Opens a PTY session (SSH only: `tart exec -t` needs a real terminal). */
  async shell(name: string, request: ShellRequest): Promise<ShellSession> {
    const route = await this.#route(name, true);
    if (route.kind !== "ssh") {
      throw new UnsupportedError(`no SSH route to ${name} for an interactive shell`);
    }
    return await this.#o.ssh.shell(route.target, request);
  }

  /** Writes a file in the guest (parents created, atomic rename). */
  async pushFile(name: string, file: PushedFile): Promise<void> {
    await pushFileByExec((request) => this.exec(name, request), name, file);
  }

  /** Reads a file from the guest; NotFoundError when missing. */
  async pullFile(name: string, path: string): Promise<Uint8Array> {
    return await pullFileByExec((request) => this.exec(name, request), name, path);
  }

  /** Flushes the guest's page cache before a power-cut stop; never throws, 10 s at most. */
  async syncQuietly(name: string): Promise<void> {
    const abort = new AbortController();
    const timer = this.#o.clock.sleep(10_000, abort.signal).then(() => "timeout", () => "aborted");
    const sync = this.exec(name, { argv: ["sync"], timeoutMs: 10_000 }).then(
      () => "done",
      (error) => `failed: ${(error as Error).message}`,
    );
    const outcome = await Promise.race([sync, timer]);
    abort.abort();
    if (outcome !== "done") log.debug(`${name}: guest sync before stop ${outcome}`);
  }

  /** Closes SSH connections. */
  async close(): Promise<void> {
    await this.#o.ssh.close();
  }

  async #route(name: string, needPty: boolean): Promise<Route> {
    const cached = this.#routes.get(name);
    if (cached?.kind === "ssh" && cached.target.auth.kind === "key") return cached;
    const host = await this.address(name);
    const base = { sandbox: name, host, port: this.#o.sshPort, user: this.#o.sshUser };
    const keyTarget: SshTarget = { ...base, auth: { kind: "key" } };
    const started = this.#o.clock.now();
    const keyProbe = await this.#o.ssh.probe(keyTarget);
    log.debug(`${name}: SSH key probe: ${keyProbe} (${this.#o.clock.now() - started} ms)`);
    if (keyProbe === "ok") return this.#use(name, { kind: "ssh", target: keyTarget });
    if (cached && !(needPty && cached.kind === "tart-exec")) return cached;
    if (!needPty && await this.#agentAnswers(name)) {
      log.debug(`${name}: SSH key not usable (${keyProbe}); using tart exec`);
      return this.#use(name, { kind: "tart-exec" });
    }
    const password = this.#o.password;
    let passwordProbe = "disabled";
    if (password) {
      const target: SshTarget = { ...base, auth: { kind: "password", password } };
      passwordProbe = await this.#o.ssh.probe(target);
      if (passwordProbe === "ok") {
        log.debug(`${name}: SSH key not usable (${keyProbe}); using password SSH`);
        return this.#use(name, { kind: "ssh", target });
      }
    }
    throw new UnreachableError(
      `cannot run commands in ${name}: SSH with tachikoma's key: ${keyProbe}; ` +
        `${needPty ? "" : "tart guest agent: not answering; "}password SSH as ` +
        `${this.#o.sshUser}: ${passwordProbe}`,
      {
        hint:
          `check that sshd runs in the guest (tart ip ${name}; ssh ${this.#o.sshUser}@${host})` +
          "; TACHIKOMA_TART_PASSWORD sets the image's password",
      },
    );
  }

  #use(name: string, route: Route): Route {
    this.#routes.set(name, route);
    return route;
  }

  async #agentAnswers(name: string): Promise<boolean> {
    const result = await this.#o.cli.exec(name, ["true"], { timeoutMs: 20_000 });
    if (result.code === 0) return true;
    if (TartCli.execNotRunning(result)) throw new ConflictError(`${name} is not running`);
    log.debug(`${name}: tart exec probe: exit ${result.code}: ${result.stderr.trim()}`);
    return false;
  }
}
