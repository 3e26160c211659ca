/**
 * `doctor` on a host whose Incus cannot be used yet: not installed, not running, no access to
 * the socket, not initialised — each says exactly what is missing and that `tachikoma setup`
 * fixes it. Doubles for the socket, apt and the host.
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import {
  incusChecks,
  localAccessCheck,
  type LocalIncusProbe,
  networkCheck,
  poolCheck,
} from "../../../src/doctor/incus.ts";
import type { SocketState } from "../../../src/backends/incus/host_admin.ts";
import { defaultConfig } from "../../../src/config/default_config.ts";

function probe(options: {
  state: SocketState;
  installed?: Record<string, string>;
  listed?: string[];
  session?: string[];
}): LocalIncusProbe {
  return {
    admin: {
      where: "/var/lib/incus/unix.socket",
      reach: () => Promise.resolve({ state: options.state, detail: `socket ${options.state}` }),
    },
    packages: {
      installedVersion: (pkg) => Promise.resolve(options.installed?.[pkg] ?? null),
    },
    host: {
      invokingUser: () => Promise.resolve("alice"),
      groupsOf: () => Promise.resolve(options.listed ?? ["alice"]),
      processGroups: () => Promise.resolve(options.session ?? ["alice"]),
    },
  };
}

Deno.test("doctor: Incus not installed → says so and that tachikoma setup installs it", async () => {
  const check = await localAccessCheck(probe({ state: "missing" }));
  assertEquals(check?.ok, false);
  assertEquals(check?.required, true);
  assertEquals(
    check?.message,
    "Incus is not installed (no incus package, no socket at /var/lib/incus/unix.socket)",
  );
  assertStringIncludes(check?.hint ?? "", "tachikoma setup installs it");
});

Deno.test("doctor: installed but not running (no socket, or refused) → tachikoma setup starts it", async () => {
  for (const state of ["missing", "down"] as const) {
    const check = await localAccessCheck(
      probe({ state, installed: { "incus-base": "6.0.4" } }),
    );
    assertStringIncludes(check?.message ?? "", "Incus is installed but its daemon does not answer");
    assertStringIncludes(check?.hint ?? "", "tachikoma setup starts it");
  }
});

Deno.test("doctor: no access to the socket → not in incus-admin (setup adds), or a new login needed", async () => {
  const notMember = await localAccessCheck(probe({ state: "denied" }));
  assertEquals(
    notMember?.message,
    "alice cannot use the Incus socket /var/lib/incus/unix.socket: alice is not in the " +
      "incus-admin group",
  );
  assertEquals(
    notMember?.hint,
    "sudo tachikoma setup adds alice to incus-admin (then log in again)",
  );

  const relogin = await localAccessCheck(
    probe({ state: "denied", listed: ["alice", "incus-admin"] }),
  );
  assertStringIncludes(
    relogin?.message ?? "",
    "alice is in incus-admin, but this login session is not",
  );
  assertStringIncludes(relogin?.hint ?? "", "log in again");
});

Deno.test("doctor: a socket that answers needs no access diagnosis", async () => {
  assertEquals(await localAccessCheck(probe({ state: "ok" })), null);
});

Deno.test("doctor: incusChecks stops at the access diagnosis (one check, no API call)", async () => {
  const results = await incusChecks(
    { ...defaultConfig("linux"), backend: "incus" },
    { local: probe({ state: "missing" }) },
  );
  assertEquals(results.length, 1);
  assertEquals(results[0].name, "incus api");
  assertStringIncludes(results[0].message, "Incus is not installed");
});

Deno.test("doctor: an uninitialised Incus (default profile without root disk and NIC) → tachikoma setup initialises it", async () => {
  const get = <T>(): Promise<T> => Promise.reject(new Error("not called"));
  const pool = await poolCheck(get, undefined, []);
  assertEquals(pool.ok, false);
  assertStringIncludes(pool.message, "Incus is not initialised: no storage pool");
  assertStringIncludes(pool.hint ?? "", "tachikoma setup initialises it");
  const network = await networkCheck(get, undefined, []);
  assertEquals(network.ok, false);
  assertStringIncludes(network.message, "Incus is not initialised: no network");
  assertStringIncludes(network.hint ?? "", "tachikoma setup creates a bridge with its own subnet");
});
