/**
 * Spawn on an engine whose exec goes through its API (incus): no SSH banner is waited for,
 * provisioning runs while the guest's network comes up, a provisioning failure that leaves the
 * guest unusable stops it and records it failed, and a boot failure stops the provisioning that
 * runs beside it.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { harness } from "./helpers.ts";
import { ProvisionError } from "../../../src/provision/errors.ts";
import type { ProvisionContext, ProvisionRunOptions } from "../../../src/provision/contract.ts";
import { waitForBoot, waitForSsh } from "../../../src/core/boot.ts";
import { TimeoutError } from "../../../src/lib/errors.ts";

const API_EXEC = { capabilities: { execOverSsh: false } };

Deno.test("spawn (API exec): no SSH probe; provisioning runs while the address comes", async () => {
  await using h = await harness({ backend: { ...API_EXEC, addressDelayMs: 3_000 } });
  let network: Promise<unknown> | undefined;
  const run = h.provisioner.run.bind(h.provisioner);
  h.provisioner.run = (ctx, options) => {
    network = ctx.network;
    return run(ctx, options);
  };
  const result = await h.service.spawn({ branch: "feat/api" });
  assertEquals(result.action, "created");
  assertEquals(result.banner, null);
  assertEquals(h.probe.calls, []);
  assertEquals(h.provisioner.runs, [["keys", "mounts", "env", "claude"]]);
  // provisioning was handed the address to come, not run after it
  assert(network instanceof Promise, "provisioning runs beside the boot wait");
  assertEquals(await network, "127.0.0.1");
  const record = await h.store.get(result.name);
  assertEquals([record?.status, record?.ip, record?.provisioned?.complete], [
    "running",
    "127.0.0.1",
    true,
  ]);
  // reconnecting: no probe either
  const again = await h.service.spawn({ branch: "feat/api" });
  assertEquals(again.action, "reconnected");
  assertEquals(h.probe.calls, []);
});

Deno.test("spawn (API exec): an unusable guest is stopped and recorded failed with the reason", async () => {
  await using h = await harness({ backend: API_EXEC });
  h.provisioner.run = async (_ctx: ProvisionContext, options: ProvisionRunOptions) => {
    await options.onStepDone("keys");
    throw new ProvisionError("mounts", "the image has no apt-get/dpkg", {
      unusable: true,
      hint: "use a Debian or Ubuntu image",
    });
  };
  const error = await assertRejects(() => h.service.spawn({ branch: "feat/bad" }));
  assert(error instanceof Error);
  assert(
    /provisioning .* failed after step 'keys': .*no apt-get\/dpkg/.test(error.message),
    error.message,
  );
  const name = "tachikoma-myapp-feat-bad";
  assertEquals((await h.backend.peek(name))?.state, "stopped");
  const record = await h.store.get(name);
  assertEquals(record?.status, "failed");
  assert(record?.failure?.includes("no apt-get/dpkg"), record?.failure ?? "");
  assertEquals(record?.ip, null);
});

Deno.test("spawn (API exec): a boot failure aborts the provisioning beside it", async () => {
  await using h = await harness({
    backend: { ...API_EXEC, neverAddress: true },
    config: { boot_timeout_secs: 5 },
  });
  let aborted = false;
  h.provisioner.run = async (ctx: ProvisionContext, options: ProvisionRunOptions) => {
    await options.onStepDone("keys");
    // a step that needs the network waits for the address, which never comes
    await new Promise<void>((resolve) => {
      const stop = () => {
        aborted = true;
        resolve();
      };
      if (ctx.signal?.aborted) stop();
      else ctx.signal?.addEventListener("abort", stop, { once: true });
    });
    ctx.signal?.throwIfAborted();
  };
  const error = await assertRejects(() => h.service.spawn({ branch: "feat/noip" }));
  assert(error instanceof Error && /failed to boot/.test(error.message), String(error));
  assert(aborted, "provisioning was aborted");
  const record = await h.store.get("tachikoma-myapp-feat-noip");
  assertEquals(record?.status, "failed");
  assertEquals((await h.backend.peek("tachikoma-myapp-feat-noip"))?.state, "stopped");
});

Deno.test("boot: engines with an API exec wait for the address only; waitForSsh probes", async () => {
  await using h = await harness({ backend: API_EXEC });
  await h.backend.create("sb", { image: "x" });
  await h.backend.start("sb", { shares: [] });
  const deadline = h.clock.now() + 10_000;
  const options = {
    backend: h.backend,
    name: "sb",
    clock: h.clock,
    probe: h.probe,
    deadline,
    timeoutSecs: 10,
  };
  const boot = await waitForBoot(options);
  assertEquals([boot.address, boot.banner, boot.probes], ["127.0.0.1", null, 0]);
  assertEquals(h.probe.calls, []);
  // asked for explicitly, or by `ssh` itself
  const withSsh = await waitForBoot({ ...options, ssh: true });
  assertEquals(withSsh.banner, "SSH-2.0-Fake");
  h.probe.answer = (_t, n) =>
    n < 4 ? { ok: false, reason: "refused" } : { ok: true, banner: "SSH-2.0-Late" };
  h.probe.calls = [];
  const late = await waitForSsh(options);
  assertEquals([late.banner, late.probes], ["SSH-2.0-Late", 4]);
  h.probe.answer = () => ({ ok: false, reason: "refused" });
  await assertRejects(
    () => waitForSsh({ ...options, deadline: h.clock.now() + 2_000 }),
    TimeoutError,
  );
});
