/**
 * Engines that checkpoint a stopped sandbox (`capabilities.checkpointsStopped`, tart): core stops
 * a running one, checkpoints it and starts it again with its shares (boot wait included); a
 * stopped one is checkpointed as it is; a failed checkpoint starts it again.
 */
import { assertEquals, assertRejects } from "@std/assert";
import { createCheckpoint } from "../../../src/core/checkpoints.ts";
import { RuntimeError } from "../../../src/lib/errors.ts";
import { harness } from "./helpers.ts";

Deno.test("checkpointsStopped: stop → checkpoint → start with the shares; running again", async () => {
  await using h = await harness({ backend: { capabilities: { checkpointsStopped: true } } });
  const { name } = await h.service.spawn({ branch: "feat" });
  const from = (await h.backend.calls()).length;
  const made = await createCheckpoint(h.service, { name, label: "c1" });
  assertEquals(made.label, "c1");
  const methods = (await h.backend.calls()).slice(from).map((c) => c.method)
    .filter((m) => ["stop", "createCheckpoint", "start", "mountShares"].includes(m));
  assertEquals(methods, ["stop", "createCheckpoint", "start", "mountShares"]);
  assertEquals((await h.backend.get(name)).state, "running");
  const record = (await h.store.get(name))!;
  assertEquals([record.status, record.ip], ["running", "127.0.0.1"]);
  const shares = (await h.backend.peek(name))!.shares!.map((s) => s.name);
  assertEquals(shares.includes("code"), true);

  // Stopped: checkpointed as it is, not started.
  await h.service.halt(name);
  const before = (await h.backend.calls()).length;
  await createCheckpoint(h.service, { name, label: "c2" });
  const after = (await h.backend.calls()).slice(before).map((c) => c.method);
  assertEquals(after.includes("start"), false);
  assertEquals((await h.backend.get(name)).state, "stopped");
});

Deno.test("checkpointsStopped: a failing checkpoint starts the sandbox again", async () => {
  await using h = await harness({ backend: { capabilities: { checkpointsStopped: true } } });
  const { name } = await h.service.spawn({ branch: "feat" });
  h.backend.fail("createCheckpoint", { kind: "runtime", message: "disk full" });
  await assertRejects(() => createCheckpoint(h.service, { name, label: "c1" }), RuntimeError);
  assertEquals((await h.backend.get(name)).state, "running");
  assertEquals((await h.store.get(name))?.status, "running");
});
