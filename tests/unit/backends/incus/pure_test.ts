/** The Incus backend's pure parts: states, addresses, bodies, shares, ids, errors, exec argv. */
import { assert, assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import {
  cloneConfig,
  createBody,
  imageSource,
  ipv4Addresses,
  leasedIpv4,
  mapStatus,
  nicNetworks,
  toInfo,
} from "../../../../src/backends/incus/instances.ts";
import {
  checkShares,
  sameDevices,
  shareDevice,
  withoutShares,
  withShares,
} from "../../../../src/backends/incus/shares.ts";
import { aclSpec, guestHostIds } from "../../../../src/backends/incus/share_access.ts";
import { incusError, unreachable } from "../../../../src/backends/incus/errors.ts";
import { checkEnv, identity, withCwd } from "../../../../src/backends/incus/exec_ops.ts";
import {
  ConflictError,
  NotFoundError,
  RuntimeError,
  TimeoutError,
  UnreachableError,
  UsageError,
} from "../../../../src/lib/errors.ts";
import { systemClock } from "../../../../src/lib/clock.ts";
import type { Share } from "../../../../src/backends/backend.ts";
import type { IncusClient } from "../../../../src/backends/incus/client.ts";

Deno.test("mapStatus covers Incus statuses", () => {
  assertEquals(mapStatus("Running"), "running");
  assertEquals(mapStatus("Stopped"), "stopped");
  assertEquals(mapStatus("Frozen"), "suspended");
  assertEquals(mapStatus("Starting"), "starting");
  assertEquals(mapStatus("Stopping"), "stopping");
  assertEquals(mapStatus("Freezing"), "stopping");
  assertEquals(mapStatus("Error"), "unknown");
});

Deno.test("ipv4Addresses keeps global inet addresses of non-lo interfaces, eth0 first", () => {
  const state = {
    status: "Running",
    status_code: 103,
    network: {
      lo: { addresses: [{ family: "inet", address: "127.0.0.1", scope: "local" }] },
      zz0: { addresses: [{ family: "inet", address: "10.9.0.2", scope: "global" }] },
      eth0: {
        addresses: [
          { family: "inet6", address: "fe80::1", scope: "link" },
          { family: "inet", address: "169.254.3.3", scope: "link" },
          { family: "inet", address: "10.213.0.5", scope: "global" },
        ],
      },
    },
  };
  assertEquals(ipv4Addresses(state), ["10.213.0.5", "10.9.0.2"]);
  assertEquals(ipv4Addresses({ status: "Stopped", status_code: 102, network: null }), []);
  assertEquals(ipv4Addresses(undefined), []);
});

Deno.test("toInfo: an instance listed while Incus creates or deletes it (config null)", () => {
  const info = toInfo({
    name: "someone-elses",
    status: "Stopped",
    status_code: 102,
    config: null as unknown as Record<string, string>,
    devices: null as unknown as Record<string, never>,
    state: null,
  });
  assertEquals(info, { name: "someone-elses", state: "stopped", addresses: [] });
});

Deno.test("toInfo reads state, addresses, image and creation time", () => {
  const info = toInfo({
    name: "tk-a",
    status: "Running",
    status_code: 103,
    created_at: "2026-11-20T10:00:00Z",
    config: { "user.tachikoma.image": "tachikoma-test" },
    devices: {},
    state: {
      status: "Running",
      status_code: 103,
      network: {
        eth0: { addresses: [{ family: "inet", address: "10.213.0.9", scope: "global" }] },
      },
    },
  });
  assertEquals(info, {
    name: "tk-a",
    state: "running",
    addresses: ["10.213.0.9"],
    image: "tachikoma-test",
    createdAt: "2026-11-20T10:00:00Z",
  });
});

Deno.test("createBody: limits, pool, network, image sources", () => {
  const body = createBody({
    name: "tk-x",
    image: "lab:debian/12",
    source: { type: "image", fingerprint: "49254caad511" },
    cpus: 4,
    memoryMb: 8192,
    storagePool: "fast",
    network: "tkbr0",
    diskGb: 20,
  });
  assertEquals(body.type, "container");
  assertEquals(body.start, false);
  assertEquals(body.source, { type: "image", fingerprint: "49254caad511" });
  assertEquals(body.config, {
    "limits.cpu": "4",
    "limits.memory": "8192MiB",
    "user.tachikoma.image": "lab:debian/12",
  });
  assertEquals(body.devices, {
    root: { type: "disk", path: "/", pool: "fast", size: "20GiB" },
    eth0: { type: "nic", name: "eth0", network: "tkbr0" },
  });
  // without pool/network the default profile's devices apply
  const source = imageSource({ kind: "alias", alias: "x" });
  assertEquals(createBody({ name: "a", image: "x", source, cpus: 1, memoryMb: 512 }).devices, {});
  assertEquals(imageSource({ kind: "fingerprint", fingerprint: "7aee6481e86a" }), {
    type: "image",
    fingerprint: "7aee6481e86a",
  });
  assertEquals(source, { type: "image", alias: "x" });
});

Deno.test("cloneConfig drops every volatile key", () => {
  assertEquals(
    cloneConfig({
      "limits.cpu": "2",
      "volatile.eth0.hwaddr": "00:16:3e:00:00:01",
      "volatile.uuid": "u",
      "volatile.base_image": "b",
      "raw.idmap": "both 1000 1000",
    }),
    { "limits.cpu": "2", "raw.idmap": "both 1000 1000" },
  );
});

const shares: Share[] = [
  { name: "code", hostPath: "/h/code", guestPath: "/mnt/tachikoma/code", readOnly: false },
  {
    name: "claude-rules",
    hostPath: "/h/r",
    guestPath: "/mnt/tachikoma/claude-rules",
    readOnly: true,
  },
];

Deno.test("share devices: never shifted, readonly as the share says, stale ones replaced", () => {
  assertEquals(shareDevice(shares[0]), {
    type: "disk",
    source: "/h/code",
    path: "/mnt/tachikoma/code",
    readonly: "false",
  });
  assertEquals(shareDevice(shares[1]).readonly, "true");
  const existing = {
    eth0: { type: "nic", network: "tkbr0" },
    "tk-share-old": { type: "disk", source: "/gone", path: "/mnt/tachikoma/old" },
    "tk-share-code": {
      type: "disk",
      source: "/h/code",
      path: "/mnt/tachikoma/code",
      shift: "true",
    },
  };
  const next = withShares(existing, shares);
  assertEquals(Object.keys(next).sort(), ["eth0", "tk-share-claude-rules", "tk-share-code"]);
  assertEquals(next["tk-share-code"].shift, undefined, "an old shifted device is replaced");
  assert(sameDevices(next, withShares(next, shares)));
  assert(!sameDevices(next, existing));
  assertEquals(withoutShares(next), { eth0: { type: "nic", network: "tkbr0" } });
});

Deno.test("guestHostIds: root and the sandbox user from the container's id map", () => {
  const map = JSON.stringify([
    { Isuid: true, Isgid: false, Hostid: 1000000, Nsid: 0, Maprange: 1000000000 },
    { Isuid: false, Isgid: true, Hostid: 1000000, Nsid: 0, Maprange: 1000000000 },
  ]);
  assertEquals(guestHostIds({ "volatile.idmap.next": map }, { uid: 1000, gid: 1000 }), {
    root: { uid: 1000000, gid: 1000000 },
    user: { uid: 1001000, gid: 1001000 },
  });
  // A raw.idmap (made by an older tachikoma) shows in the current map: the user is host 1234.
  const raw = JSON.stringify([
    { Isuid: true, Isgid: true, Hostid: 1234, Nsid: 1000, Maprange: 1 },
    { Isuid: true, Isgid: false, Hostid: 1000000, Nsid: 0, Maprange: 1000 },
    { Isuid: false, Isgid: true, Hostid: 1000000, Nsid: 0, Maprange: 1000 },
  ]);
  assertEquals(
    guestHostIds({ "volatile.idmap.current": raw }, { uid: 1000, gid: 1000 }).user,
    { uid: 1234, gid: 1234 },
  );
  assertThrows(() => guestHostIds({}, { uid: 1000, gid: 1000 }), RuntimeError, "no id map");
  assertThrows(
    () => guestHostIds({ "volatile.idmap.next": "[]" }, { uid: 1000, gid: 1000 }),
    RuntimeError,
    "does not map 0",
  );
});

Deno.test("aclSpec: the container's ids get rwX, defaults also for the host user", () => {
  const guest = { root: { uid: 1000000, gid: 1000000 }, user: { uid: 1001000, gid: 1001000 } };
  assertEquals(
    aclSpec(guest, { uid: 501, gid: 20 }),
    "u:1001000:rwX,g:1001000:rwX,u:1000000:rwX,g:1000000:rwX," +
      "d:u:1001000:rwX,d:g:1001000:rwX,d:u:1000000:rwX,d:g:1000000:rwX,d:u:501:rwX,d:g:20:rwX",
  );
});

Deno.test("checkShares rejects bad names and relative paths", () => {
  checkShares(shares);
  assertThrows(() => checkShares([{ ...shares[0], name: "../x" }]), UsageError);
  assertThrows(() => checkShares([{ ...shares[0], name: "a b" }]), UsageError);
  assertThrows(() => checkShares([{ ...shares[0], hostPath: "rel" }]), UsageError);
  assertThrows(() => checkShares([{ ...shares[0], guestPath: "mnt" }]), UsageError);
});

Deno.test("incusError maps codes and messages to typed errors", () => {
  assertInstanceOf(incusError(404, "Not Found", 'sandbox "a"'), NotFoundError);
  assertEquals(incusError(404, "Not Found", 'sandbox "a"').message, 'sandbox "a" not found');
  assertInstanceOf(incusError(400, "Snapshot a/x does not exist"), NotFoundError);
  assertInstanceOf(incusError(409, "whatever"), ConflictError);
  const dup = incusError(
    500,
    'Failed creating instance record: Failed to create "instances" entry: UNIQUE constraint failed',
    'sandbox "a"',
  );
  assertInstanceOf(dup, ConflictError);
  assertEquals(dup.message, 'sandbox "a" already exists');
  assertInstanceOf(incusError(400, "Instance is not running", 'sandbox "a"'), ConflictError);
  assertInstanceOf(incusError(500, "context deadline exceeded"), TimeoutError);
  assertInstanceOf(incusError(403, "not authorized"), UnreachableError);
  const other = incusError(500, "Failed to run: forkstart", 'sandbox "a"');
  assertInstanceOf(other, RuntimeError);
  assertEquals(other.message, 'sandbox "a": failed to run: forkstart');
});

Deno.test("unreachable says what to do", () => {
  const socket = unreachable("/var/lib/incus/unix.socket", new TypeError("client error (Connect)"));
  assertEquals(
    socket.message,
    "cannot reach Incus at /var/lib/incus/unix.socket: is incusd running? (tachikoma doctor)",
  );
  assert(socket.hint?.includes("tachikoma setup"));
  const denied = unreachable("/s", new TypeError("Permission denied (os error 13)"));
  assertEquals(denied.message, "cannot reach Incus at /s: permission denied");
  assert(denied.hint?.includes("incus-admin"));
  assert(denied.hint?.includes("tachikoma setup"));
  const tls = unreachable(
    "https://h:8443",
    new TypeError("invalid peer certificate: UnknownIssuer"),
  );
  assertEquals(tls.message, "cannot reach Incus at https://h:8443: TLS handshake failed");
});

const execCtx = {
  client: null as unknown as IncusClient,
  clock: systemClock,
  sshUser: "admin",
  guestUid: 1000,
  guestGid: 1000,
};

Deno.test("identity: root is uid 0, the user is 1000 with HOME and USER", () => {
  assertEquals(identity("root", execCtx), { uid: 0, gid: 0, home: "/root", env: {} });
  const user = identity(undefined, execCtx);
  assertEquals([user.uid, user.gid, user.home], [1000, 1000, "/home/admin"]);
  assertEquals(user.env.HOME, "/home/admin");
  assertEquals(user.env.USER, "admin");
});

Deno.test("withCwd passes the directory as an argument, never as shell text", () => {
  const dir = "/tmp/it's $(x) `y`";
  const argv = withCwd(["printf", "%s", "a b"], dir);
  assertEquals(argv.slice(0, 2), ["/bin/sh", "-c"]);
  assert(!argv[2].includes(dir));
  assertEquals(argv.slice(3), ["sh", dir, "printf", "%s", "a b"]);
  assertEquals(withCwd(["true"], undefined), ["true"]);
});

Deno.test("checkEnv rejects bad names and NUL", () => {
  checkEnv({ OK_1: "$(x)\n'\"" });
  assertThrows(() => checkEnv({ "A-B": "x" }), UsageError);
  assertThrows(() => checkEnv({ A: "x\0y" }), UsageError);
});

Deno.test("leases: NICs on managed networks, matched by MAC, IPv4 only", () => {
  const instance = {
    name: "a",
    status: "Running",
    status_code: 103,
    config: {
      "volatile.eth0.hwaddr": "10:66:6A:00:00:01",
      "volatile.eth1.hwaddr": "10:66:6a:00:00:02",
    },
    devices: {},
    expanded_devices: {
      root: { type: "disk", path: "/", pool: "p" },
      eth1: { type: "nic", nictype: "bridged", parent: "br1" },
      eth0: { type: "nic", network: "tkbr0" },
    },
  };
  assertEquals(nicNetworks(instance), [
    { network: "tkbr0", hwaddr: "10:66:6a:00:00:01" },
    { network: "br1", hwaddr: "10:66:6a:00:00:02" },
  ]);
  const leases = [
    { hostname: "tkbr0.gw", hwaddr: "", address: "10.213.0.1", type: "gateway" },
    { hostname: "a", hwaddr: "10:66:6a:00:00:01", address: "10.213.0.5", type: "dynamic" },
    { hostname: "a", hwaddr: "10:66:6a:00:00:01", address: "fd42::5", type: "dynamic" },
    { hostname: "b", hwaddr: "10:66:6a:00:00:09", address: "10.213.0.9", type: "dynamic" },
  ];
  assertEquals(leasedIpv4(leases, "10:66:6a:00:00:01"), ["10.213.0.5"]);
  assertEquals(leasedIpv4(leases, "10:66:6a:00:00:02"), []);
});
