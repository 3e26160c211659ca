/**
 * A dry provisioner for CLI tests and benches on the in-memory engine, whose guest commands
 * (`exec.mode = "ok"`) exit 0 and print nothing: the real provisioner refuses such a guest (its
 * output is checked). This one has the real steps, version and input fingerprints (so
 * `--reprovision` and resuming behave as in production) and reports each step it would run,
 * without a single guest command. Provisioning itself is tested in tests/unit/provision (real
 * shells) and tests/integration (the lab).
 *
 * @module
 */
import type { Provisioner } from "../../src/provision/contract.ts";
import { createProvisioner, type CreateProvisionerOptions } from "../../src/provision/mod.ts";

/** The real provisioner's steps and fingerprints; `run` only reports the steps. */
export function dryProvisioner(options: CreateProvisionerOptions): Provisioner {
  const real = createProvisioner(options);
  return {
    version: real.version,
    steps: real.steps,
    fingerprint: (ctx) => real.fingerprint(ctx),
    async run(ctx, runOptions) {
      const start = runOptions.after === null ? 0 : real.steps.indexOf(runOptions.after) + 1;
      for (const step of real.steps.slice(start)) {
        if (runOptions.only && !runOptions.only.includes(step)) continue;
        if (runOptions.skip?.includes(step)) continue;
        ctx.signal?.throwIfAborted();
        ctx.reporter.step(`provisioning step ${step} (dry: the memory guest runs nothing)`)
          .done();
        await runOptions.onStepDone(step);
      }
    },
  };
}
