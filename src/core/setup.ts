/**
 * `tachikoma setup`: makes a Debian/Ubuntu host ready for the Incus engine, changing nothing
 * that is already set up. Steps, in order:
 *
 * 1. `incus`: the distribution's `incus` package, installed when missing (asked first, or
 *    `--yes`);
 * 2. `daemon`: the daemon's socket answers (the `incus` unit started when it does not);
 * 3. `storage_pool`: the default profile's root disk, or an existing pool, or a new `default`
 *    pool (btrfs when `mkfs.btrfs` exists, else dir);
 * 4. `network`: the default profile's NIC, or an existing managed bridge with an IPv4 subnet, or
 *    a new bridge with an explicit subnet that collides with none of the host's routes nor
 *    another network's subnet (never Incus' automatic choice);
 * 5. `profile`: the default profile gets the root disk and the NIC it lacks;
 * 6. `access`: the invoking user (`SUDO_USER` under sudo) in `incus-admin`;
 * 7. `image`: the default image made local (pulled once).
 *
 * Every external action sits behind an interface (package manager, host, Incus API, routes,
 * image store) so this logic is tested with doubles. Changes need root: a non-root run that
 * finds something to change stops with {@link NeedsRootError} saying what (the CLI then runs
 * setup again through sudo on a terminal).
 *
 * @module
 */
import type { HostSystem, PackageManager } from "../lib/host_system.ts";
import { isDebianLike } from "../lib/host_system.ts";
import type { Devices, IncusAdmin, NetworkInfo } from "../backends/incus/host_admin.ts";
import { BRIDGE_CANDIDATES, chooseSubnet, parseCidr, type RoutesReader } from "../lib/routes.ts";
import type { Clock } from "../lib/clock.ts";
import { ConflictError, TimeoutError, UnsupportedError, UsageError } from "../lib/errors.ts";

/** A change that needs root, found by a non-root run (the CLI may run setup again with sudo). */
export class NeedsRootError extends UsageError {
  constructor(message: string) {
    super(message, { hint: "run it again with sudo: sudo tachikoma setup" });
  }
}

/** The steps, in order. */
export const SETUP_STEPS = [
  "incus",
  "daemon",
  "storage_pool",
  "network",
  "profile",
  "access",
  "image",
] as const;

/** A step's name. */
export type SetupStepName = typeof SETUP_STEPS[number];

/** What a step did: changed something, found it done, or did not run. */
export type SetupStatus = "done" | "already" | "skipped";

/** One step's outcome. */
export interface SetupStep {
  step: SetupStepName;
  status: SetupStatus;
  detail: string;
}

/** The whole run. */
export interface SetupReport {
  steps: SetupStep[];
  /** True when a step changed something. */
  changed: boolean;
  /** False when the user declined the installation (the later steps are skipped). */
  completed: boolean;
  /** What the user has to do afterwards (log in again…). */
  notes: string[];
}

/** Makes an image local. */
export interface ImageMaker {
  /** True when `ref` is already in the local image store. */
  isLocal(ref: string): Promise<boolean>;
  /** Pulls `ref` into the local image store. */
  pull(ref: string): Promise<void>;
}

/** The group whose members may use the Incus socket (Debian and Ubuntu packages). */
export const INCUS_GROUP = "incus-admin";
/** The profile new sandboxes use. */
export const PROFILE = "default";

/** What setup needs. */
export interface SetupDeps {
  host: HostSystem;
  packages: PackageManager;
  incus: IncusAdmin;
  routes: RoutesReader;
  images: ImageMaker;
  clock: Clock;
  /** Asks a yes/no question; null when nobody can answer (no terminal). */
  confirm: ((question: string) => Promise<boolean>) | null;
  /** Tells what is happening (progress on stderr). */
  note?: (text: string) => void;
}

/** Options of {@link runSetup}. */
export interface SetupOptions {
  /** Install without asking. */
  yes: boolean;
  /** The default image (`imageFor(config, "incus")`). */
  image: string;
  /** `[incus] storage_pool` / `[incus] network` when set: used as they are. */
  storagePool?: string;
  network?: string;
  /** How long to wait for the daemon after starting it (default 60 s). */
  daemonTimeoutMs?: number;
}

/** Runs the steps; see the module doc. */
export async function runSetup(deps: SetupDeps, options: SetupOptions): Promise<SetupReport> {
  const steps: SetupStep[] = [];
  const notes: string[] = [];
  const add = (step: SetupStepName, status: SetupStatus, detail: string) =>
    steps.push({ step, status, detail });
  const report = (completed: boolean): SetupReport => {
    for (const name of SETUP_STEPS.slice(steps.length)) add(name, "skipped", "not reached");
    return { steps, changed: steps.some((s) => s.status === "done"), completed, notes };
  };
  const root = deps.host.isRoot();
  const needRoot = (what: string): never => {
    throw new NeedsRootError(`tachikoma setup has to ${what}, which needs root`);
  };

  // 1. The package.
  let reach = await deps.incus.reach();
  // Debian's container-only flavour (incus-base) counts too.
  const installed = await deps.packages.installedVersion("incus") ??
    await deps.packages.installedVersion("incus-base");
  if (installed !== null || reach.state !== "missing") {
    add("incus", "already", installed ? `incus ${installed} installed` : "Incus is installed");
  } else {
    const os = await deps.host.osRelease();
    if (!os || !isDebianLike(os)) {
      throw new UnsupportedError(
        `Incus is not installed, and tachikoma setup installs it on Debian and Ubuntu only ` +
          `(this is ${os?.prettyName ?? "an unknown system"})`,
        { hint: "install Incus (https://linuxcontainers.org/incus/docs/main/installing/)" },
      );
    }
    if (!options.yes) {
      if (!deps.confirm) {
        throw new UsageError(
          "Incus is not installed: tachikoma setup installs it with apt-get after asking",
          { hint: "pass --yes to install without asking" },
        );
      }
      if (!await deps.confirm(`Incus is not installed. Install it with apt-get? [y/N] `)) {
        add("incus", "skipped", "declined: Incus is not installed");
        return report(false);
      }
    }
    if (!root) needRoot("install the incus package");
    deps.note?.("installing incus with apt-get");
    await deps.packages.refresh();
    if (await deps.packages.candidate("incus") === null) {
      throw new UnsupportedError(`no incus package in the apt sources of ${os.prettyName}`, {
        hint: os.versionCodename === "bookworm"
          ? "on Debian 12 Incus comes from bookworm-backports: add " +
            "'deb http://deb.debian.org/debian bookworm-backports main' to the apt sources"
          : "Incus is in Debian 13 and Ubuntu 24.04 and later",
      });
    }
    await deps.packages.install(["incus"]);
    add("incus", "done", `installed incus ${await deps.packages.installedVersion("incus") ?? ""}`);
    reach = await deps.incus.reach();
  }

  // 2. The daemon.
  if (reach.state === "ok") {
    add("daemon", "already", `Incus answers at ${deps.incus.where}`);
  } else if (reach.state === "denied") {
    // The daemon is up; this user cannot use it yet (step 6 says why).
    add("daemon", "already", `Incus is running at ${deps.incus.where}`);
  } else {
    if (!root) needRoot(`start Incus (${reach.detail})`);
    deps.note?.("starting incus");
    await deps.host.startService("incus");
    reach = await waitForSocket(deps, options.daemonTimeoutMs ?? 60_000);
    add("daemon", "done", `started Incus (${deps.incus.where})`);
  }

  if (reach.state === "denied") {
    // Only a non-root user lacks access: tell exactly what is missing.
    await accessStep(deps, add, notes);
    throw new UsageError(
      `${await deps.host.invokingUser()} cannot use the Incus socket ${deps.incus.where} yet`,
      { hint: await accessHint(deps) },
    );
  }

  // 3–5. Initialisation.
  const devices = await deps.incus.profileDevices(PROFILE);
  const rootDisk = Object.values(devices).find((d) => d.type === "disk" && d.path === "/");
  const nic = Object.values(devices).find((d) => d.type === "nic");
  const wanted: Devices = {};

  if (rootDisk) {
    add("storage_pool", "already", `${rootDisk.pool} (root disk of the ${PROFILE} profile)`);
  } else {
    const pools = await deps.incus.pools();
    const existing = options.storagePool
      ? pools.find((p) => p.name === options.storagePool)
      : pools[0];
    if (existing) {
      add("storage_pool", "already", `${existing.name} (${existing.driver})`);
    } else {
      if (!root) needRoot("create a storage pool");
      const name = options.storagePool ?? "default";
      const driver = await deps.host.hasCommand("mkfs.btrfs") ? "btrfs" : "dir";
      await deps.incus.createPool({ name, driver });
      add("storage_pool", "done", `created ${name} (${driver})`);
    }
    wanted[freeDeviceName(devices, "root")] = {
      type: "disk",
      path: "/",
      pool: existing?.name ?? options.storagePool ?? "default",
    };
  }

  if (nic) {
    add("network", "already", `${nic.network ?? nic.parent} (NIC of the ${PROFILE} profile)`);
  } else {
    const networks = await deps.incus.networks();
    const existing = options.network
      ? networks.find((n) => n.name === options.network)
      : networks.find((n) => n.managed && n.type === "bridge" && n.ipv4 !== null);
    let network: string;
    if (existing) {
      network = existing.name;
      add("network", "already", `${existing.name}${existing.ipv4 ? ` (${existing.ipv4})` : ""}`);
    } else {
      if (!root) needRoot("create a network bridge");
      network = options.network ?? freeNetworkName(networks);
      const subnet = await pickSubnet(deps, networks);
      await deps.incus.createBridge(network, subnet);
      add("network", "done", `created bridge ${network} (${subnet}, NAT)`);
    }
    wanted[freeDeviceName(devices, "eth0")] = { type: "nic", name: "eth0", network };
  }

  if (Object.keys(wanted).length === 0) {
    add("profile", "already", `the ${PROFILE} profile has a root disk and a NIC`);
  } else {
    if (!root) needRoot(`add ${Object.keys(wanted).join(" and ")} to the ${PROFILE} profile`);
    await deps.incus.addProfileDevices(PROFILE, wanted);
    add("profile", "done", `added ${Object.keys(wanted).join(", ")} to the ${PROFILE} profile`);
  }

  // 6. Access for the invoking user.
  await accessStep(deps, add, notes);

  // 7. The default image.
  if (await deps.images.isLocal(options.image)) {
    add("image", "already", `${options.image} is local`);
  } else {
    deps.note?.(`pulling ${options.image}`);
    await deps.images.pull(options.image);
    add("image", "done", `pulled ${options.image}`);
  }
  return report(true);
}

async function accessStep(
  deps: SetupDeps,
  add: (step: SetupStepName, status: SetupStatus, detail: string) => void,
  notes: string[],
): Promise<void> {
  const user = await deps.host.invokingUser();
  if (user === "root") {
    add("access", "already", "root uses the socket directly");
    return;
  }
  const groups = await deps.host.groupsOf(user);
  if (groups.includes(INCUS_GROUP)) {
    add("access", "already", `${user} is in ${INCUS_GROUP}`);
    return;
  }
  if (!deps.host.isRoot()) {
    throw new NeedsRootError(
      `${user} is not in the ${INCUS_GROUP} group, which needs root to change`,
    );
  }
  await deps.host.addToGroup(user, INCUS_GROUP);
  add("access", "done", `added ${user} to ${INCUS_GROUP}`);
  notes.push(`${user} was added to ${INCUS_GROUP}: log in again (or run: newgrp ${INCUS_GROUP})`);
}

/** What a user who cannot use the socket should do. */
async function accessHint(deps: SetupDeps): Promise<string> {
  const user = await deps.host.invokingUser();
  const listed = (await deps.host.groupsOf(user)).includes(INCUS_GROUP);
  const now = (await deps.host.processGroups()).includes(INCUS_GROUP);
  if (listed && !now) {
    return `${user} is in ${INCUS_GROUP} but this login session is not yet: log in again ` +
      `(or run: newgrp ${INCUS_GROUP})`;
  }
  return `add ${user} to ${INCUS_GROUP}: sudo tachikoma setup, then log in again`;
}

async function waitForSocket(deps: SetupDeps, timeoutMs: number) {
  const deadline = deps.clock.now() + timeoutMs;
  for (;;) {
    const reach = await deps.incus.reach();
    if (reach.state === "ok") return reach;
    if (deps.clock.now() >= deadline) {
      throw new TimeoutError(
        `Incus did not answer at ${deps.incus.where} within ${timeoutMs / 1000} s after ` +
          `starting it: ${reach.detail}`,
        { hint: "see journalctl -u incus" },
      );
    }
    await deps.clock.sleep(250);
  }
}

/** A subnet for a new bridge: the first candidate off every route and network subnet. */
async function pickSubnet(deps: SetupDeps, networks: NetworkInfo[]): Promise<string> {
  const taken = [
    ...await deps.routes.ipv4Routes(),
    ...networks.map((n) => n.ipv4 && parseCidr(n.ipv4)).filter((n) => !!n),
  ];
  const subnet = chooseSubnet(BRIDGE_CANDIDATES, taken);
  if (!subnet) {
    throw new ConflictError(
      `every candidate subnet for a new bridge collides with this host's routes ` +
        `(${BRIDGE_CANDIDATES.join(", ")})`,
      {
        hint: "create a bridge with a free subnet yourself " +
          "(incus network create <name> ipv4.address=<a.b.c.1/24>) and run setup again",
      },
    );
  }
  return subnet;
}

function freeNetworkName(networks: NetworkInfo[]): string {
  const names = new Set(networks.map((n) => n.name));
  for (const name of ["incusbr0", "tachikomabr0"]) if (!names.has(name)) return name;
  for (let n = 1;; n++) if (!names.has(`tachikomabr${n}`)) return `tachikomabr${n}`;
}

function freeDeviceName(devices: Devices, base: string): string {
  if (!(base in devices)) return base;
  for (let n = 1;; n++) if (!(`${base}${n}` in devices)) return `${base}${n}`;
}
