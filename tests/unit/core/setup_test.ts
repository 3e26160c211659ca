import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { runSetup, SETUP_STEPS, type SetupReport } from "../../../src/core/setup.ts";
import {
  ConflictError,
  TimeoutError,
  UnsupportedError,
  UsageError,
} from "../../../src/lib/errors.ts";
import { BRIDGE_CANDIDATES } from "../../../src/lib/routes.ts";
import { fakeDeps, freshWorld, readyWorld } from "./setup_doubles.ts";

const OPTIONS = { yes: false, image: "images:debian/12" };

function statuses(report: SetupReport): Record<string, string> {
  return Object.fromEntries(report.steps.map((s) => [s.step, s.status]));
}

Deno.test("setup: a fresh Debian host with --yes: install, start, pool, bridge off the routes, profile, access, image", async () => {
  const world = freshWorld();
  const report = await runSetup(fakeDeps(world), { ...OPTIONS, yes: true });
  assertEquals(report.steps.map((s) => s.step), [...SETUP_STEPS]);
  assert(report.steps.every((s) => s.status === "done"), JSON.stringify(report.steps));
  assertEquals(report.changed, true);
  assertEquals(report.completed, true);
  assertEquals(world.questions, [], "--yes asks nothing");
  assertEquals(world.changes, [
    "apt-get update",
    "apt-get install incus",
    "start incus",
    "pool default btrfs",
    // The first candidate is a host route: the second one is taken.
    `bridge incusbr0 ${BRIDGE_CANDIDATES[1]}`,
    "profile default +root,eth0",
    "usermod alice incus-admin",
    "pull images:debian/12",
  ]);
  assertEquals(world.profile, {
    root: { type: "disk", path: "/", pool: "default" },
    eth0: { type: "nic", name: "eth0", network: "incusbr0" },
  });
  assertStringIncludes(report.notes.join("\n"), "alice was added to incus-admin: log in again");

  // Idempotent: the second run finds everything done and changes nothing.
  const before = world.changes.length;
  const again = await runSetup(fakeDeps(world), OPTIONS);
  assert(again.steps.every((s) => s.status === "already"), JSON.stringify(again.steps));
  assertEquals(again.changed, false);
  assertEquals(world.changes.length, before);
});

Deno.test("setup: everything set up (the lab's shape) → every step already, nothing changed, as root or as a member", async () => {
  for (const root of [true, false]) {
    const world = readyWorld({ root });
    const report = await runSetup(fakeDeps(world), OPTIONS);
    assertEquals(Object.values(statuses(report)), SETUP_STEPS.map(() => "already"));
    assertEquals(report.changed, false);
    assertEquals(world.changes, []);
    assertStringIncludes(report.steps[3].detail, "tkbr0");
  }
});

Deno.test("setup: Incus missing — asks on a terminal; declined skips every step and changes nothing", async () => {
  const world = freshWorld();
  const report = await runSetup(fakeDeps(world, false), OPTIONS);
  assertEquals(world.questions, ["Incus is not installed. Install it with apt-get? [y/N] "]);
  assertEquals(report.completed, false);
  assertEquals(Object.values(statuses(report)), SETUP_STEPS.map(() => "skipped"));
  assertEquals(world.changes, []);

  const yes = freshWorld();
  const accepted = await runSetup(fakeDeps(yes, true), OPTIONS);
  assertEquals(accepted.completed, true);
  assertEquals(yes.changes.slice(0, 2), ["apt-get update", "apt-get install incus"]);
});

Deno.test("setup: Incus missing without a terminal or --yes → one line naming --yes, nothing installed", async () => {
  const world = freshWorld();
  const error = await assertRejects(() => runSetup(fakeDeps(world), OPTIONS), UsageError);
  assertStringIncludes(error.message, "Incus is not installed");
  assertStringIncludes(error.hint ?? "", "--yes");
  assertEquals(world.changes, []);
});

Deno.test("setup: not Debian/Ubuntu, or no incus package in apt → one clear line (backports on Debian 12)", async () => {
  const fedora = freshWorld({
    os: { id: "fedora", idLike: [], prettyName: "Fedora Linux 41", versionCodename: "" },
  });
  const e1 = await assertRejects(
    () => runSetup(fakeDeps(fedora), { ...OPTIONS, yes: true }),
    UnsupportedError,
  );
  assertStringIncludes(e1.message, "Debian and Ubuntu only (this is Fedora Linux 41)");
  assertEquals(fedora.changes, []);

  const mint = freshWorld({
    os: { id: "linuxmint", idLike: ["ubuntu", "debian"], prettyName: "Mint", versionCodename: "" },
  });
  assertEquals((await runSetup(fakeDeps(mint), { ...OPTIONS, yes: true })).completed, true);

  const noBackports = freshWorld({ candidates: {} });
  const e2 = await assertRejects(
    () => runSetup(fakeDeps(noBackports), { ...OPTIONS, yes: true }),
    UnsupportedError,
  );
  assertStringIncludes(e2.message, "no incus package in the apt sources of Debian GNU/Linux 12");
  assertStringIncludes(e2.hint ?? "", "bookworm-backports");
  assertEquals(noBackports.changes, ["apt-get update"]);
});

Deno.test("setup: the container-only incus-base package counts as installed", async () => {
  const world = readyWorld({ installed: { "incus-base": "6.0.4" } });
  const report = await runSetup(fakeDeps(world), OPTIONS);
  assertEquals(report.steps[0], {
    step: "incus",
    status: "already",
    detail: "incus 6.0.4 installed",
  });
});

Deno.test("setup: a non-root run that has something to change says what and `sudo tachikoma setup`, changing nothing", async () => {
  const cases = [
    freshWorld({ root: false }),
    readyWorld({ root: false, socket: "down" }),
    readyWorld({ root: false, profile: {} }),
    readyWorld({ root: false, groups: { alice: ["alice"] }, socket: "ok" }),
  ];
  const why = [
    "install the incus package",
    "start Incus",
    "add root and eth0 to the default profile",
    "alice is not in the incus-admin group",
  ];
  for (const [i, world] of cases.entries()) {
    const error = await assertRejects(
      () => runSetup(fakeDeps(world), { ...OPTIONS, yes: true }),
      UsageError,
    );
    assertStringIncludes(error.message, why[i]);
    assertStringIncludes(error.hint ?? "", "sudo tachikoma setup");
    assertEquals(world.changes, [], `case ${i}`);
  }
});

Deno.test("setup: no access to the socket → says whether the user lacks the group or only a new login", async () => {
  const notMember = readyWorld({ root: false, socket: "denied", groups: { alice: ["alice"] } });
  const e1 = await assertRejects(() => runSetup(fakeDeps(notMember), OPTIONS), UsageError);
  assertStringIncludes(e1.message, "alice is not in the incus-admin group");

  const newLogin = readyWorld({ root: false, socket: "denied", processGroups: ["alice"] });
  const e2 = await assertRejects(() => runSetup(fakeDeps(newLogin), OPTIONS), UsageError);
  assertStringIncludes(e2.message, "alice cannot use the Incus socket");
  assertStringIncludes(e2.hint ?? "", "this login session is not yet: log in again");
  assertEquals(newLogin.changes, []);
});

Deno.test("setup: an existing pool and managed bridge are used; only the profile changes", async () => {
  const world = readyWorld({
    profile: {},
    pools: [{ name: "fast", driver: "zfs" }],
    networks: [
      { name: "eth0", managed: false, type: "physical", ipv4: null },
      { name: "br-x", managed: true, type: "bridge", ipv4: "10.50.0.1/24" },
    ],
  });
  const report = await runSetup(fakeDeps(world), OPTIONS);
  assertEquals(statuses(report).storage_pool, "already");
  assertEquals(statuses(report).network, "already");
  assertEquals(statuses(report).profile, "done");
  assertEquals(world.changes, ["profile default +root,eth0"]);
  assertEquals(world.profile.root.pool, "fast");
  assertEquals(world.profile.eth0.network, "br-x");
});

Deno.test("setup: a new bridge never takes a subnet of a route or another network; none free → one line, no bridge", async () => {
  const world = freshWorld({
    installed: { incus: "6" },
    socket: "ok",
    routes: ["0.0.0.0/0", "10.217.0.0/16"],
    networks: [{ name: "incusbr0", managed: true, type: "macvlan", ipv4: "10.218.51.1/24" }],
  });
  const report = await runSetup(fakeDeps(world), OPTIONS);
  const bridge = world.changes.find((c) => c.startsWith("bridge "));
  assertEquals(bridge, `bridge tachikomabr0 ${BRIDGE_CANDIDATES[2]}`);
  assertEquals(statuses(report).network, "done");

  const crowded = freshWorld({
    installed: { incus: "6" },
    socket: "ok",
    routes: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
  });
  const error = await assertRejects(() => runSetup(fakeDeps(crowded), OPTIONS), ConflictError);
  assertStringIncludes(error.message, "collides with this host's routes");
  assertStringIncludes(error.hint ?? "", "ipv4.address=");
  assert(!crowded.changes.some((c) => c.startsWith("bridge")), crowded.changes.join());
});

Deno.test("setup: without mkfs.btrfs the new pool is dir; [incus] storage_pool / network names are used", async () => {
  const world = freshWorld({ installed: { incus: "6" }, socket: "ok", commands: [] });
  await runSetup(fakeDeps(world), { ...OPTIONS, storagePool: "sandboxes", network: "tkbr9" });
  assert(world.changes.includes("pool sandboxes dir"), world.changes.join());
  assert(world.changes.some((c) => c.startsWith("bridge tkbr9 ")), world.changes.join());
});

Deno.test("setup: a daemon that never answers after start → TimeoutError at the deadline (fake clock)", async () => {
  const world = freshWorld({ installed: { incus: "6" }, socket: "down", startsAs: null });
  const deps = fakeDeps(world);
  const error = await assertRejects(
    () => runSetup(deps, { ...OPTIONS, daemonTimeoutMs: 5_000 }),
    TimeoutError,
  );
  assertStringIncludes(error.message, "did not answer");
  assert(deps.clock.sleeps.length >= 19, `polled: ${deps.clock.sleeps.length}`);
  assertEquals(world.changes, ["start incus"]);
});
