import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { TartBackend } from "../../../src/backends/tart/backend.ts";
import type { TartSettings } from "../../../src/backends/tart/parts.ts";
import { TartCli } from "../../../src/backends/tart/cli.ts";
import { GuestAccess } from "../../../src/backends/tart/guest_access.ts";
import { FakeClock } from "../../testing/fake_clock.ts";
import {
  ConflictError,
  NotFoundError,
  RuntimeError,
  TimeoutError,
  UnsupportedError,
  UsageError,
} from "../../../src/lib/errors.ts";
import type { Share } from "../../../src/backends/backend.ts";
import { fail, FakeLauncher, FakeSsh, listJson, ok, ScriptedRunner } from "./tart_doubles.ts";

interface World extends AsyncDisposable {
  backend: TartBackend;
  runner: ScriptedRunner;
  launcher: FakeLauncher;
  ssh: FakeSsh;
  clock: FakeClock;
  stateDir: string;
}

async function world(
  settings: Partial<TartSettings> = {},
  options: { password?: string | null } = {},
): Promise<World> {
  const stateDir = await Deno.makeTempDir({ prefix: "tkt-tart-unit-" });
  const runner = new ScriptedRunner();
  const launcher = new FakeLauncher();
  const ssh = new FakeSsh();
  const clock = new FakeClock(1_700_000_000_000, { autoAdvance: true });
  const cli = new TartCli(runner, { binary: "tart", env: { TART_HOME: "/th" } });
  const guest = new GuestAccess({
    cli,
    ssh,
    clock,
    sshUser: "admin",
    sshPort: 2222,
    resolver: "dhcp",
    password: options.password === undefined ? "admin" : options.password,
  });
  const backend = new TartBackend({
    cli,
    launcher,
    clock,
    guest,
    settings: {
      stateDir,
      resolver: "dhcp",
      stopTimeoutSecs: 30,
      cpus: 4,
      memoryMb: 8192,
      display: "none",
      startTimeoutMs: 30_000,
      ...settings,
    },
  });
  return {
    backend,
    runner,
    launcher,
    ssh,
    clock,
    stateDir,
    [Symbol.asyncDispose]: () => Deno.remove(stateDir, { recursive: true }),
  };
}

const share = (name: string, hostPath: string, readOnly = false): Share => ({
  name,
  hostPath,
  guestPath: `/mnt/tachikoma/${name}`,
  readOnly,
});

/** `list` answers from a mutable state. */
function liveList(runner: ScriptedRunner, states: Record<string, string>) {
  runner.on(["list"], () => ok(listJson(...Object.entries(states))));
}

Deno.test("create: clone, then set --cpu/--memory (vm_cpus, vm_memory) and [tart] disk_size_gb", async () => {
  await using w = await world({ diskSizeGb: 80 });
  w.runner.on(["list"], ok(listJson(["ubuntu", "stopped"]))).on(["clone"], ok()).on(["set"], ok());
  await w.backend.create("tachikoma-app-main", { image: "ubuntu" });
  await w.backend.create("tachikoma-app-b", {
    image: "ubuntu",
    cpus: 2,
    memoryMb: 2048,
    diskGb: 60,
  });
  assertEquals(w.runner.argsOf("clone")[0], ["clone", "ubuntu", "tachikoma-app-main"]);
  assertEquals(w.runner.argsOf("set"), [
    ["set", "tachikoma-app-main", "--cpu", "4", "--memory", "8192", "--disk-size", "80"],
    ["set", "tachikoma-app-b", "--cpu", "2", "--memory", "2048", "--disk-size", "60"],
  ]);
});

Deno.test("create: an existing name is a ConflictError and nothing is cloned", async () => {
  await using w = await world();
  w.runner.on(["list"], ok(listJson(["taken", "running"])));
  await assertRejects(() => w.backend.create("taken", { image: "ubuntu" }), ConflictError);
  assertEquals(w.runner.argsOf("clone"), []);
});

Deno.test("create: a failing set deletes the fresh clone", async () => {
  await using w = await world();
  w.runner.on(["list"], ok("[]")).on(["clone"], ok()).on(["delete"], ok())
    .on(["set"], fail(1, "Error: LessThanMinimalResourcesError: VM should have 4 CPU cores"));
  await assertRejects(() => w.backend.create("vm", { image: "ubuntu", cpus: 1 }), RuntimeError);
  assertEquals(w.runner.argsOf("delete"), [["delete", "vm"]]);
});

Deno.test("start: detached run with --no-graphics and one --dir per share; waits for running", async () => {
  await using w = await world();
  const states: Record<string, string> = { vm: "stopped" };
  let polls = 0;
  w.runner.on(["list"], () => {
    if (++polls >= 3) states.vm = "running";
    return ok(listJson(...Object.entries(states)));
  });
  await w.backend.start("vm", {
    shares: [share("code", "/w/t"), share("claude-rules", "/h/.claude/rules", true)],
  });
  const [launch] = w.launcher.launches;
  assertEquals(launch.binary, "tart");
  assertEquals(launch.args, [
    "run",
    "--no-graphics",
    "--dir",
    "code:/w/t",
    "--dir",
    "claude-rules:/h/.claude/rules:ro",
    "vm",
  ]);
  assertEquals(launch.logPath, `${w.stateDir}/logs/tart-run-vm.log`);
  assertEquals(launch.env, { TART_HOME: "/th" });
  assert(polls >= 3);
});

Deno.test("start: vm_display other than none → no --no-graphics; running → no-op", async () => {
  await using w = await world({ display: "1920x1080" });
  const states: Record<string, string> = { vm: "stopped", up: "running" };
  liveList(w.runner, states);
  w.launcher.onLaunch = () => {
    states.vm = "running";
  };
  await w.backend.start("up", { shares: [] });
  assertEquals(w.launcher.launches.length, 0);
  await w.backend.start("vm", { shares: [] });
  assertEquals(w.launcher.launches[0].args, ["run", "vm"]);
});

Deno.test("start: a suspended Linux VM has its snapshot dropped (tart stop) first", async () => {
  await using w = await world();
  const states: Record<string, string> = { vm: "suspended" };
  liveList(w.runner, states);
  w.runner.on(["stop"], () => {
    states.vm = "stopped";
    return ok();
  });
  w.launcher.onLaunch = () => {
    states.vm = "running";
  };
  await w.backend.start("vm", { shares: [] });
  assertEquals(w.runner.argsOf("stop"), [["stop", "vm", "--timeout", "0"]]);
  assertEquals(w.launcher.launches.length, 1);
});

Deno.test("start: tart run exiting early is reported at once with its exit code and log tail", async () => {
  await using w = await world();
  liveList(w.runner, { vm: "stopped" });
  w.launcher.onLaunch = (run) =>
    run.exit(
      1,
      "some chatter\nThe number of VMs exceeds the system limit (other running VMs: a, b)\n",
    );
  const t0 = w.clock.now();
  const error = await assertRejects(() => w.backend.start("vm", { shares: [] }), RuntimeError);
  assertMatch(error.message, /tart run vm exited with code 1 before the VM started/);
  assertMatch(error.message, /exceeds the system limit/);
  assertMatch(error.hint ?? "", /tart-run-vm\.log/);
  assert(w.clock.now() - t0 < 1000, `took ${w.clock.now() - t0} ms of clock time`);
});

Deno.test("start: 'already running' (exit 2) from a racing run is a ConflictError", async () => {
  await using w = await world();
  liveList(w.runner, { vm: "stopped" });
  w.launcher.onLaunch = (run) => run.exit(2, 'VM "vm" is already running!\n');
  await assertRejects(
    () => w.backend.start("vm", { shares: [] }),
    ConflictError,
    "already running",
  );
});

Deno.test("start: bad shares are refused before tart is called", async () => {
  await using w = await world();
  await assertRejects(
    () => w.backend.start("vm", { shares: [share("code", "/Users/me/a:b")] }),
    UsageError,
    "contains ':'",
  );
  await assertRejects(
    () =>
      w.backend.start("vm", {
        shares: [{ name: "code", hostPath: "/w", guestPath: "/elsewhere", readOnly: false }],
      }),
    UsageError,
    "mounts shares under /mnt/tachikoma/",
  );
  assertEquals(w.runner.calls.length, 0);
});

Deno.test("waitForAddress: ip --wait in chunks under the deadline, own 1 s pause on fast failures", async () => {
  await using w = await world({ resolver: "arp" });
  liveList(w.runner, { vm: "running" });
  const waits: number[] = [];
  let calls = 0;
  w.runner.on(["ip"], (args) => {
    waits.push(Number(args[args.indexOf("--wait") + 1]));
    return ++calls < 3 ? fail(1, "no IP address found") : ok("192.168.64.9\n");
  });
  const deadline = w.clock.now() + 120_000;
  const ip = await w.backend.waitForAddress("vm", { deadline, clock: w.clock });
  assertEquals(ip, "192.168.64.9");
  assertEquals(waits, [10, 10, 10]);
  assertEquals(w.clock.sleeps.filter((s) => s === 1000).length, 2, "a pause after each fast miss");
  const ipCall = w.runner.calls.find((c) => c.args[0] === "ip")!;
  assertEquals(ipCall.args.slice(0, 2), ["ip", "vm"]);
  assertEquals(ipCall.args.slice(-2), ["--resolver", "arp"], "[tart] resolver is honoured");
});

Deno.test("waitForAddress: never an IP → TimeoutError at the deadline, chunks never overshoot", async () => {
  await using w = await world();
  liveList(w.runner, { vm: "running" });
  const overshoot: number[] = [];
  const deadline = w.clock.now() + 25_000;
  w.runner.on(["ip"], (args, options) => {
    const wait = Number(args[args.indexOf("--wait") + 1]);
    // Real tart takes wait + 1 s to fail (one more sleep after the last attempt).
    const duration = (wait + 1) * 1000;
    if (w.clock.now() + duration > deadline) overshoot.push(w.clock.now() + duration - deadline);
    assert((options.timeoutMs ?? Infinity) <= deadline - w.clock.now());
    w.clock.advance(duration);
    return fail(1, "no IP address found");
  });
  const error = await assertRejects(
    () => w.backend.waitForAddress("vm", { deadline, clock: w.clock }),
    TimeoutError,
  );
  assertMatch(error.message, /Timed out waiting for VM 'vm' to get an IP address/);
  assertMatch(error.message, /tart ip --resolver arp vm/);
  assertMatch(error.message, /tart-run-vm\.log/);
  assertEquals(overshoot, []);
  assert(w.clock.now() <= deadline, `ended ${w.clock.now() - deadline} ms after the deadline`);
});

Deno.test("waitForAddress: no ip call while the VM is not running (stale leases)", async () => {
  await using w = await world();
  liveList(w.runner, { vm: "stopped" });
  w.runner.on(["ip"], ok("192.168.64.3\n"));
  const error = await assertRejects(
    () => w.backend.waitForAddress("vm", { deadline: w.clock.now() + 60_000, clock: w.clock }),
    RuntimeError,
  );
  assertMatch(error.message, /vm is stopped while waiting/);
  assertEquals(w.runner.argsOf("ip"), []);
  await using gone = await world();
  liveList(gone.runner, {});
  await assertRejects(
    () =>
      gone.backend.waitForAddress("vm", { deadline: gone.clock.now() + 1000, clock: gone.clock }),
    NotFoundError,
  );
});

Deno.test("waitForAddress: our tart run dying mid-boot is reported at once", async () => {
  await using w = await world();
  const states: Record<string, string> = { vm: "stopped" };
  liveList(w.runner, states);
  w.launcher.onLaunch = () => {
    states.vm = "running";
  };
  await w.backend.start("vm", { shares: [] });
  let ipCalls = 0;
  w.runner.on(["ip"], () => {
    if (++ipCalls === 2) {
      states.vm = "stopped";
      void w.launcher.runs[0].exit(1, "guest kernel panic\n");
    }
    return fail(1, "no IP address found");
  });
  const t0 = w.clock.now();
  const error = await assertRejects(
    () => w.backend.waitForAddress("vm", { deadline: t0 + 120_000, clock: w.clock }),
    RuntimeError,
  );
  assertMatch(error.message, /exited with code 1 while waiting for an IP address/);
  assertMatch(error.message, /guest kernel panic/);
  assert(w.clock.now() - t0 < 5000);
});

Deno.test("stop: guest sync, then tart stop --timeout [tart] stop_timeout_secs; force → 0", async () => {
  await using w = await world();
  const states: Record<string, string> = { vm: "running", off: "stopped" };
  liveList(w.runner, states);
  w.runner.on(["ip"], ok("10.1.1.1\n"));
  w.runner.on(["stop"], () => {
    states.vm = "stopped";
    return ok();
  });
  await w.backend.stop("vm");
  assertEquals(w.ssh.execs.map((e) => e.request.argv), [["sync"]]);
  assertEquals(w.runner.argsOf("stop"), [["stop", "vm", "--timeout", "30"]]);
  states.vm = "running";
  await w.backend.stop("vm", { force: true });
  assertEquals(w.runner.argsOf("stop")[1], ["stop", "vm", "--timeout", "0"]);
  assertEquals(w.ssh.execs.length, 1, "no sync when forced");
  states.vm = "running";
  await w.backend.stop("vm", { timeoutMs: 4500 });
  assertEquals(w.runner.argsOf("stop")[2], ["stop", "vm", "--timeout", "5"]);
  await w.backend.stop("off");
  assertEquals(w.runner.argsOf("stop").length, 3, "stopping a stopped VM calls nothing");
});

Deno.test("stop: tart's 'is not running' race is success", async () => {
  await using w = await world();
  const states: Record<string, string> = { vm: "running" };
  liveList(w.runner, states);
  w.ssh.probes.key = "unreachable";
  w.runner.on(["ip"], ok("10.1.1.1\n")).on(
    ["exec"],
    fail(1, "Failed to connect ... is the Tart Guest Agent running?"),
  );
  w.runner.on(["stop"], () => {
    states.vm = "stopped";
    return fail(2, 'VM "vm" is not running');
  });
  await w.backend.stop("vm");
});

Deno.test("delete: missing → success; running → stop first; log removed", async () => {
  await using w = await world();
  const states: Record<string, string> = { vm: "running" };
  liveList(w.runner, states);
  w.runner.on(["ip"], ok("10.1.1.1\n"));
  w.runner.on(["stop"], () => {
    states.vm = "stopped";
    return ok();
  });
  w.runner.on(["delete"], () => {
    delete states.vm;
    return ok();
  });
  await Deno.mkdir(`${w.stateDir}/logs`, { recursive: true });
  await Deno.writeTextFile(w.backend.logPath("vm"), "x");
  await w.backend.delete("vm");
  assertEquals(w.runner.calls.map((c) => c.args[0]).filter((a) => a === "stop" || a === "delete"), [
    "stop",
    "delete",
  ]);
  await assertRejects(() => Deno.stat(w.backend.logPath("vm")), Deno.errors.NotFound);
  await w.backend.delete("vm");
  assertEquals(w.runner.argsOf("delete").length, 1);
});

Deno.test("egress: a restricted policy runs the VM under Softnet, to the proxy only", async () => {
  await using w = await world();
  assertEquals(w.backend.capabilities.egress, true);
  const states: Record<string, string> = { vm: "stopped" };
  liveList(w.runner, states);
  w.launcher.onLaunch = () => {
    states.vm = "running";
  };
  assertEquals(await w.backend.getEgress("vm"), { mode: "unrestricted", allow: [] });
  const policy = {
    mode: "allowlist" as const,
    allow: ["a.example"],
    proxy: { host: "192.168.64.1", port: 8080 },
  };
  await w.backend.setEgress("vm", policy);
  const file = `${w.stateDir}/tart-egress/vm.json`;
  assertEquals((await Deno.stat(file)).mode! & 0o777, 0o600);
  await w.backend.start("vm", { shares: [] });
  assertEquals(w.launcher.launches[0].args, [
    "run",
    "--no-graphics",
    "--net-softnet-block=0.0.0.0/0",
    "--net-softnet-allow=192.168.64.1/32",
    "vm",
  ]);
  assertEquals(await w.backend.getEgress("vm"), policy);
  // Another restricted mode: the same Softnet, nothing to restart.
  await w.backend.setEgress("vm", { ...policy, mode: "none" });
  // Unrestricted while it runs under Softnet: kept for the next start, and said so.
  const e = await assertRejects(
    () => w.backend.setEgress("vm", { mode: "unrestricted", allow: [] }),
    ConflictError,
  );
  assertStringIncludes(e.message, "when it starts again");
  await assertRejects(() => w.backend.getEgress("vm"), ConflictError);
  states.vm = "stopped";
  await w.backend.start("vm", { shares: [] });
  assertEquals(w.launcher.launches[1].args, ["run", "--no-graphics", "vm"]);
  await assertRejects(() => w.backend.setEgress("gone", policy), NotFoundError);
});

Deno.test("suspend is unsupported; checkpoints are clones; capabilities say so", async () => {
  await using w = await world();
  assertEquals(w.backend.capabilities.suspend, false);
  assertEquals(w.backend.capabilities.checkpoints, true);
  assertEquals(w.backend.capabilities.checkpointsStopped, true);
  await assertRejects(() => w.backend.suspend("vm"), UnsupportedError, "stop it instead");
});

Deno.test("checkpoints: a clone of the stopped VM, listed by its name, hidden from list", async () => {
  await using w = await world();
  const states: Record<string, string> = { vm: "running", other: "stopped" };
  liveList(w.runner, states);
  w.runner.on(["ip"], ok("10.1.1.1\n"));
  w.runner.on(["clone"], (args) => {
    states[args[2]] = "stopped";
    return ok();
  });
  w.runner.on(["delete"], (args) => {
    delete states[args[1]];
    return ok();
  });
  w.runner.on(["rename"], (args) => {
    states[args[2]] = states[args[1]];
    delete states[args[1]];
    return ok();
  });
  await assertRejects(() => w.backend.createCheckpoint("vm", "c1"), ConflictError, "while it runs");
  assertEquals(w.runner.argsOf("clone"), []);
  states.vm = "stopped";
  const made = await w.backend.createCheckpoint("vm", "c1");
  assertEquals(made.name, "c1");
  assert(Math.abs(Date.parse(made.createdAt) - 1_700_000_000_000) < 600_000, made.createdAt);
  const cpVm = w.runner.argsOf("clone")[0][2];
  assertMatch(cpVm, /^vm\.tkcp\.\d{17}\.c1$/);
  assertEquals(made.sizeBytes, 20e9);
  await assertRejects(() => w.backend.createCheckpoint("vm", "c1"), ConflictError, "already has");
  assertEquals((await w.backend.listCheckpoints("vm")).map((c) => c.name), ["c1"]);
  assertEquals(await w.backend.listCheckpoints("other"), []);
  assertEquals((await w.backend.list()).map((s) => s.name).sort(), ["other", "vm"]);
  await assertRejects(() => w.backend.listCheckpoints("ghost"), NotFoundError);

  // restore: clone to a temporary VM, delete the VM, rename the clone into place.
  await w.backend.restoreCheckpoint("vm", "c1");
  assertEquals(w.runner.argsOf("clone")[1], ["clone", cpVm, "vm.tkcp-restore"]);
  assertEquals(w.runner.argsOf("rename"), [["rename", "vm.tkcp-restore", "vm"]]);
  assert(states[cpVm], "the checkpoint stays");
  await assertRejects(() => w.backend.restoreCheckpoint("vm", "nope"), NotFoundError);

  // clone from a checkpoint: the checkpoint's VM is the source.
  await w.backend.clone("copy", { sandbox: "vm", checkpoint: "c1" });
  assertEquals(w.runner.argsOf("clone")[2], ["clone", cpVm, "copy"]);

  // delete the checkpoint; deleting the VM deletes the others.
  await w.backend.deleteCheckpoint("vm", "c1");
  assertEquals(states[cpVm], undefined);
  await w.backend.createCheckpoint("vm", "c2");
  await w.backend.delete("vm");
  assertEquals(Object.keys(states).sort(), ["copy", "other"]);
});

Deno.test("mountShares: one virtiofs mount of the default tag at /mnt/tachikoma, as root", async () => {
  await using w = await world();
  liveList(w.runner, { vm: "running" });
  w.runner.on(["ip"], ok("10.1.1.7\n"));
  await w.backend.mountShares("vm", [
    share("code", "/w"),
    share("git", "/r/.git", true),
    {
      name: "git-refs",
      hostPath: "/r/.git/refs",
      guestPath: "/mnt/tachikoma/git/refs",
      readOnly: false,
    },
  ]);
  const [{ target, request }] = w.ssh.execs;
  assertEquals([target.host, target.port, target.user, target.auth.kind], [
    "10.1.1.7",
    2222,
    "admin",
    "key",
  ]);
  assertEquals(request.user, "root");
  assertEquals(request.argv.slice(-8), [
    "com.apple.virtio-fs.automount",
    "/mnt/tachikoma",
    "code",
    "/mnt/tachikoma/code",
    "git",
    "/mnt/tachikoma/git",
    "git-refs",
    "/mnt/tachikoma/git/refs",
  ]);
  assertMatch(request.argv[2], /mountpoint -q "\$root".*mount -t virtiofs "\$tag" "\$root"/);
  await w.backend.mountShares("vm", []);
  assertEquals(w.ssh.execs.length, 1);
  w.ssh.reply = () => ({
    code: 32,
    stdout: new Uint8Array(),
    stderr: new TextEncoder().encode("mount: /mnt/tachikoma: unknown filesystem type 'virtiofs'"),
  });
  const error = await assertRejects(
    () => w.backend.mountShares("vm", [share("code", "/w")]),
    RuntimeError,
  );
  assertMatch(error.message, /mounting the shared directories in vm failed \(exit 32\).*virtiofs/);
});

Deno.test("clone: from a stopped sandbox; a running one is refused", async () => {
  await using w = await world();
  liveList(w.runner, { src: "stopped", live: "running" });
  w.runner.on(["clone"], ok());
  await w.backend.clone("copy", { sandbox: "src" });
  assertEquals(w.runner.argsOf("clone"), [["clone", "src", "copy"]]);
  const live = await assertRejects(
    () => w.backend.clone("copy2", { sandbox: "live" }),
    ConflictError,
  );
  assertMatch(live.hint ?? "", /halt it first/);
  await assertRejects(() => w.backend.clone("copy3", { sandbox: "none" }), NotFoundError);
});
