/**
 * The MCP daemon's reaper (pixels' rules): sandboxes made over MCP (`created_by: "mcp"`) that
 * nobody uses are stopped, and old ones deleted, so agents that forget to clean up do not
 * leave machines full of running sandboxes. Sandboxes made by the CLI — and MCP-made ones the
 * CLI has since taken over (`tachikoma spawn` of the branch) — are never touched.
 *
 * Each pass, for every MCP-made sandbox:
 * - created more than `[mcp] hard_destroy_after` ago → deleted from its engine (its worktree
 *   and branch stay on the host; its host keys and proxy token are dropped). The state entry
 *   stays with `reaped: {action: "destroyed", …}` so `list`/`status` show what happened (live
 *   status `missing`); `spawn_sandbox` of the branch makes it again. The entry itself is
 *   forgotten after another `hard_destroy_after`.
 * - else recorded running and unused (no tool call) for more than `idle_stop_after` → stopped,
 *   marked `reaped: {action: "stopped", …}`; `spawn_sandbox` starts it again.
 *
 * A sandbox is skipped while a tool call uses it, while a command holds its lock (a spawn, a
 * halt, a CLI command…: tried, never waited for) and while it is being created. Each action
 * is logged, and re-checked under the lock first (a use meanwhile keeps it). Durations `0`
 * turn a rule off. Time comes from the injectable clock.
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import { type BackendName, BACKENDS } from "../config/defaults.ts";
import type { Config } from "../config/schema.ts";
import type { Clock } from "../lib/clock.ts";
import { formatDuration, parseDuration } from "../lib/duration.ts";
import { errorMessage } from "../lib/errors.ts";
import { log as defaultLog, type Logger } from "../lib/log.ts";
import type { ReapRecord, SandboxRecord } from "../state/schema.ts";
import { tryWithSandboxLock } from "../state/lock.ts";
import { forgetHostKeys } from "../core/interactive.ts";
import { isNotFound, iso, patchRecord, stopTimeoutMs } from "../core/lifecycle.ts";
import { revokeProxyToken } from "../core/proxy_link.ts";
import type { SandboxService } from "../core/sandbox_service.ts";
import type { SandboxActivity } from "./activity.ts";

/** When the reaper acts, in milliseconds (0: never). */
export interface ReaperPolicy {
  idleStopMs: number;
  hardDestroyMs: number;
  intervalMs: number;
}

/** The policy of an `[mcp]` section (its durations were validated with the configuration). */
export function reaperPolicy(mcp: Config["mcp"]): ReaperPolicy {
  return {
    idleStopMs: parseDuration(mcp.idle_stop_after) ?? 0,
    hardDestroyMs: parseDuration(mcp.hard_destroy_after) ?? 0,
    intervalMs: parseDuration(mcp.reap_interval) ?? 0,
  };
}

/** What the reaper works with. */
export interface ReaperDeps {
  clock: Clock;
  /** The core service for sandboxes of `backend` (undefined: the configured engine). */
  service(backend?: BackendName): Promise<SandboxService>;
  /** Sandboxes in use by running tool calls. */
  activity: SandboxActivity;
  logger?: Logger;
}

/** One thing the reaper did. */
export interface ReapAction {
  name: string;
  /** `forgotten`: the state entry of a sandbox it had deleted was dropped. */
  action: "stopped" | "destroyed" | "forgotten";
  reason: string;
  at: string;
}

/** Counters of a reaper since the daemon started. */
export interface ReaperStats {
  passes: number;
  last_pass_at: string | null;
  stopped: number;
  destroyed: number;
  forgotten: number;
  /** The last failure (a sandbox it could not act on), or null. */
  last_error: string | null;
}

type Decision = { action: ReapAction["action"]; reason: string };

/** The reaper (see the module doc). */
export class Reaper {
  readonly policy: ReaperPolicy;
  readonly #deps: ReaperDeps;
  readonly #log: Logger;
  readonly #stats: ReaperStats = {
    passes: 0,
    last_pass_at: null,
    stopped: 0,
    destroyed: 0,
    forgotten: 0,
    last_error: null,
  };

  constructor(deps: ReaperDeps, policy: ReaperPolicy) {
    this.#deps = deps;
    this.policy = policy;
    this.#log = deps.logger ?? defaultLog;
  }

  /** True when some rule is on. */
  get enabled(): boolean {
    return this.policy.intervalMs > 0 &&
      (this.policy.idleStopMs > 0 || this.policy.hardDestroyMs > 0);
  }

  /** A copy of the counters. */
  get stats(): ReaperStats {
    return { ...this.#stats };
  }

  /** What the policy says about `record` at `now` (null: leave it). */
  decide(record: SandboxRecord, now: number): Decision | null {
    const { idleStopMs, hardDestroyMs } = this.policy;
    if (record.created_by !== "mcp" || record.status === "creating") return null;
    if (record.reaped?.action === "destroyed") {
      const forgetMs = hardDestroyMs || 86_400_000;
      const since = now - Date.parse(record.reaped.at);
      return since >= forgetMs
        ? { action: "forgotten", reason: `deleted ${formatDuration(since)} ago` }
        : null;
    }
    const age = now - Date.parse(record.created_at);
    if (hardDestroyMs > 0 && age >= hardDestroyMs) {
      return {
        action: "destroyed",
        reason: `created ${formatDuration(age)} ago (hard_destroy_after ${
          formatDuration(hardDestroyMs)
        })`,
      };
    }
    const idle = now - Date.parse(record.last_used);
    if (idleStopMs > 0 && record.status === "running" && idle >= idleStopMs) {
      return {
        action: "stopped",
        reason: `unused for ${formatDuration(idle)} (idle_stop_after ${
          formatDuration(idleStopMs)
        })`,
      };
    }
    return null;
  }

  /** One pass over the state (see the module doc); returns what it did. */
  async pass(): Promise<ReapAction[]> {
    const services = new Map<string, Promise<SandboxService>>();
    const serviceFor = (backend: string | undefined) => {
      const name = (BACKENDS as readonly string[]).includes(backend ?? "")
        ? backend as BackendName
        : undefined;
      const key = name ?? "";
      let s = services.get(key);
      if (!s) {
        s = this.#deps.service(name);
        services.set(key, s);
      }
      return s;
    };
    const done: ReapAction[] = [];
    const base = await serviceFor(undefined);
    const { store, stateDir } = base.deps;
    const records = (await store.read()).vms;
    for (const candidate of records) {
      if (!this.decide(candidate, this.#deps.clock.now())) continue;
      if (this.#deps.activity.busy(candidate.name)) {
        this.#log.debug(`mcp reaper: ${candidate.name} is in use by a tool call; left alone`);
        continue;
      }
      try {
        const outcome = await tryWithSandboxLock(stateDir, candidate.name, async () => {
          // Again under the lock: it may have been used, spawned or removed meanwhile.
          const record = await store.get(candidate.name);
          const now = this.#deps.clock.now();
          const decision = record ? this.decide(record, now) : null;
          if (!record || !decision || this.#deps.activity.busy(record.name)) return null;
          const service = await serviceFor(record.backend);
          return await this.#act(service, record, { decision, at: iso(now) });
        });
        if (!outcome.locked) {
          this.#log.debug(`mcp reaper: ${candidate.name} is locked by a command; left alone`);
        } else if (outcome.value) {
          done.push(outcome.value);
          this.#stats[outcome.value.action]++;
          this.#log.info(
            `mcp reaper: ${outcome.value.action} ${outcome.value.name}: ${outcome.value.reason}`,
          );
        }
      } catch (error) {
        const message = `mcp reaper: ${candidate.name}: ${errorMessage(error)}`;
        this.#stats.last_error = message;
        this.#log.warn(message);
      }
    }
    this.#stats.passes++;
    this.#stats.last_pass_at = iso(this.#deps.clock.now());
    return done;
  }

  async #act(
    service: SandboxService,
    record: SandboxRecord,
    verdict: { decision: Decision; at: string },
  ): Promise<ReapAction | null> {
    const { decision, at } = verdict;
    const { store, stateDir, config } = service.deps;
    const name = record.name;
    const mark: ReapRecord = { action: "stopped", at, reason: decision.reason };
    if (decision.action === "forgotten") {
      await store.remove(name);
      return { name, action: "forgotten", reason: decision.reason, at };
    }
    const backend: Backend = await service.backend();
    if (decision.action === "destroyed") {
      try {
        await backend.delete(name);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      await forgetHostKeys(stateDir, name);
      await revokeProxyToken(stateDir, name);
      await patchRecord(store, name, (r) => {
        r.status = "stopped";
        r.ip = null;
        r.reaped = { ...mark, action: "destroyed" };
      });
      return { name, action: "destroyed", reason: decision.reason, at };
    }
    let state: string;
    try {
      state = (await backend.get(name)).state;
    } catch (error) {
      if (isNotFound(error)) return null; // gone already: `list` shows it missing
      throw error;
    }
    if (state !== "running") return null;
    await backend.stop(name, { timeoutMs: stopTimeoutMs(config, backend.name) });
    await patchRecord(store, name, (r) => {
      r.status = "stopped";
      r.ip = null;
      r.reaped = mark;
    });
    return { name, action: "stopped", reason: decision.reason, at };
  }

  /**
   * Runs a pass now and then every `intervalMs` until `signal` aborts; `after` runs after each
   * pass (the daemon's other housekeeping). A failing pass is logged, never fatal.
   */
  async run(signal: AbortSignal, after?: () => Promise<unknown>): Promise<void> {
    while (!signal.aborted) {
      if (this.enabled) {
        try {
          await this.pass();
        } catch (error) {
          this.#stats.last_error = `mcp reaper: ${errorMessage(error)}`;
          this.#log.warn(this.#stats.last_error);
        }
      }
      await after?.().catch((error) => this.#log.debug(`mcp: ${errorMessage(error)}`));
      try {
        await this.#deps.clock.sleep(this.policy.intervalMs || 60_000, signal);
      } catch {
        return; // aborted
      }
    }
  }
}
