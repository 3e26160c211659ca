/**
 * Starting a sandbox again after a checkpoint operation stopped it (a restore; a checkpoint on
 * an engine that takes them of a stopped sandbox): start with its shares, wait for boot (address
 * and SSH banner, `boot_timeout_secs`), mount the shares, record it running; one that does not
 * boot is stopped and recorded `failed`, as spawn does.
 *
 * @module
 */
import type { Backend, Share } from "../backends/backend.ts";
import type { SandboxService } from "./sandbox_service.ts";
import { bootFailureReason, waitForBoot } from "./boot.ts";
import { isInterrupt, isNotFound, iso, patchRecord } from "./lifecycle.ts";
import { errorMessage, TachikomaError, TimeoutError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { step } from "./step.ts";

/** Starts `name` with `shares` and waits for it; returns its address. */
export async function startAgain(
  service: SandboxService,
  backend: Backend,
  run: { name: string; shares: Share[]; after: string },
): Promise<string> {
  const { clock, config, store } = service.deps;
  const { name, shares } = run;
  const deadline = clock.now() + config.boot_timeout_secs * 1000;
  let address: string;
  try {
    await step(service.deps, `starting ${name}`, () => backend.start(name, { shares }));
    const boot = await step(service.deps, "waiting for boot", () =>
      waitForBoot({
        backend,
        name,
        clock,
        probe: service.deps.probe,
        deadline,
        timeoutSecs: config.boot_timeout_secs,
        signal: service.deps.signal,
      }));
    await backend.mountShares(name, shares);
    address = boot.address;
  } catch (error) {
    throw await bootFailed(service, backend, { name, after: run.after, error });
  }
  await patchRecord(store, name, (r) => {
    r.status = "running";
    r.ip = address;
    r.failure = null;
    r.last_used = iso(clock.now());
  });
  return address;
}

/** Stops a sandbox that did not boot again and records it `failed`. */
async function bootFailed(
  service: SandboxService,
  backend: Backend,
  failed: { name: string; after: string; error: unknown },
): Promise<unknown> {
  const { name, after, error } = failed;
  const interrupted = isInterrupt(error, service.deps.signal);
  const reason = interrupted
    ? "interrupted while booting"
    : `did not boot after ${after}: ${bootFailureReason(error)}`;
  try {
    await backend.stop(name, { force: true });
  } catch (stopError) {
    if (!isNotFound(stopError)) log.warn(`could not stop ${name}: ${errorMessage(stopError)}`);
  }
  await patchRecord(service.deps.store, name, (r) => {
    r.status = "failed";
    r.failure = reason;
    r.ip = null;
  });
  if (interrupted) return error;
  const hint = "it was stopped and marked failed: `tachikoma spawn` retries, another " +
    "`tachikoma checkpoint restore` picks another checkpoint";
  if (error instanceof TimeoutError) {
    return new TimeoutError(`${name} ${reason}`, {
      hint: error.hint ? `${error.hint}; ${hint}` : hint,
      cause: error,
    });
  }
  if (error instanceof TachikomaError) {
    return new TachikomaError(error.code, `${name} ${reason}`, {
      exitCode: error.exitCode,
      hint: error.hint ? `${error.hint}; ${hint}` : hint,
      cause: error,
    });
  }
  return new TachikomaError("boot_failed", `${name} ${reason}`, { hint, cause: error });
}
