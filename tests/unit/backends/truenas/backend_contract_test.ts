/**
 * The TrueNAS backend against the fake TrueNAS (in-memory world), one test per row of
 * truenas-api.md §5–§7 that the backend uses: the exact params it sends, the create sequence and
 * its bootstrap files, start/stop/destroy, checkpoints (both snapshot families), clone and the
 * faults (no ghost instance left).
 */
import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "@std/assert";
import { type Rig, rig } from "./harness.ts";
import { TruenasBackend } from "../../../../src/backends/truenas/backend.ts";
import { TruenasGuest } from "../../../../src/backends/truenas/guest.ts";
import { pickNic } from "../../../../src/backends/truenas/nic.ts";
import { FakeSsh, result } from "../tart_doubles.ts";
import { ConflictError, NotFoundError, UnsupportedError } from "../../../../src/lib/errors.ts";
import type { FakeTruenasOptions } from "../../../fixtures/truenas/server.ts";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests tachikoma";

async function world(server: Partial<FakeTruenasOptions> = {}) {
  const r = await rig(server);
  const ssh = new FakeSsh();
  const holder: { b?: TruenasBackend } = {};
  const guest = new TruenasGuest({
    ssh,
    sshUser: "dev",
    sshPort: 22,
    address: (n) => holder.b!.address(n),
  });
  const backend = new TruenasBackend({
    client: r.client,
    guest,
    clock: r.clock,
    settings: {
      sshUser: "dev",
      sshPort: 22,
      cpus: 2,
      memoryMb: 2048,
      image: "images:debian/12",
      publicKey: () => Promise.resolve(KEY),
    },
  });
  holder.b = backend;
  return { r, ssh, backend, [Symbol.asyncDispose]: () => r[Symbol.asyncDispose]() };
}

const methods = (r: Rig) =>
  r.server.frames.filter((f) => f.dir === "in").map((f) => String(f.frame.method));

Deno.test("§5 virt.instance.create: payload (cpu string, memory bytes, NIC) as a job", async () => {
  await using w = await world();
  await w.backend.create("web", { image: "images:debian/12" });
  assertEquals(w.r.server.calls("virt.instance.create")[0].frame.params, [{
    name: "px-web",
    instance_type: "CONTAINER",
    image: "debian/12",
    cpu: "2",
    memory: 2147483648,
    autostart: true,
    environment: null,
    devices: [{ dev_type: "NIC", readonly: false, nic_type: "MACVLAN", parent: "eno1" }],
  }]);
});

Deno.test("§7.4 create sequence: create → get → global config → file_receive → stop", async () => {
  await using w = await world();
  await w.backend.create("web", { image: "debian/12" });
  const seq = methods(w.r).slice(3).filter((m) => m !== "core.get_jobs");
  assertEquals(seq, [
    "virt.instance.get_instance",
    "interface.query",
    "network.general.summary",
    "virt.instance.create",
    "virt.instance.get_instance",
    "virt.global.config",
    "filesystem.file_receive",
    "filesystem.file_receive",
    "virt.instance.get_instance",
    "virt.instance.stop",
  ]);
  assertEquals((await w.backend.get("web")).state, "stopped");
});

Deno.test("§7.5 files: authorized_keys 0600 1000:1000 and rc.local 0755 at the rootfs path", async () => {
  await using w = await world();
  await w.backend.create("web", { image: "debian/12" });
  const calls = w.r.server.calls("filesystem.file_receive").map((c) => c.frame.params as unknown[]);
  assertEquals(
    calls.map((p) => [p[0], p[2]]),
    [
      [
        "/var/lib/incus/storage-pools/tank/containers/px-web/rootfs/home/dev/.ssh/authorized_keys",
        { mode: 384, uid: 1000, gid: 1000 },
      ],
      [
        "/var/lib/incus/storage-pools/tank/containers/px-web/rootfs/etc/rc.local",
        { mode: 493, uid: -1, gid: -1 },
      ],
    ],
  );
  const files = w.r.world.instances.get("px-web")!.files;
  assertEquals(
    new TextDecoder().decode(files.get("/home/dev/.ssh/authorized_keys")!.data),
    `${KEY}\n`,
  );
  const rc = new TextDecoder().decode(files.get("/etc/rc.local")!.data);
  assertMatch(rc, /^#!\/bin\/sh\n/);
  assertMatch(
    rc,
    /apt-get install -y --no-install-recommends openssh-server sudo git curl ca-certificates/,
  );
  assertMatch(rc, /user='dev'/);
});

Deno.test("§7.3 NIC: gateway's subnet, else the first candidate, else no NIC device", () => {
  const eno = (name: string, address: string) => ({
    name,
    type: "PHYSICAL",
    state: { link_state: "LINK_STATE_UP" },
    aliases: [{ type: "INET", address, netmask: 24 }],
  });
  const both = [eno("eno1", "192.168.1.10"), eno("eno2", "10.0.5.2")];
  assertEquals(pickNic(both, ["10.0.5.1"])?.parent, "eno2");
  assertEquals(pickNic(both, ["172.16.0.1"])?.parent, "eno1");
  assertEquals(pickNic([{ ...eno("eno1", "1.2.3.4"), type: "BRIDGE" }], ["1.2.3.1"]), null);
  assertEquals(
    pickNic([{ ...eno("eno1", "1.2.3.4"), state: { link_state: "LINK_STATE_DOWN" } }], []),
    null,
  );
});

Deno.test("§7.3 NIC: no candidates → created without a devices key", async () => {
  await using w = await world({ interfaces: [] });
  await w.backend.create("web", { image: "debian/12" });
  const p =
    (w.r.server.calls("virt.instance.create")[0].frame.params as Record<string, unknown>[])[0];
  assert(!("devices" in p));
});

Deno.test("§5 virt.instance.query with the px- prefix; §6 status and INET aliases", async () => {
  await using w = await world();
  await w.backend.create("a", { image: "debian/12" });
  await w.backend.start("a", { shares: [] });
  assertEquals(w.r.server.calls("virt.instance.query").length, 0);
  const list = await w.backend.list();
  assertEquals(w.r.server.calls("virt.instance.query")[0].frame.params, [[["name", "^", "px-"]]]);
  assertEquals(list.map((s) => [s.name, s.state, s.addresses.length]), [["a", "running", 1]]);
  assertEquals(await w.backend.sshEndpoint("a"), { host: list[0].addresses[0], port: 22 });
});

Deno.test("§7.8 start is a job; start with shares is one clear UnsupportedError", async () => {
  await using w = await world();
  await w.backend.create("a", { image: "debian/12" });
  const e = await assertRejects(
    () =>
      w.backend.start("a", {
        shares: [{
          name: "code",
          hostPath: "/x",
          guestPath: "/mnt/tachikoma/code",
          readOnly: false,
        }],
      }),
    UnsupportedError,
  );
  assertMatch(
    e.message,
    /^TrueNAS 127\.0\.0\.1:\d+ cannot mount directories of this host \(code\)$/,
  );
  assertEquals((await w.backend.get("a")).state, "stopped");
  await w.backend.start("a", { shares: [] });
  assertEquals(w.r.server.calls("virt.instance.start")[0].frame.params, ["px-a"]);
});

Deno.test("§7.8 stop: [name, {timeout: 120}] only when running; missing is fine", async () => {
  await using w = await world();
  await w.backend.create("a", { image: "debian/12" });
  const before = w.r.server.calls("virt.instance.stop").length;
  await w.backend.stop("a");
  assertEquals(w.r.server.calls("virt.instance.stop").length, before);
  await w.backend.start("a", { shares: [] });
  await w.backend.stop("a");
  assertEquals(w.r.server.calls("virt.instance.stop").at(-1)!.frame.params, ["px-a", {
    timeout: 120,
  }]);
  await w.backend.stop("nope");
});

Deno.test("§7.8 destroy: delete retried after EBUSY (2 s apart); a missing one is gone", async () => {
  await using w = await world();
  await w.backend.create("a", { image: "debian/12" });
  w.r.server.faults.deleteBusyOnce = true;
  await w.backend.delete("a");
  assertEquals(w.r.server.calls("virt.instance.delete").length, 2);
  assert(w.r.clock.sleeps.includes(2000));
  assertEquals(await w.backend.list(), []);
  await w.backend.delete("a");
  await assertRejects(() => w.backend.get("a"), NotFoundError);
});

Deno.test("§7.4 faults: a failing create job leaves no ghost; errors name host and method", async () => {
  await using w = await world();
  w.r.server.faults.failJob = { method: "virt.instance.stop", error: "[EFAULT] stop failed" };
  const e = await assertRejects(() => w.backend.create("a", { image: "debian/12" }));
  assertMatch(
    (e as Error).message,
    /^TrueNAS 127\.0\.0\.1:\d+: virt\.instance\.stop \(job \d+\): \[EFAULT\] stop failed/,
  );
  assertEquals(await w.backend.list(), []);
});

Deno.test("§7.4 faults: a socket dropped mid-create still creates exactly one instance", async () => {
  await using w = await world();
  w.r.server.faults.dropAfterJobReply = "virt.instance.create";
  await w.backend.create("a", { image: "debian/12" });
  assertEquals((await w.backend.list()).map((s) => s.name), ["a"]);
  assertEquals(w.r.server.logins, 2);
});

Deno.test("§7.4 create: a taken name is a ConflictError", async () => {
  await using w = await world();
  await w.backend.create("a", { image: "debian/12" });
  await assertRejects(() => w.backend.create("a", { image: "debian/12" }), ConflictError);
});

for (const version of ["TrueNAS-25.04.2.4", "TrueNAS-25.10.1"]) {
  const family = version.includes("25.10") ? "pool" : "zfs";
  Deno.test(`§7.9 checkpoints on ${version}: ${family}.snapshot.* create/query/rollback/delete`, async () => {
    await using w = await world({ version });
    await w.backend.create("a", { image: "debian/12" });
    await w.backend.start("a", { shares: [] });
    const c1 = await w.backend.createCheckpoint("a", "one");
    const c2 = await w.backend.createCheckpoint("a", "two");
    assert(c1.createdAt < c2.createdAt, "createtxg orders checkpoints");
    assertEquals((await w.backend.listCheckpoints("a")).map((c) => c.name), ["one", "two"]);
    assertEquals(
      w.r.server.calls(`${family}.snapshot.create`)[0].frame.params,
      [{ dataset: "tank/ix-virt/containers/px-a", name: "one" }],
    );
    await assertRejects(() => w.backend.restoreCheckpoint("a", "one"), ConflictError);
    assertEquals((await w.backend.get("a")).state, "running", "a refused restore restarts it");
    await w.backend.restoreCheckpoint("a", "two");
    assertEquals(
      w.r.server.calls(`${family}.snapshot.rollback`).at(-1)!.frame.params,
      ["tank/ix-virt/containers/px-a@two"],
    );
    assertEquals((await w.backend.get("a")).state, "running");
    await w.backend.deleteCheckpoint("a", "two");
    assertEquals((await w.backend.listCheckpoints("a")).map((c) => c.name), ["one"]);
    await assertRejects(() => w.backend.deleteCheckpoint("a", "two"), NotFoundError);
    const other = family === "pool" ? "zfs" : "pool";
    assertEquals(w.r.server.calls(`${other}.snapshot.create`).length, 0);
  });
}

Deno.test("§7.10 clone from a checkpoint: shell autostart false, cron zfs clone, run, delete", async () => {
  await using w = await world();
  await w.backend.create("src", { image: "debian/12" });
  await w.backend.start("src", { shares: [] });
  await w.backend.createCheckpoint("src", "base");
  await w.backend.clone("copy", { sandbox: "src", checkpoint: "base" });
  const create = w.r.server.calls("virt.instance.create").at(-1)!.frame.params as Record<
    string,
    unknown
  >[];
  assertEquals([create[0].name, create[0].autostart, create[0].cpu], ["px-copy", false, "2"]);
  const cron = (w.r.server.calls("cronjob.create")[0].frame.params as Record<string, unknown>[])[0];
  assertMatch(
    String(cron.command),
    /^zfs destroy -r tank\/ix-virt\/containers\/px-copy && zfs clone tank\/ix-virt\/containers\/px-src@base tank\/ix-virt\/containers\/px-copy && /,
  );
  assertEquals([cron.user, cron.enabled], ["root", false]);
  assertEquals(w.r.server.calls("cronjob.run")[0].frame.params, [1, false]);
  assertEquals(w.r.server.calls("cronjob.delete")[0].frame.params, [1]);
  const files = w.r.world.instances.get("px-copy")!.files;
  assertEquals(new TextDecoder().decode(files.get("/etc/hostname")!.data), "px-copy\n");
  assert(files.has("/etc/rc.local"), "the clone has the source's files");
  assertEquals((await w.backend.get("copy")).state, "stopped");
});

Deno.test("§7.10 clone without a checkpoint: a temporary px-clone-* snapshot, deleted after", async () => {
  await using w = await world();
  await w.backend.create("src", { image: "debian/12" });
  await w.backend.clone("copy", { sandbox: "src" });
  const label = (w.r.server.calls("zfs.snapshot.create")[0].frame.params as { name: string }[])[0]
    .name;
  assertMatch(label, /^px-clone-\d{8}-\d{6}$/);
  assertEquals(w.r.server.calls("zfs.snapshot.delete").length, 1);
});

Deno.test("§7.10 clone: a failing cron job leaves no half-made clone", async () => {
  await using w = await world();
  await w.backend.create("src", { image: "debian/12" });
  w.r.server.faults.failJob = { method: "cronjob.run", error: "[EFAULT] zfs: dataset is busy" };
  await assertRejects(() => w.backend.clone("copy", { sandbox: "src" }));
  assertEquals((await w.backend.list()).map((s) => s.name), ["src"]);
  assertEquals(w.r.server.cron.size, 0, "the temporary cron job is deleted");
});

Deno.test("exec and files go over SSH as the sandbox user to the instance's address", async () => {
  await using w = await world();
  await w.backend.create("a", { image: "debian/12" });
  await assertRejects(() => w.backend.exec("a", { argv: ["true"] }), ConflictError);
  await w.backend.start("a", { shares: [] });
  w.ssh.reply = () => result(0, "aGk=\n");
  await w.backend.exec("a", { argv: ["id"] });
  assertEquals(await w.backend.pullFile("a", "/etc/x"), new TextEncoder().encode("hi"));
  const target = w.ssh.execs[0].target;
  assertEquals([target.user, target.port, target.auth.kind], ["dev", 22, "key"]);
  assertEquals(target.host, (await w.backend.get("a")).addresses[0]);
});

Deno.test("egress: only unrestricted; a restricted mode is refused in one line", async () => {
  await using w = await world();
  await w.backend.create("a", { image: "debian/12" });
  assertEquals((await w.backend.getEgress("a")).mode, "unrestricted");
  await assertRejects(
    () => w.backend.setEgress("a", { mode: "agent", allow: [] }),
    UnsupportedError,
  );
});

Deno.test("hostile names: checkpoint labels and ssh_user never reach ZFS ids or rc.local raw", async () => {
  await using w = await world();
  await w.backend.create("a", { image: "debian/12" });
  const { UsageError, ConfigError } = await import("../../../../src/lib/errors.ts");
  for (const bad of ["x; zfs destroy -r tank", "$(id)", "a b", "a\nb", "`id`", "é", "a@b"]) {
    const e = await assertRejects(() => w.backend.createCheckpoint("a", bad), UsageError);
    assertMatch(e.message, /^invalid checkpoint name /);
  }
  assertEquals(w.r.server.calls("zfs.snapshot.create").length, 0);
  const { cloneCommand } = await import("../../../../src/backends/truenas/checkpoints.ts");
  assertThrows(
    () => cloneCommand({ source: "tank/a", label: "x;id", target: "t/b", name: "b" }),
    UsageError,
  );
  const { openTruenas } = await import("../../../../src/backends/truenas/mod.ts");
  const { ConfigSchema } = await import("../../../../src/config/schema.ts");
  const config = ConfigSchema.parse({
    ssh_user: "dev'; touch /tmp/pwned; '",
    truenas: { host: "127.0.0.1", api_key: "k-0123456789" },
  });
  const e = await assertRejects(
    () => openTruenas(config, { stateDir: "/nonexistent" }),
    ConfigError,
  );
  assertMatch(e.message, /^ssh_user "dev'; touch \/tmp\/pwned; '" is not a valid Linux user name/);
});
