/**
 * The tart command line, one method per subcommand: argv building and result handling, run
 * through an injected {@link CommandRunner} so unit tests script tart's answers.
 *
 * Argv follows tart-contract.md §3: options before positionals, `--format json` everywhere it
 * exists, `exec` with the guest argv passed verbatim after the VM name (no `--`, never `-t`).
 *
 * @module
 */
import type { StdinSource } from "../../lib/stdin.ts";
import type { CommandRunner, RunOptions, RunResult } from "../../lib/process.ts";
import { ConflictError, NotFoundError, UsageError } from "../../lib/errors.ts";
import { isDoesNotExist, isNotRunning, tartError } from "./errors.ts";
import {
  parseGet,
  parseIp,
  parseList,
  parseVersion,
  type TartListEntry,
  type TartVmDetails,
} from "./parse.ts";

/** `tart ip --resolver` values. */
export type TartResolver = "dhcp" | "arp" | "agent";

/** Options of {@link TartCli}. */
export interface TartCliOptions {
  /** The tart executable (default `tart`, looked up on PATH). */
  binary?: string;
  /** Extra environment for every call (tests: `TART_HOME`, fake switches). */
  env?: Record<string, string>;
  /** Per-call timeout for the short subcommands, in ms (default 120 000). */
  timeoutMs?: number;
}

/** Settings applied with `tart set`. */
export interface TartSetOptions {
  cpu?: number;
  memoryMb?: number;
  diskSizeGb?: number;
}

/** Options of {@link TartCli.exec}. */
export interface TartExecOptions {
  /** The guest's stdin, bytes or a stream (adds `-i`). */
  stdin?: StdinSource;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Outcome of {@link TartCli.stop}. */
export type StopOutcome = "stopped" | "was-not-running";

/** Local VM names: no `/` (tart rejects it) and nothing that could be read as an option. */
export function checkLocalName(name: string): void {
  if (name === "" || name.includes("/") || name.startsWith("-") || /[\s\0]/.test(name)) {
    throw new UsageError(`${JSON.stringify(name)} is not a usable tart VM name`);
  }
}

/** Wraps the tart CLI. */
export class TartCli {
  readonly binary: string;
  readonly #runner: CommandRunner;
  readonly #env?: Record<string, string>;
  readonly #timeoutMs: number;

  constructor(runner: CommandRunner, options: TartCliOptions = {}) {
    this.#runner = runner;
    this.binary = options.binary ?? "tart";
    this.#env = options.env;
    this.#timeoutMs = options.timeoutMs ?? 120_000;
  }

  /** Extra environment passed to every tart call. */
  get env(): Record<string, string> | undefined {
    return this.#env;
  }

  /** Runs `tart <args>`; the raw result (no error mapping). */
  raw(args: string[], options: RunOptions = {}): Promise<RunResult> {
    return this.#runner.run(this.binary, args, {
      timeoutMs: this.#timeoutMs,
      ...options,
      env: this.#env === undefined ? options.env : { ...this.#env, ...options.env },
    });
  }

  async #ok(sub: string, args: string[], vm?: string): Promise<RunResult> {
    const result = await this.raw(args);
    if (result.code !== 0) throw tartError(sub, result, vm);
    return result;
  }

  /** `tart --version`. */
  async version(): Promise<string> {
    return parseVersion((await this.#ok("--version", ["--version"])).stdout);
  }

  /** `tart list --format json`: local VMs and OCI cache entries. */
  async list(): Promise<TartListEntry[]> {
    return parseList((await this.#ok("list", ["list", "--format", "json"])).stdout);
  }

  /** The local VM named exactly `name`, or undefined. */
  async find(name: string): Promise<TartListEntry | undefined> {
    return (await this.list()).find((e) => e.source === "local" && e.name === name);
  }

  /** `tart get NAME --format json`; NotFoundError when missing. */
  async get(name: string): Promise<TartVmDetails> {
    checkLocalName(name);
    return parseGet((await this.#ok("get", ["get", name, "--format", "json"], name)).stdout);
  }

  /**
   * `tart clone SOURCE NAME`, refusing to overwrite: tart replaces an existing target silently,
   * even a running one, so the target must not be listed. NotFoundError when SOURCE is missing.
   */
  async clone(source: string, name: string): Promise<void> {
    checkLocalName(name);
    if (source === "" || source.startsWith("-")) {
      throw new UsageError(`${JSON.stringify(source)} is not a usable tart image name`);
    }
    if (await this.find(name)) {
      throw new ConflictError(`a tart VM named ${JSON.stringify(name)} already exists`, {
        hint: `pick another name or delete it: tart delete ${name}`,
      });
    }
    const result = await this.raw(["clone", source, name], { timeoutMs: 3_600_000 });
    if (result.code === 0) return;
    if (result.code === 2 && isDoesNotExist(result)) {
      throw new NotFoundError(`tart image ${JSON.stringify(source)} does not exist`, {
        hint: `pull it first, e.g. tart clone ghcr.io/cirruslabs/ubuntu:latest ${source}`,
      });
    }
    throw tartError("clone", result, `${source} ${name}`);
  }

  /** `tart set NAME --cpu N --memory MB --disk-size GB` (only the given settings). */
  async set(name: string, options: TartSetOptions): Promise<void> {
    checkLocalName(name);
    const args = ["set", name];
    if (options.cpu !== undefined) args.push("--cpu", String(positive(options.cpu, "cpus")));
    if (options.memoryMb !== undefined) {
      args.push("--memory", String(positive(options.memoryMb, "memory")));
    }
    if (options.diskSizeGb !== undefined) {
      args.push("--disk-size", String(positive(options.diskSizeGb, "disk size")));
    }
    if (args.length === 2) return;
    await this.#ok("set", args, name);
  }

  /**
   * `tart stop NAME --timeout S`. A stopped VM (tart: exit 2 "is not running") is success;
   * a missing one is NotFoundError.
   */
  async stop(name: string, timeoutSecs: number): Promise<StopOutcome> {
    checkLocalName(name);
    const secs = Math.max(0, Math.floor(timeoutSecs));
    const result = await this.raw(["stop", name, "--timeout", String(secs)], {
      timeoutMs: (secs + 60) * 1000,
    });
    if (result.code === 0) return "stopped";
    if (result.code === 2 && isNotRunning(result)) return "was-not-running";
    throw tartError("stop", result, name);
  }

  /** `tart rename NAME NEW` (NEW must not exist). */
  async rename(name: string, next: string): Promise<void> {
    checkLocalName(name);
    checkLocalName(next);
    await this.#ok("rename", ["rename", name, next], name);
  }

  /** `tart delete NAME`. Returns false when it did not exist (exit 2). */
  async delete(name: string): Promise<boolean> {
    checkLocalName(name);
    const result = await this.raw(["delete", name]);
    if (result.code === 0) return true;
    if (result.code === 2 && isDoesNotExist(result)) return false;
    throw tartError("delete", result, name);
  }

  /**
   * `tart ip NAME --wait W --resolver R`: the address, or null when tart found none (exit 1).
   * NotFoundError when the VM is missing. `waitSecs` defaults to 0 (ask once).
   */
  async ip(
    name: string,
    resolver: TartResolver,
    options: { waitSecs?: number; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<string | null> {
    checkLocalName(name);
    const wait = Math.min(65535, Math.max(0, Math.floor(options.waitSecs ?? 0)));
    const result = await this.raw(
      ["ip", name, "--wait", String(wait), "--resolver", resolver],
      { timeoutMs: options.timeoutMs ?? (wait + 30) * 1000, signal: options.signal },
    );
    if (result.code === 0) return parseIp(result.stdout);
    if (result.code === 2 && !result.timedOut) throw tartError("ip", result, name);
    return null; // "no IP address found" (exit 1), or killed at the caller's deadline
  }

  /**
   * `tart exec [-i] NAME ARGV…`: the guest's exit code and output, unmapped. `-i` is added only
   * when there is stdin; `-t` is never used (tart needs a TTY for it).
   */
  exec(name: string, argv: string[], options: TartExecOptions = {}): Promise<RunResult> {
    checkLocalName(name);
    if (argv.length === 0) throw new UsageError("tart exec needs a command");
    const args = ["exec"];
    if (options.stdin !== undefined) args.push("-i");
    args.push(name, ...argv);
    return this.raw(args, {
      stdin: options.stdin,
      timeoutMs: options.timeoutMs ?? 3_600_000,
      signal: options.signal,
    });
  }

  /** The argv of `tart run` (without the binary). */
  runArgs(
    name: string,
    options: { noGraphics: boolean; dirs: string[]; net?: string[] },
  ): string[] {
    checkLocalName(name);
    return [
      "run",
      ...(options.noGraphics ? ["--no-graphics"] : []),
      ...options.dirs,
      ...(options.net ?? []),
      name,
    ];
  }

  /** True when a failed exec means "VM not running" (exit 2). */
  static execNotRunning(result: RunResult): boolean {
    return result.code === 2 && isNotRunning(result);
  }
}

function positive(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new UsageError(`${what} must be a whole number ≥ 1, got ${value}`);
  }
  return value;
}
