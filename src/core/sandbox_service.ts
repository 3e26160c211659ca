/**
 * The sandbox API shared by the CLI commands and the MCP server: spawn, list, status, exec,
 * enter, halt, suspend, destroy, prune and `[name]` resolution, over explicit dependencies
 * ({@link LifecycleDeps}). Commands only parse, call this and print.
 *
 * @module
 */
import type { Backend, ExecResult } from "../backends/backend.ts";
import type { SandboxRecord } from "../state/schema.ts";
import { withSandboxLock } from "../state/lock.ts";
import { openRepo, type RepoContext } from "../git/repo.ts";
import { openRepoHere } from "./repo_here.ts";
import { errorMessage, NotFoundError, UnreachableError, UsageError } from "../lib/errors.ts";
import {
  isInterrupt,
  isNotFound,
  iso,
  type LifecycleDeps,
  once,
  patchRecord,
  stopTimeoutMs,
  touch,
  usedRecently,
} from "./lifecycle.ts";
import { resolveRecord } from "./resolve.ts";
import { listSandboxes, type ListScope, liveView, liveWarnings, viewOf } from "./inventory.ts";
// spawn and worktree removal are imported when used: list, status and exec start faster.
import type { SpawnRequest, SpawnResult } from "./spawn.ts";
import { GUEST_CODE_DIR } from "../provision/shares.ts";
import { revokeProxyToken } from "./proxy_link.ts";
import { ensureRunning, type StartPolicy } from "./auto_start.ts";
import { loginArgv } from "../lib/shell.ts";
import { sessionEnv } from "../config/guest_env.ts";

import type {
  DestroyOutcome,
  ExecOptions,
  ListResult,
  PruneEntry,
  PruneResult,
  StatusResult,
  StopResult,
} from "./service_types.ts";

/** The sandbox API. One instance per command (or MCP session) and working directory. */
export class SandboxService {
  readonly deps: LifecycleDeps;
  readonly cwd: string;
  readonly backend: () => Promise<Backend>;
  #repo: Promise<RepoContext | null> | undefined;

  constructor(deps: LifecycleDeps, cwd: string) {
    this.backend = once(deps.backend);
    this.deps = { ...deps, backend: this.backend };
    this.cwd = cwd;
  }

  /** The repo around cwd, or null outside one (git runs once). */
  repo(): Promise<RepoContext | null> {
    this.#repo ??= openRepoHere(this.deps, this.cwd).catch((error) => {
      if (error instanceof UsageError) return null;
      throw error;
    });
    return this.#repo;
  }

  /** Creates, restarts or reuses the sandbox of a branch (see `spawn.ts`). */
  async spawn(request: Omit<SpawnRequest, "cwd">): Promise<SpawnResult> {
    const { spawnSandbox } = await import("./spawn.ts");
    return await spawnSandbox(this.deps, { ...request, cwd: this.cwd });
  }

  /** The record `name` designates (full name, branch of this repo, unique prefix). */
  async resolve(name?: string): Promise<SandboxRecord> {
    // Without a name the repo decides: ask git while the state file is read.
    if (name === undefined) void this.repo().catch(() => {});
    const records = (await this.deps.store.read()).vms;
    const exact = name ? records.find((r) => r.name === name) : undefined;
    if (exact) return exact;
    return resolveRecord(records, name, await this.repo());
  }

  /** Records merged with live status. Default scope: this repo inside one, else all. */
  list(options: ListScope = {}): Promise<ListResult> {
    return listSandboxes({
      records: async () => (await this.deps.store.read()).vms,
      backend: this.backend,
      configuredBackend: this.deps.config.backend,
      repo: () => this.repo(),
    }, options);
  }

  /** One sandbox, merged with its live status. */
  async status(name?: string): Promise<StatusResult> {
    let record = await this.resolve(name);
    const live = await liveView(this.backend);
    const backendName = await this.#backendName();
    const warnings = liveWarnings([record], live, backendName);
    const running = live.ok && live.byName.get(record.name)?.state === "running";
    const backend = running ? await this.backend() : null;
    if (backend?.capabilities.mountHost === false && record.backend === backendName) {
      // Code by git: the guest is asked where its branch stands (and it is recorded).
      const { refreshCodeSync } = await import("./code_sync.ts");
      try {
        const code_sync = await refreshCodeSync(this.deps, { backend, record });
        record = { ...record, code_sync };
      } catch (error) {
        warnings.push(`cannot ask ${record.name} where its branch stands: ${errorMessage(error)}`);
      }
    }
    return { sandbox: viewOf(record, live, backendName), warnings };
  }

  /**
   * The running sandbox `name` designates, ready for exec or a shell; updates `last_used`.
   * With `start`, a stopped or suspended sandbox is started first (with a notice); otherwise
   * throws ConflictError (with the way out) when it is not running.
   */
  async ready(
    name?: string,
    policy: StartPolicy = { start: false },
  ): Promise<{ record: SandboxRecord; backend: Backend }> {
    const [found, backend] = await Promise.all([this.resolve(name), this.backend()]);
    const record = await ensureRunning(this.deps, { backend, record: found }, policy);
    await touch(this.deps.store, record.name, this.deps.clock);
    return { record, backend };
  }

  /**
   * Runs a command in the sandbox, in its login environment unless `raw`; the result carries
   * the remote exit code. The command is sent straight away (every engine refuses to exec in a
   * sandbox that is not running); only when that fails is the live state asked for: to start
   * the sandbox and send it again (`start`), or to say why and what to do.
   */
  async exec(
    name: string | undefined,
    options: ExecOptions,
  ): Promise<ExecResult & { name: string }> {
    if (options.argv.length === 0) throw new UsageError("exec needs a command (after --)");
    const [record, backend] = await Promise.all([this.resolve(name), this.backend()]);
    // Trying to use a sandbox counts as using it (prune keeps it): recorded meanwhile, unless
    // it was recorded less than a minute ago.
    const touched = usedRecently(record, this.deps.clock)
      ? Promise.resolve()
      : touch(this.deps.store, record.name, this.deps.clock);
    const send = () =>
      backend.exec(record.name, {
        argv: options.raw ? options.argv : loginArgv(options.argv),
        cwd: options.workdir ?? GUEST_CODE_DIR,
        env: { ...sessionEnv(this.deps.config), ...options.env },
        stdin: options.stdin,
        signal: this.deps.signal,
        onStdout: options.onStdout,
        onStderr: options.onStderr,
      });
    let result: ExecResult;
    try {
      result = await send();
    } catch (error) {
      await touched.catch(() => {}); // the exec's own failure is the one to report
      if (isInterrupt(error, this.deps.signal)) throw error;
      const state = await backend.get(record.name).then((i) => i.state, () => "missing");
      if (state === "running") throw error;
      await ensureRunning(this.deps, { backend, record }, options.start ?? { start: false });
      result = await send();
    }
    await touched;
    return { ...result, name: record.name };
  }

  /** Stops a sandbox (graceful, then forced). */
  async halt(name?: string): Promise<StopResult> {
    const record = await this.resolve(name);
    return await this.#locked(record.name, async () => {
      const backend = await this.backend();
      const previous = await this.#liveState(backend, record.name);
      await this.#stopped(record.name, backend, previous !== "missing");
      return { name: record.name, status: "stopped", previous };
    });
  }

  /** Stops `name` (when `stop`), ends its port forwards and records it stopped. */
  async #stopped(name: string, backend: Backend, stop: boolean): Promise<void> {
    if (stop) {
      await backend.stop(name, { timeoutMs: stopTimeoutMs(this.deps.config, backend.name) });
    }
    await this.#endForwards(name);
    await patchRecord(this.deps.store, name, (r) => {
      r.status = r.status === "failed" ? "failed" : "stopped";
      r.ip = null;
    });
  }

  /** Suspends a sandbox; stops it where the backend cannot suspend (`suspended: false`). */
  async suspend(name?: string): Promise<StopResult> {
    const record = await this.resolve(name);
    return await this.#locked(record.name, async () => {
      const backend = await this.backend();
      const previous = await this.#liveState(backend, record.name);
      if (previous === "missing") {
        throw new NotFoundError(`sandbox ${record.name} no longer exists in ${backend.name}`);
      }
      if (previous === "suspended") {
        return { name: record.name, status: "suspended", previous, suspended: true };
      }
      if (backend.capabilities.suspend && previous === "running") {
        await backend.suspend(record.name);
        await patchRecord(this.deps.store, record.name, (r) => void (r.status = "suspended"));
        return { name: record.name, status: "suspended", previous, suspended: true };
      }
      await this.#stopped(record.name, backend, previous !== "stopped");
      return { name: record.name, status: "stopped", previous, suspended: false };
    });
  }

  /** The records destroy would act on: one by `[name]`, or with `all` this repo's (or all). */
  async destroyTargets(options: { name?: string; all?: boolean }): Promise<SandboxRecord[]> {
    if (options.all) {
      if (options.name) throw new UsageError("give a name or --all, not both");
      return await this.#scopeRecords();
    }
    return [await this.resolve(options.name)];
  }

  /** Deletes the sandbox and its state entry; with `worktree`, a clean worktree too. */
  async destroy(
    record: SandboxRecord,
    options: { worktree?: boolean } = {},
  ): Promise<DestroyOutcome> {
    return await this.#locked(record.name, async () => {
      const backend = await this.backend();
      const previous = await this.#liveState(backend, record.name);
      if (previous !== "missing") await backend.delete(record.name);
      await this.#endForwards(record.name);
      await this.deps.store.remove(record.name);
      await this.#forgetHostKeys(record.name);
      await revokeProxyToken(this.deps.stateDir, record.name);
      const outcome: DestroyOutcome = {
        name: record.name,
        was_missing: previous === "missing",
        worktree_path: record.worktree_path,
        worktree_removed: false,
        worktree_kept_reason: null,
      };
      if (options.worktree) {
        const mainRoot = record.repo_root ??
          (await openRepo(this.deps.runner, record.worktree_path).catch(() => null))?.mainRoot;
        const removed = mainRoot
          ? await (await import("../git/worktree.ts")).removeWorktree(
            this.deps.runner,
            mainRoot,
            record.worktree_path,
          )
          : { removed: false, reason: "its repository cannot be found" };
        outcome.worktree_removed = removed.removed;
        outcome.worktree_kept_reason = removed.reason;
      }
      return outcome;
    });
  }

  /**
   * Destroys sandboxes unused for `days` (default `prune_after_days`) and drops state entries
   * whose sandbox the engine no longer has. Worktrees are left alone.
   */
  async prune(options: { days?: number; dryRun?: boolean } = {}): Promise<PruneResult> {
    const days = options.days ?? this.deps.config.prune_after_days;
    const dryRun = options.dryRun ?? false;
    const cutoff = this.deps.clock.now() - days * 86_400_000;
    const records = (await this.deps.store.read()).vms;
    const live = await liveView(this.backend);
    const backendName = await this.#backendName();
    const warnings = liveWarnings(records, live, backendName);
    const candidates: PruneEntry[] = [];
    for (const r of records) {
      const mine = (r.backend ?? "tart") === backendName;
      const gone = live.ok && mine && !live.byName.has(r.name);
      const stale = Date.parse(r.last_used) < cutoff;
      if (gone) candidates.push({ name: r.name, reason: "missing", last_used: r.last_used });
      else if (stale && mine) {
        candidates.push({ name: r.name, reason: "unused", last_used: r.last_used });
      }
    }
    if (!live.ok && !dryRun && records.some((r) => Date.parse(r.last_used) < cutoff)) {
      throw new UnreachableError(
        `cannot prune: the ${backendName} backend is unreachable (${live.reason})`,
      );
    }
    if (dryRun) return { dry_run: true, days, pruned: candidates, warnings };
    const pruned: PruneEntry[] = [];
    for (const c of candidates) {
      await this.#locked(c.name, async () => {
        const current = await this.deps.store.get(c.name);
        if (!current) return;
        // Used since we looked (another command holds it now)? Then keep it.
        if (c.reason === "unused" && Date.parse(current.last_used) >= cutoff) return;
        if (c.reason === "unused") await (await this.backend()).delete(c.name);
        await this.#endForwards(c.name);
        await this.deps.store.remove(c.name);
        await this.#forgetHostKeys(c.name);
        await revokeProxyToken(this.deps.stateDir, c.name);
        pruned.push(c);
      });
    }
    return { dry_run: false, days, pruned, warnings };
  }

  /** Marks the sandbox used now. */
  touch(name: string): Promise<void> {
    return touch(this.deps.store, name, this.deps.clock);
  }

  /** Now, as RFC 3339. */
  now(): string {
    return iso(this.deps.clock.now());
  }

  async #scopeRecords(): Promise<SandboxRecord[]> {
    const records = (await this.deps.store.read()).vms;
    const repo = await this.repo();
    if (!repo) return records;
    return records.filter((r) =>
      r.repo_root ? r.repo_root === repo.mainRoot : r.repo === repo.name
    );
  }

  async #liveState(backend: Backend, name: string): Promise<string> {
    try {
      return (await backend.get(name)).state;
    } catch (error) {
      if (isNotFound(error)) return "missing";
      throw error;
    }
  }

  async #backendName(): Promise<string> {
    try {
      return (await this.backend()).name;
    } catch {
      return this.deps.config.backend;
    }
  }

  // Port forwards and known host keys are cleaned up by halt, suspend, destroy and prune only:
  // their modules load then, not on the paths of exec, list and status.
  async #endForwards(sandbox: string): Promise<void> {
    const [ports, processes] = await Promise.all([
      import("./ports.ts"),
      import("../lib/processes.ts"),
    ]);
    await ports.endForwards({
      stateDir: this.deps.stateDir,
      processes: processes.hostProcesses,
      sandbox,
      clock: this.deps.clock,
    });
  }

  async #forgetHostKeys(sandbox: string): Promise<void> {
    await (await import("./interactive.ts")).forgetHostKeys(this.deps.stateDir, sandbox);
  }

  #locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return withSandboxLock({
      dir: this.deps.stateDir,
      name,
      signal: this.deps.signal,
      clock: this.deps.clock,
    }, fn);
  }
}
