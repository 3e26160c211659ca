/**
 * Starting and booting for spawn: start with shares then wait for boot (stopping the sandbox
 * and recording it `failed` when that does not work, so no ghost keeps running), waiting for a
 * sandbox that is stopping, and reporting each step with its duration.
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import type { RepoContext } from "../git/repo.ts";
import { bootFailureReason, type BootResult, pollDelay, waitForBoot } from "./boot.ts";
import { sandboxShares } from "./sandbox_shares.ts";
import { isInterrupt, isNotFound, iso, type LifecycleDeps, patchRecord } from "./lifecycle.ts";
import {
  errorMessage,
  InterruptedError,
  RuntimeError,
  TachikomaError,
  TimeoutError,
} from "../lib/errors.ts";
import { isUnusableGuest } from "../provision/contract.ts";
import { log } from "../lib/log.ts";
import { step } from "./step.ts";

/** A sandbox to boot: its engine, its name and the boot budget's absolute deadline. */
export interface BootTarget {
  backend: Backend;
  name: string;
  /** ms since epoch, on the lifecycle's clock. */
  deadline: number;
}

/** What {@link startAndBoot} starts, and what may run while it boots. */
export interface StartAndBootOptions<T> extends BootTarget {
  action: "created" | "started" | "resumed";
  worktreePath: string;
  repo: RepoContext;
  /**
   * Work to run while the guest boots, from the moment it is started (provisioning on engines
   * whose exec does not need SSH). Gets the dependencies with a signal that aborts when the boot
   * fails, and a promise of the guest's address for the parts that need the network.
   */
  alongside?: (deps: LifecycleDeps, network: Promise<string>) => Promise<T>;
}

/** What {@link startAndBoot} returns. */
export interface Started<T> {
  boot: BootResult;
  /** How `alongside` ended, when given (its failure is the caller's to throw). */
  alongside?: PromiseSettledResult<T>;
}

/**
 * Starts a stopped/suspended/new sandbox and waits for it; on failure stops it and records it
 * failed (no ghost). `alongside` work that fails is its caller's to handle (provisioning has its
 * own failure handling), except that a boot failure aborts it first.
 */
export async function startAndBoot<T = never>(
  deps: LifecycleDeps,
  options: StartAndBootOptions<T>,
): Promise<Started<T>> {
  const { backend, name, action, worktreePath, repo, deadline } = options;
  const verb = action === "resumed" ? "resuming" : "starting";
  let side: Promise<T> | undefined;
  const controller = new AbortController();
  const forward = () => controller.abort(deps.signal?.reason);
  deps.signal?.addEventListener("abort", forward, { once: true });
  let boot: BootResult;
  try {
    const shares = await sandboxShares({
      runner: deps.runner,
      mainRoot: repo.mainRoot,
      worktreePath,
      home: deps.home,
      claudeDirs: deps.config.share_claude_dirs,
      mountHost: backend.capabilities.mountHost,
    });
    await step(deps, `${verb} ${name}`, () => backend.start(name, { shares }));
    const booting = step(
      deps,
      "waiting for boot",
      () => bootWait(deps, { backend, name, deadline }),
    );
    if (options.alongside) {
      booting.catch(() => controller.abort(new InterruptedError("the boot failed")));
      const network = booting.then((b) => b.address);
      network.catch(() => {});
      side = options.alongside({ ...deps, signal: controller.signal }, network);
      side.catch(() => {});
    }
    boot = await booting;
    await backend.mountShares(name, shares);
  } catch (error) {
    deps.signal?.removeEventListener("abort", forward);
    if (side) {
      controller.abort(new InterruptedError("the boot failed"));
      const sideError = await side.then(() => null, (e) => e);
      // Work alongside that found the guest unusable stopped it: its error is the real one.
      if (sideError && isUnusableGuest(sideError)) throw sideError;
    }
    throw await bootFailed(deps, { backend, name, verb, error });
  }
  try {
    if (!side) return { boot };
    const alongside = await side.then(
      (value): PromiseSettledResult<T> => ({ status: "fulfilled", value }),
      (reason): PromiseSettledResult<T> => ({ status: "rejected", reason }),
    );
    return { boot, alongside };
  } finally {
    deps.signal?.removeEventListener("abort", forward);
  }
}

/** Stops a sandbox whose boot failed and records it failed; returns the error to throw. */
async function bootFailed(
  deps: LifecycleDeps,
  failed: { backend: Backend; name: string; verb: string; error: unknown },
): Promise<unknown> {
  const { backend, name, verb, error } = failed;
  const interrupted = isInterrupt(error, deps.signal);
  const reason = interrupted ? "interrupted while booting" : bootFailureReason(error);
  log.debug(`spawn of ${name} failed while ${verb}: ${reason}; stopping it`);
  try {
    await backend.stop(name, { force: true });
  } catch (stopError) {
    if (!isNotFound(stopError)) {
      log.warn(`could not stop ${name} after the failed boot: ${errorMessage(stopError)}`);
    }
  }
  await patchRecord(deps.store, name, (r) => {
    r.status = "failed";
    r.failure = reason;
    r.ip = null;
    r.last_used = iso(deps.clock.now());
  });
  if (interrupted) return error;
  const hint = `it was stopped and marked failed: \`tachikoma spawn\` retries, ` +
    `\`tachikoma destroy ${name}\` removes it`;
  if (!(error instanceof TachikomaError)) {
    return new RuntimeError("boot_failed", `${name} failed to boot: ${reason}`, {
      hint,
      cause: error,
    });
  }
  return new TachikomaError(
    error.code,
    `${name} failed to boot: ${error.message}`,
    {
      exitCode: error.exitCode,
      hint: error.hint ? `${error.hint}; ${hint}` : hint,
      cause: error,
    },
  );
}

/** Waits (under the boot budget) for a sandbox that is stopping to be stopped. */
export async function untilStopped(
  deps: LifecycleDeps,
  backend: Backend,
  name: string,
): Promise<void> {
  const deadline = deps.clock.now() + deps.config.boot_timeout_secs * 1000;
  for (let attempt = 0;; attempt++) {
    const state = (await backend.get(name)).state;
    if (state !== "stopping") return;
    const left = deadline - deps.clock.now();
    if (left <= 0) {
      throw new TimeoutError(`${name} is still stopping after ${deps.config.boot_timeout_secs} s`, {
        hint: `try again later, or \`tachikoma destroy ${name}\``,
      });
    }
    await deps.clock.sleep(Math.min(pollDelay(attempt), left), deps.signal);
  }
}

/** The boot wait with the lifecycle's clock, probe, budget and signal. */
export function bootWait(
  deps: LifecycleDeps,
  target: BootTarget & { knownAddress?: string },
): Promise<BootResult> {
  const { backend, name, deadline, knownAddress } = target;
  return waitForBoot({
    knownAddress,
    backend,
    name,
    clock: deps.clock,
    probe: deps.probe,
    deadline,
    timeoutSecs: deps.config.boot_timeout_secs,
    signal: deps.signal,
  });
}
