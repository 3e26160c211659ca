/**
 * Spawn's reported steps (`spawn_start.ts#step`): a label alone, or a label with a detail of
 * the result; a failure reports the error's message and rethrows it.
 */
import { assertEquals, assertRejects } from "@std/assert";
import { step } from "../../../src/core/step.ts";
import type { LifecycleDeps } from "../../../src/core/lifecycle.ts";
import { RecordingReporter } from "../../testing/recording_reporter.ts";
import { RuntimeError } from "../../../src/lib/errors.ts";

Deno.test("step: label alone, label with a detail of the result, failure with its message", async () => {
  const reporter = new RecordingReporter();
  const deps = { reporter } as unknown as LifecycleDeps;
  assertEquals(await step(deps, "plain", () => Promise.resolve(1)), 1);
  const report = { label: "detailed", detail: (n: number) => `${n} done` };
  assertEquals(await step(deps, report, () => Promise.resolve(2)), 2);
  await assertRejects(
    () => step(deps, report, () => Promise.reject(new RuntimeError("x", "it broke"))),
    RuntimeError,
    "it broke",
  );
  assertEquals(reporter.events, [
    "start plain",
    "done plain",
    "start detailed",
    "done detailed: 2 done",
    "start detailed",
    "fail detailed: it broke",
  ]);
});
