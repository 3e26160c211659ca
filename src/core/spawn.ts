/**
 * The spawn state machine: resolve repo and branch → ensure the worktree → (under the
 * sandbox's lock) look the sandbox up → missing: its image made local (pulled once; a stock
 * image's prepared form when there is one), create + start; stopped/suspended/failed: start;
 * running: reconnect → wait for boot (the address, plus an SSH banner where exec needs SSH; one
 * deadline) → provision when new, unfinished, outdated or `--reprovision` (on engines with an API
 * exec, while the guest boots) → return (the caller attaches).
 *
 * A sandbox this run started that fails to boot is stopped and recorded `failed` with the
 * reason: no ghost keeps running, `list` shows it, `spawn` retries, `destroy` cleans it. So is one
 * whose provisioning found it unusable (a stock image the bootstrap cannot prepare); an image
 * that cannot be pulled records the sandbox `failed` with nothing made.
 *
 * @module
 */
import type { Backend, SandboxInfo, SshEndpoint } from "../backends/backend.ts";
import type { SandboxRecord } from "../state/schema.ts";
import { withSandboxLock } from "../state/lock.ts";
import type { RepoContext } from "../git/repo.ts";
import type { EnsuredWorktree } from "../git/worktree.ts";
import { openRepoHere } from "./repo_here.ts";
import { detachedBranchName, resolveSandboxName } from "../lib/naming.ts";
import type { BootResult } from "./boot.ts";
import { isInterrupt, isNotFound, iso, type LifecycleDeps, patchRecord } from "./lifecycle.ts";
import { bootWait, startAndBoot, untilStopped } from "./spawn_start.ts";
import { step } from "./step.ts";
import { spawnProvision } from "./spawn_provision.ts";
import { isUnusableGuest } from "../provision/contract.ts";
import type { ImageChoice } from "./images.ts";
import { createSandbox } from "./spawn_create.ts";
import type { ProvisionOutcome } from "./provision_policy.ts";
import { ConflictError, errorMessage, TimeoutError, UsageError } from "../lib/errors.ts";
import { type ForkSource, resolveFork } from "./fork.ts";
import type { EgressRecord } from "../state/schema.ts";
import type { EgressMode } from "../backends/backend.ts";
import { applyEnginePolicy, configPolicy } from "./egress_apply.ts";
import { prepareWorktree } from "./spawn_worktree.ts";

/** Input of {@link spawnSandbox}. */
export interface SpawnRequest {
  /** Where the user is (the repo is found from here). */
  cwd: string;
  /** Branch to spawn (default: the current one; a detached HEAD uses its short commit). */
  branch?: string;
  /** Re-run provisioning steps whose inputs changed. */
  reprovision?: boolean;
  /**
   * Who asks: `mcp` marks a sandbox this spawn creates as made over MCP (the MCP daemon's
   * reaper stops and deletes only those); absent (the CLI) takes an MCP-made sandbox over, so
   * the reaper leaves it alone from then on.
   */
  createdBy?: "mcp";
  /**
   * Clone a new sandbox from a base, a stopped sandbox or `sandbox:checkpoint` instead of
   * creating it from the image (see `fork.ts`); not used when the sandbox exists.
   */
  from?: string;
  /**
   * Egress mode for this sandbox (`spawn --egress`); kept in its record. Absent: the mode it
   * has, else the configuration's `egress`.
   */
  egress?: EgressMode;
}

/** How spawn got the sandbox running. */
export type SpawnAction = "created" | "started" | "resumed" | "reconnected";

/** What spawn did. */
export interface SpawnResult {
  name: string;
  action: SpawnAction;
  record: SandboxRecord;
  address: string;
  endpoint: SshEndpoint;
  /** sshd's banner when the boot wait waited for it (engines whose exec needs SSH). */
  banner: string | null;
  worktree: EnsuredWorktree;
  provisioning: ProvisionOutcome;
  /** What the sandbox was cloned from (null: not cloned by this spawn). */
  from: ForkSource | null;
}

/** Spawns (or reuses) the sandbox of a branch. Does not attach. */
export async function spawnSandbox(
  deps: LifecycleDeps,
  request: SpawnRequest,
): Promise<SpawnResult> {
  const { reporter } = deps;
  // Open the backend while git and the state are read.
  const backend = deps.backend();
  backend.catch(() => {});
  const resolving = reporter.step("resolving branch");
  let repo: RepoContext;
  let branch: string;
  try {
    repo = await openRepoHere(deps, request.cwd);
    if (request.branch !== undefined) {
      // Validated by git when a new branch is made (ensureWorktree); an existing one is valid.
      if (request.branch === "" || request.branch.startsWith("-")) {
        throw new UsageError(`invalid branch name ${JSON.stringify(request.branch)}`);
      }
      branch = request.branch;
    } else {
      branch = repo.branch ?? detachedBranchName(repo.detachedAt ?? "");
    }
    resolving.done(branch);
  } catch (error) {
    resolving.fail(errorMessage(error));
    throw error;
  }
  if (request.branch === undefined && !repo.branch) {
    reporter.note(`HEAD is detached at ${repo.detachedAt}: using branch '${branch}'`);
  }
  // The name depends on the records (collisions get a suffix); re-check it under the lock in
  // case a concurrent spawn of a colliding branch claimed it first.
  for (let attempt = 0;; attempt++) {
    const records = (await deps.store.read()).vms;
    const name = resolveSandboxName({
      repo: repo.name,
      repoRoot: repo.mainRoot,
      branch,
      records,
    });
    const lock = { dir: deps.stateDir, name, signal: deps.signal, clock: deps.clock };
    const result = await withSandboxLock(lock, async () => {
      const now = (await deps.store.read()).vms;
      const again = resolveSandboxName({
        repo: repo.name,
        repoRoot: repo.mainRoot,
        branch,
        records: now,
      });
      if (again !== name && attempt < 5) return null;
      const existing = now.find((r) => r.name === name);
      return await spawnLocked(deps, {
        backend: await backend,
        repo,
        branch,
        name,
        existing,
        request,
      });
    });
    if (result) return result;
  }
}

/** What {@link spawnLocked} works on: the sandbox, found under its lock. */
interface LockedSpawn {
  backend: Backend;
  repo: RepoContext;
  branch: string;
  name: string;
  existing: SandboxRecord | undefined;
  request: SpawnRequest;
}

async function spawnLocked(deps: LifecycleDeps, spawn: LockedSpawn): Promise<SpawnResult> {
  const { backend, repo, branch, name, existing, request } = spawn;
  const { reporter, store, clock } = deps;
  // The sandbox's egress policy: its own, with the mode --egress asks for, else the config's.
  const base = existing?.egress ?? configPolicy(deps.config);
  const egress: EgressRecord = { mode: request.egress ?? base.mode, allow: [...base.allow] };
  // Provisioning (the guest's proxy environment) follows this sandbox's policy.
  deps = { ...deps, config: { ...deps.config, egress: egress.mode, egress_allow: egress.allow } };
  const config = deps.config;
  // Look the sandbox up while the worktree is checked.
  const lookup = backend.get(name).then(
    (info) => ({ info, error: null }),
    (error) => ({ info: null, error: isNotFound(error) ? null : error }),
  );
  if (deps.proxy) {
    // A new sandbox's policy needs the proxy's address before its first start, provisioning
    // needs the proxy: it is made sure of while the worktree is made (kept; its outcome is
    // reported where it is used).
    deps.proxy.ensure(backend, { force: egress.mode !== "unrestricted" }).catch(() => {});
  }
  // A bad --from changes nothing: it is checked before the worktree is made.
  let fork: ForkSource | null = null;
  if (request.from !== undefined) {
    const before = await lookup;
    if (before.info) reporter.note(`${name} exists: --from ${request.from} is not used`);
    else if (!before.error) fork = await resolveFork(deps, backend, { from: request.from, repo });
  }
  const worktree = await prepareWorktree(deps, { repo, branch, existing });
  if (worktree.branchCreated) {
    reporter.note(
      worktree.tracking
        ? `created branch '${branch}' tracking ${worktree.tracking}`
        : `created branch '${branch}' from HEAD (${worktree.base})`,
    );
  }

  const found = await lookup;
  if (found.error) throw found.error;
  const info: SandboxInfo | null = found.info;

  /** The fields every spawn refreshes (the worktree may have moved, the backend changed). */
  const where = () => ({
    worktree_path: worktree.path,
    backend: backend.name,
    repo_root: repo.mainRoot,
  });
  const fresh = (status: SandboxRecord["status"]): SandboxRecord => {
    const stamp = iso(clock.now());
    return {
      name,
      repo: repo.name,
      branch,
      ...where(),
      created_at: stamp,
      last_used: stamp,
      status,
      ip: null,
      failure: null,
      egress,
    };
  };

  let action: SpawnAction;
  let choice: ImageChoice | null = null;
  if (!info) {
    action = "created";
    // Made over MCP: a new sandbox asked for over MCP, or one MCP made that is made again.
    const mcpMade = request.createdBy === "mcp" &&
      (!existing || existing.created_by === "mcp");
    choice = await createSandbox(deps, {
      backend,
      name,
      existing,
      fork,
      entry: {
        ...fresh("creating"),
        provisioned: { version: 0, last_step: null, complete: false },
        ...(mcpMade ? { created_by: "mcp" as const } : {}),
      },
    });
  } else if (info.state === "running" || info.state === "starting") {
    action = "reconnected";
  } else if (info.state === "suspended") {
    action = "resumed";
  } else {
    action = "started";
    if (info.state === "stopping") await untilStopped(deps, backend, name);
  }
  if (!existing && info) {
    // A sandbox the engine has but state forgot: adopt it; its provisioning is unknown, so it
    // is provisioned again.
    reporter.note(`adopting ${name}, which ${backend.name} has but tachikoma's state did not`);
    await store.put(fresh("creating"));
  }

  const deadline = clock.now() + config.boot_timeout_secs * 1000;
  /** The record as a running sandbox at `ip`, used now. */
  const running = (ip: string | null) =>
    patchRecord(store, name, (r) => {
      Object.assign(r, where(), {
        status: "running",
        ip: ip ?? r.ip,
        failure: null,
        last_used: iso(clock.now()),
        egress,
      });
      delete r.reaped;
      if (request.createdBy !== "mcp") delete r.created_by;
    });
  let boot: BootResult;
  let record: SandboxRecord | null = null;
  let provisioning: ProvisionOutcome;
  const provision = (d: LifecycleDeps, network?: Promise<unknown>) =>
    spawnProvision(d, backend, {
      name,
      isNew: action === "created",
      reprovision: request.reprovision ?? false,
      network,
      afterBootstrap: choice?.publish ? () => choice!.publish!(name) : undefined,
      skip: fork?.skip,
      // A clone's steps are short: its guest boots undisturbed first.
      networkFirst: fork !== null,
    });
  /** The engine keeps the guest to the proxy in a restricted mode. */
  const applyEgress = (d: LifecycleDeps) =>
    step(d, {
      label: `egress policy (${egress.mode})`,
      detail: (e) => e.error ? `proxy only: ${e.error}` : e.restricted ? `${e.mechanism}` : "open",
    }, () => applyEnginePolicy(d, backend, { name, policy: egress }));
  // A new sandbox's policy is stored in it before its first start, so the start puts it in
  // force before the guest has an address: host nftables on the new NICs (incus), Softnet from
  // the first `tart run` (tart, which cannot switch a running VM into Softnet). A clone's
  // source's policy never runs in it, and no firewall change competes with the steps after the
  // boot. Provisioning in a restricted mode goes through the proxy (downloads included).
  const egressBeforeStart = action === "created" && backend.capabilities.egress;
  if (egressBeforeStart) await applyEgress(deps);
  const alongside = (d: LifecycleDeps, network: Promise<unknown>) => provision(d, network);
  /** What a start needs, but the action (narrowed in each branch). */
  const start = { backend, name, worktreePath: worktree.path, repo, deadline };
  if (action === "reconnected") {
    // The engine says it runs: record that (and the use) while SSH is probed.
    const known = info?.addresses[0];
    const refreshed = running(known ?? null);
    refreshed.catch(() => {});
    try {
      boot = await step(
        deps,
        `connecting to ${name}`,
        () => bootWait(deps, { backend, name, deadline, knownAddress: known }),
      );
    } catch (error) {
      await refreshed.catch(() => {});
      if (isInterrupt(error, deps.signal) || !(error instanceof TimeoutError)) throw error;
      throw new TimeoutError(`${name} is running but not answering: ${error.message}`, {
        hint: `restart it: tachikoma halt ${name} && tachikoma spawn ${branch}`,
        cause: error,
      });
    }
    record = await refreshed;
    if (record && record.ip !== boot.address) record = await running(boot.address);
    provisioning = await provision(deps);
  } else if (!backend.capabilities.execOverSsh) {
    // Exec through the engine's API: provisioning runs while the guest's network comes up
    // (steps that need the network wait for its address).
    const started = await startAndBoot(deps, { ...start, action, alongside });
    boot = started.boot;
    const outcome = started.alongside!;
    // A guest provisioning found unusable was stopped and recorded failed: leave it so.
    if (outcome.status === "fulfilled" || !isUnusableGuest(outcome.reason)) {
      record = await running(boot.address);
    }
    if (outcome.status === "rejected") throw outcome.reason;
    provisioning = outcome.value;
  } else {
    boot = (await startAndBoot(deps, { ...start, action })).boot;
    record = await running(boot.address);
    provisioning = await provision(deps);
  }
  if (!record) throw new ConflictError(`the state entry of ${name} vanished during spawn`);
  // An existing sandbox's policy is applied again after provisioning (which in a restricted
  // mode goes through the proxy too).
  if (backend.capabilities.egress && !egressBeforeStart) await applyEgress(deps);
  if (backend.capabilities.mountHost === false) {
    // Code by git: where the guest's branch stands, for `list` (one guest call).
    const { refreshCodeSync } = await import("./code_sync.ts");
    await step(deps, {
      label: "checking the sandbox's branch",
      detail: (s) => `${s.ahead ?? "?"} ahead, ${s.behind ?? "?"} behind`,
    }, () => refreshCodeSync(deps, { backend, record: record! })).catch((error) =>
      reporter.note(`cannot tell where ${name}'s branch stands: ${errorMessage(error)}`)
    );
    record = (await store.get(name)) ?? record;
  }
  if (provisioning.ran) record = (await store.get(name)) ?? record;
  return {
    name,
    action,
    record,
    address: boot.address,
    endpoint: boot.endpoint,
    banner: boot.banner,
    worktree,
    provisioning,
    from: fork,
  };
}
