/**
 * Checkpoints on tart, with the fake tart on the Incus lab (its `clone` and `rename` follow
 * tart-contract.md §4.3: a clone copies the VM, guest disk included): a checkpoint is a clone of
 * the stopped VM, hidden from `list`; a running VM is refused; restore puts a clone of the
 * checkpoint in the VM's place (the guest's files go back, the checkpoint stays); a sandbox is
 * cloned from a checkpoint; delete removes a checkpoint, and deleting the VM removes the rest.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { labIgnored } from "./lab.ts";
import { FAKE_TART, TartTarget, vmName } from "./tart_harness.ts";
import { openTart } from "../../src/backends/tart/mod.ts";
import { SshGuest } from "../../src/backends/tart/ssh_guest.ts";
import { KnownHosts } from "../../src/ssh/known_hosts.ts";
import { defaultConfig } from "../../src/config/default_config.ts";
import type { Config } from "../../src/config/schema.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { tcpBannerProbe } from "../../src/lib/probe.ts";
import { waitForBoot } from "../../src/core/boot.ts";
import { ConflictError, NotFoundError } from "../../src/lib/errors.ts";
import type { TartBackend } from "../../src/backends/tart/backend.ts";

const dec = new TextDecoder();

async function boot(backend: TartBackend, vm: string): Promise<void> {
  await backend.start(vm, { shares: [] });
  await waitForBoot({
    backend,
    name: vm,
    clock: systemClock,
    probe: tcpBannerProbe,
    deadline: Date.now() + 180_000,
    timeoutSecs: 180,
  });
}

async function read(backend: TartBackend, vm: string): Promise<string> {
  const r = await backend.exec(vm, { argv: ["sh", "-c", 'cat "$HOME/state.txt"'] });
  return dec.decode(r.stdout).trim();
}

async function write(backend: TartBackend, vm: string, value: string): Promise<void> {
  const r = await backend.exec(vm, {
    argv: ["sh", "-c", 'printf %s "$1" > "$HOME/state.txt"', "sh", value],
  });
  assertEquals(r.code, 0, dec.decode(r.stderr));
}

Deno.test({
  name: "tart checkpoints on the fake: create (stopped only), list, restore, clone from, delete",
  ignore: labIgnored(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tart = await TartTarget.open();
    const dir = await Deno.makeTempDir({ prefix: "tkt-tart-cp-" });
    const stateDir = `${dir}/state`;
    await Deno.mkdir(`${stateDir}/locks`, { recursive: true });
    const config = {
      ...defaultConfig("linux"),
      backend: "tart",
      ssh_user: "admin",
      vm_cpus: 1,
      vm_memory: 1024,
      tart: { ...defaultConfig("linux").tart, binary: FAKE_TART, stop_timeout_secs: 10 },
    } as Config;
    const ssh = new SshGuest({
      knownHosts: new KnownHosts(`${stateDir}/known_hosts`),
      privateKeyPath: `${dir}/no-key`,
      connectTimeoutMs: 10_000,
    });
    const backend = await openTart(config, { stateDir }, { env: tart.env, ssh });
    const vm = vmName("cp");
    const copy = vmName("cpfork");
    try {
      assert(backend.capabilities.checkpoints);
      await backend.create(vm, { image: tart.image });
      await boot(backend, vm);
      await write(backend, vm, "one");

      await assertRejects(
        () => backend.createCheckpoint(vm, "live"),
        ConflictError,
        "while it runs",
      );
      await backend.stop(vm);
      const made = await backend.createCheckpoint(vm, "cp1");
      assertEquals(made.name, "cp1");
      assert(Math.abs(Date.parse(made.createdAt) - Date.now()) < 120_000, made.createdAt);
      await assertRejects(() => backend.createCheckpoint(vm, "cp1"), ConflictError, "already has");
      assertEquals((await backend.listCheckpoints(vm)).map((c) => c.name), ["cp1"]);
      // The checkpoint is a tart VM (a clone), not a sandbox.
      const cloned = (await tart.argv()).filter((a) => a[0] === "clone" && a[1] === vm);
      assertEquals(cloned.length, 1);
      assert(cloned[0][2].startsWith(`${vm}.tkcp.`), cloned[0][2]);
      assertEquals((await backend.list()).map((s) => s.name).filter((n) => n.startsWith(vm)), [vm]);

      await boot(backend, vm);
      await write(backend, vm, "two");
      assertEquals(await read(backend, vm), "two");
      await backend.stop(vm);
      await backend.restoreCheckpoint(vm, "cp1");
      const renames = (await tart.argv()).filter((a) => a[0] === "rename");
      assertEquals(renames, [["rename", `${vm}.tkcp-restore`, vm]]);
      await boot(backend, vm);
      assertEquals(await read(backend, vm), "one");
      assertEquals((await backend.listCheckpoints(vm)).map((c) => c.name), ["cp1"]);

      await backend.stop(vm);
      await backend.clone(copy, { sandbox: vm, checkpoint: "cp1" });
      await boot(backend, copy);
      assertEquals(await read(backend, copy), "one");
      await assertRejects(
        () => backend.clone(vmName("nope"), { sandbox: vm, checkpoint: "ghost" }),
        NotFoundError,
        "no checkpoint",
      );
      await assertRejects(() => backend.restoreCheckpoint(vm, "ghost"), NotFoundError);

      await backend.deleteCheckpoint(vm, "cp1");
      assertEquals(await backend.listCheckpoints(vm), []);
      await backend.createCheckpoint(vm, "cp2");
      await backend.delete(vm);
      const listed = await tart.run(["list", "--format", "json"]);
      const names = JSON.parse(listed.stdout).map((e: { Name: string }) => e.Name);
      assert(!names.some((n: string) => n.startsWith(vm)), `left: ${names}`);
      await assertRejects(() => backend.listCheckpoints(vm), NotFoundError);
    } finally {
      await backend.delete(copy).catch(() => {});
      await backend.delete(vm).catch(() => {});
      await backend.close();
      await tart.cleanup([copy, vm]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
