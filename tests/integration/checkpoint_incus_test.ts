/**
 * Checkpoints end to end on the Incus lab: a real container made through the Incus backend,
 * with the worktree shared in, driven through the core checkpoint functions (as the CLI
 * does): checkpoint → write files in the guest → restore (stop → restore → start with the
 * shares → SSH banner) → the files are gone, the share is back. Skipped, with the reason, when
 * the lab is not up.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { systemClock } from "../../src/lib/clock.ts";
import { NotFoundError } from "../../src/lib/errors.ts";
import { defaultRunner } from "../../src/lib/process.ts";
import { tcpBannerProbe } from "../../src/lib/probe.ts";
import { RecordingReporter } from "../testing/recording_reporter.ts";
import { SandboxService } from "../../src/core/sandbox_service.ts";
import { sandboxShares } from "../../src/core/sandbox_shares.ts";
import { waitForBoot } from "../../src/core/boot.ts";
import {
  createCheckpoint,
  deleteCheckpoint,
  listCheckpoints,
  restoreCheckpoint,
} from "../../src/core/checkpoints.ts";
import { IncusBackend, IncusClient } from "../../src/backends/incus/mod.ts";
import { defaultConfig } from "../../src/config/default_config.ts";
import { StateStore } from "../../src/state/store.ts";
import { gitIn, makeRepo } from "../unit/core/helpers.ts";
import { labEnv, labIgnored, labName } from "./lab.ts";

const lab = labEnv();
const ignore = labIgnored();
const dec = new TextDecoder();

Deno.test({
  name: "incus: checkpoint → change the guest → restore → the change is gone, shares are back",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const socket = lab!.socket;
    const backend = new IncusBackend(await IncusClient.open({ socket }), {
      endpoint: { socket },
      cpus: 1,
      memoryMb: 512,
      sshUser: "admin",
      sshPort: 22,
    });
    await using repo = await makeRepo("myapp");
    const worktree = `${repo.dir}/myapp-feat`;
    await gitIn(repo.root, "worktree", "add", "-q", "-b", "feat", worktree);
    const stateDir = await Deno.makeTempDir({ prefix: "tk-cp-state-" });
    const home = await Deno.makeTempDir({ prefix: "tk-cp-home-" });
    const name = labName("cp");
    const config = { ...defaultConfig("linux"), backend: "incus" as const, boot_timeout_secs: 120 };
    const store = new StateStore(stateDir);
    const service = new SandboxService({
      backend: () => Promise.resolve(backend),
      store,
      config,
      stateDir,
      clock: systemClock,
      reporter: new RecordingReporter(),
      provisioner: () => Promise.reject(new Error("not used")),
      runner: defaultRunner,
      probe: tcpBannerProbe,
      home,
    }, repo.root);
    const sh = async (script: string) => {
      const r = await backend.exec(name, { argv: ["/bin/sh", "-c", script], user: "user" });
      return { code: r.code, out: dec.decode(r.stdout).trim(), err: dec.decode(r.stderr) };
    };
    try {
      const stamp = new Date().toISOString();
      await store.put({
        name,
        repo: "myapp",
        branch: "feat",
        worktree_path: worktree,
        created_at: stamp,
        last_used: stamp,
        status: "creating",
        ip: null,
        backend: "incus",
        repo_root: repo.root,
      });
      await backend.create(name, { image: lab!.image });
      const shares = await sandboxShares({
        runner: defaultRunner,
        mainRoot: repo.root,
        worktreePath: worktree,
        home,
        claudeDirs: [],
      });
      await backend.start(name, { shares });
      await waitForBoot({
        backend,
        name,
        clock: systemClock,
        probe: tcpBannerProbe,
        deadline: Date.now() + 120_000,
        timeoutSecs: 120,
      });
      assertEquals((await sh("cat /mnt/tachikoma/code/README")).out, "hello");
      assertEquals((await sh("echo before > ~/marker && cat ~/marker")).out, "before");

      const made = await createCheckpoint(service, { name: "feat", label: "clean" });
      assertEquals([made.name, made.label], [name, "clean"]);
      assert(!Number.isNaN(Date.parse(made.created_at)), made.created_at);

      const changed = await sh("echo after > ~/marker && echo x > ~/extra && cat ~/marker");
      assertEquals(changed.out, "after");
      // The worktree is on the host: the checkpoint does not cover it.
      await Deno.writeTextFile(`${worktree}/host-file`, "kept\n");

      // A wrong label changes nothing (the sandbox keeps running).
      await assertRejects(
        () => restoreCheckpoint(service, { name, label: "nope" }),
        NotFoundError,
        `has no checkpoint "nope"`,
      );
      assertEquals((await backend.get(name)).state, "running");

      const restored = await restoreCheckpoint(service, { name, label: "clean" });
      console.error(`restore took ${restored.elapsed_ms} ms (stop → restore → start → SSH)`);
      assertEquals(restored.previous, "running");
      assertEquals(restored.status, "running");
      assert(restored.ip.startsWith("10.213.0."), restored.ip);
      assertEquals((await sh("cat ~/marker")).out, "before");
      assertEquals((await sh("test -e ~/extra")).code, 1);
      assertEquals((await sh("cat /mnt/tachikoma/code/README")).out, "hello");
      assertEquals((await sh("cat /mnt/tachikoma/code/host-file")).out, "kept");
      const record = await store.get(name);
      assertEquals([record?.status, record?.ip], ["running", restored.ip]);

      const list = await listCheckpoints(service, { name });
      assertEquals(list.checkpoints.map((c) => c.label), ["clean"]);
      await deleteCheckpoint(service, { name, label: "clean" });
      assertEquals((await listCheckpoints(service, { name })).checkpoints, []);
    } finally {
      await backend.delete(name).catch((e) => console.error(`cleanup of ${name}: ${e}`));
      await backend.close();
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
