/**
 * Doubles of setup's external world: a host (users, groups, os-release, services), apt, the
 * local Incus (socket state, pools, networks, the default profile), the host's routes and the
 * image store. Every change is recorded in `changes`, so a test can assert that a run changed
 * nothing.
 *
 * @module
 */
import type { HostSystem, OsRelease, PackageManager } from "../../../src/lib/host_system.ts";
import type {
  Devices,
  IncusAdmin,
  NetworkInfo,
  PoolInfo,
  SocketState,
} from "../../../src/backends/incus/host_admin.ts";
import { type Ipv4Net, parseCidr, type RoutesReader } from "../../../src/lib/routes.ts";
import type { ImageMaker, SetupDeps } from "../../../src/core/setup.ts";
import { FakeClock } from "../../testing/fake_clock.ts";

/** The world the doubles share. */
export interface FakeWorld {
  root: boolean;
  user: string;
  /** Groups in the group database, by user. */
  groups: Record<string, string[]>;
  /** Groups of this process. */
  processGroups: string[];
  os: OsRelease | null;
  commands: string[];
  /** Installed packages and their versions. */
  installed: Record<string, string>;
  /** apt's candidates (after refresh). */
  candidates: Record<string, string>;
  /** Incus: null when not installed. */
  socket: SocketState;
  /** What the socket becomes when the `incus` unit starts (null: it never answers). */
  startsAs: SocketState | null;
  pools: PoolInfo[];
  networks: NetworkInfo[];
  profile: Devices;
  routes: string[];
  images: string[];
  /** Every change made, in order. */
  changes: string[];
  /** Every question asked. */
  questions: string[];
}

/** A Debian 12 host where nothing is set up, run as root through sudo by alice. */
export function freshWorld(overrides: Partial<FakeWorld> = {}): FakeWorld {
  return {
    root: true,
    user: "alice",
    groups: { alice: ["alice", "sudo"] },
    processGroups: ["root"],
    os: {
      id: "debian",
      idLike: [],
      prettyName: "Debian GNU/Linux 12 (bookworm)",
      versionCodename: "bookworm",
    },
    commands: ["mkfs.btrfs"],
    installed: {},
    candidates: { incus: "6.0.4-2~bpo12+1" },
    socket: "missing",
    startsAs: "ok",
    pools: [],
    networks: [
      { name: "lo", managed: false, type: "loopback", ipv4: null },
      { name: "eth0", managed: false, type: "physical", ipv4: null },
    ],
    profile: {},
    routes: ["0.0.0.0/0", "192.168.1.0/24", "10.217.40.0/24"],
    images: [],
    changes: [],
    questions: [],
    ...overrides,
  };
}

/** A host where everything is set up (like the lab). */
export function readyWorld(overrides: Partial<FakeWorld> = {}): FakeWorld {
  return freshWorld({
    installed: { incus: "6.0.4-2~bpo12+1" },
    socket: "ok",
    pools: [{ name: "tachikoma", driver: "btrfs" }],
    networks: [{ name: "tkbr0", managed: true, type: "bridge", ipv4: "10.213.0.1/24" }],
    profile: {
      root: { type: "disk", path: "/", pool: "tachikoma" },
      eth0: { type: "nic", name: "eth0", network: "tkbr0" },
    },
    groups: { alice: ["alice", "incus-admin"] },
    images: ["images:debian/12"],
    ...overrides,
  });
}

class FakeHost implements HostSystem {
  constructor(private readonly w: FakeWorld) {}
  isRoot() {
    return this.w.root;
  }
  invokingUser() {
    return Promise.resolve(this.w.user);
  }
  groupsOf(user: string) {
    return Promise.resolve([...this.w.groups[user] ?? []]);
  }
  processGroups() {
    return Promise.resolve([...this.w.processGroups]);
  }
  addToGroup(user: string, group: string) {
    if (!this.w.root) throw new Error("usermod: Permission denied");
    (this.w.groups[user] ??= []).push(group);
    this.w.changes.push(`usermod ${user} ${group}`);
    return Promise.resolve();
  }
  osRelease() {
    return Promise.resolve(this.w.os);
  }
  hasCommand(name: string) {
    return Promise.resolve(this.w.commands.includes(name));
  }
  startService(unit: string) {
    if (!this.w.root) throw new Error("systemctl: access denied");
    this.w.changes.push(`start ${unit}`);
    if (this.w.startsAs) this.w.socket = this.w.startsAs;
    return Promise.resolve();
  }
}

class FakeApt implements PackageManager {
  constructor(private readonly w: FakeWorld) {}
  installedVersion(pkg: string) {
    return Promise.resolve(this.w.installed[pkg] ?? null);
  }
  refresh() {
    this.w.changes.push("apt-get update");
    return Promise.resolve();
  }
  candidate(pkg: string) {
    return Promise.resolve(this.w.candidates[pkg] ?? null);
  }
  install(pkgs: string[]) {
    if (!this.w.root) throw new Error("apt-get: permission denied");
    for (const p of pkgs) {
      this.w.installed[p] = this.w.candidates[p];
      // Debian's package starts the daemon (socket activation).
      if (p === "incus") this.w.socket = "down";
    }
    this.w.changes.push(`apt-get install ${pkgs.join(" ")}`);
    return Promise.resolve();
  }
}

class FakeIncus implements IncusAdmin {
  readonly where = "/var/lib/incus/unix.socket";
  constructor(private readonly w: FakeWorld) {}
  reach() {
    return Promise.resolve({ state: this.w.socket, detail: `socket is ${this.w.socket}` });
  }
  #api() {
    if (this.w.socket !== "ok") {
      throw new Error(`the API was used with the socket ${this.w.socket}`);
    }
  }
  pools() {
    this.#api();
    return Promise.resolve(structuredClone(this.w.pools));
  }
  networks() {
    this.#api();
    return Promise.resolve(structuredClone(this.w.networks));
  }
  profileDevices(_profile: string) {
    this.#api();
    return Promise.resolve(structuredClone(this.w.profile));
  }
  createPool(pool: PoolInfo) {
    this.#api();
    this.w.pools.push(pool);
    this.w.changes.push(`pool ${pool.name} ${pool.driver}`);
    return Promise.resolve();
  }
  createBridge(name: string, ipv4: string) {
    this.#api();
    if (!parseCidr(ipv4)) throw new Error(`bridge without an explicit subnet: ${ipv4}`);
    this.w.networks.push({ name, managed: true, type: "bridge", ipv4 });
    this.w.changes.push(`bridge ${name} ${ipv4}`);
    return Promise.resolve();
  }
  addProfileDevices(profile: string, devices: Devices) {
    this.#api();
    Object.assign(this.w.profile, structuredClone(devices));
    this.w.changes.push(`profile ${profile} +${Object.keys(devices).join(",")}`);
    return Promise.resolve();
  }
  close() {}
}

/** Setup's dependencies over `world`; `answer` answers the questions (null: no terminal). */
export function fakeDeps(world: FakeWorld, answer: boolean | null = null): SetupDeps & {
  clock: FakeClock;
} {
  const routes: RoutesReader = {
    ipv4Routes: () => Promise.resolve(world.routes.map((r) => parseCidr(r) as Ipv4Net)),
  };
  const images: ImageMaker = {
    isLocal: (ref) => Promise.resolve(world.images.includes(ref)),
    pull: (ref) => {
      world.images.push(ref);
      world.changes.push(`pull ${ref}`);
      return Promise.resolve();
    },
  };
  return {
    host: new FakeHost(world),
    packages: new FakeApt(world),
    incus: new FakeIncus(world),
    routes,
    images,
    clock: new FakeClock(undefined, { autoAdvance: true }),
    confirm: answer === null ? null : (question) => {
      world.questions.push(question);
      return Promise.resolve(answer);
    },
  };
}
