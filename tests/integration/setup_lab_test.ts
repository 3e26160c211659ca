/**
 * `tachikoma setup` against the lab's real Incus, which is already set up: the real adapters
 * (apt/dpkg, the host's users and groups, /proc/net/route, the Incus socket, the image store)
 * must report every step `already` and change nothing. Read-only by construction: the adapters
 * are wrapped so any mutating call fails the test, and the lab's pool, bridge (tkbr0), default
 * profile, the `incus-admin` group and the image alias are compared before and after. As root
 * and as the lab's non-root user in `incus-admin` (through the CLI, `--json`); then `doctor`.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { runSetup, SETUP_STEPS } from "../../src/core/setup.ts";
import { SocketIncusAdmin } from "../../src/backends/incus/host_admin.ts";
import { IncusClient } from "../../src/backends/incus/client.ts";
import { openIncus } from "../../src/backends/incus/mod.ts";
import { AptPackages, RealHostSystem } from "../../src/lib/host_system.ts";
import { formatNet, procRoutes } from "../../src/lib/routes.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { defaultConfig } from "../../src/config/default_config.ts";
import { localAccessCheck } from "../../src/doctor/incus.ts";
import { labEnv, labIgnored } from "./lab.ts";
import { workspace } from "./stock_lab.ts";
import { ok } from "../testing/run.ts";
import { quoteArgv } from "../../src/lib/shell.ts";

const lab = labEnv();
const ROOT = new URL("../../", import.meta.url).pathname;

/** Runs the CLI as `user` with no supplementary group (setpriv --clear-groups). */
async function runCleared(
  user: string,
  env: Record<string, string>,
  cwd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("setpriv", {
    args: [
      `--reuid=${user}`,
      `--regid=${user}`,
      "--clear-groups",
      "--",
      Deno.execPath(),
      "run",
      "-A",
      "--frozen",
      "--config",
      `${ROOT}deno.json`,
      `${ROOT}main.ts`,
      ...args,
    ],
    cwd,
    env,
    clearEnv: true,
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
const opts = { sanitizeOps: false, sanitizeResources: false };

/** Makes every method named in `mutating` throw: the run must never call them. */
function readOnly<T extends object>(target: T, mutating: string[]): T {
  return new Proxy(target, {
    get(t, key, receiver) {
      if (typeof key === "string" && mutating.includes(key)) {
        return () => Promise.reject(new Error(`read-only run called ${key}`));
      }
      const value = Reflect.get(t, key, receiver);
      return typeof value === "function" ? value.bind(t) : value;
    },
  });
}

/** What setup could change on the lab, read straight from the API and the system. */
async function snapshot(): Promise<Record<string, unknown>> {
  const api = await IncusClient.open({ socket: lab!.socket });
  try {
    const pick = async (path: string) => {
      const doc = await api.get<Record<string, unknown>>(path);
      delete doc.used_by;
      return doc;
    };
    const group = await new Deno.Command("getent", { args: ["group", "incus-admin"] }).output();
    const dpkg = await new Deno.Command("dpkg-query", {
      args: ["-W", "-f=${Package} ${Version} ${Status}\n", "incus", "incus-base"],
    }).output();
    return {
      pool: await pick(`/1.0/storage-pools/${lab!.pool}`),
      bridge: await pick(`/1.0/networks/${lab!.bridge}`),
      profile: await pick("/1.0/profiles/default"),
      image: await api.get(`/1.0/images/aliases/${lab!.image}`),
      group: new TextDecoder().decode(group.stdout),
      dpkg: new TextDecoder().decode(dpkg.stdout),
    };
  } finally {
    api.close();
  }
}

Deno.test({
  name: "setup on the lab (real adapters, as root): every step already, nothing changed",
  ignore: labIgnored() || Deno.uid() !== 0,
  ...opts,
  async fn() {
    const before = await snapshot();
    const config = {
      ...defaultConfig("linux"),
      backend: "incus" as const,
      incus: { ...defaultConfig("linux").incus, socket: lab!.socket },
    };
    const backend = await openIncus(config, { stateDir: await Deno.makeTempDir() });
    const incus = new SocketIncusAdmin(lab!.socket);
    try {
      // The real adapters read what the lab has.
      assertEquals((await incus.reach()).state, "ok");
      const bridge = (await incus.networks()).find((n) => n.name === lab!.bridge);
      assertEquals(bridge?.ipv4, lab!.subnet);
      assert((await incus.pools()).some((p) => p.name === lab!.pool));
      const routes = (await procRoutes.ipv4Routes()).map(formatNet);
      assert(
        routes.includes("10.213.0.0/24") || !lab!.subnet?.startsWith("10.213.0."),
        routes.join(),
      );
      const host = new RealHostSystem();
      assertEquals(await host.invokingUser(), Deno.env.get("SUDO_USER") ?? "root");
      assert((await host.groupsOf(lab!.user ?? "root")).length > 0);
      assert(await host.hasCommand("usermod"));
      assertEquals(await host.hasCommand("no-such-command-tk"), false);
      const apt = new AptPackages();
      const version = await apt.installedVersion("incus") ??
        await apt.installedVersion("incus-base");
      assert(version !== null, "the lab's Incus is a Debian package");
      assertEquals(await apt.installedVersion("no-such-package-tk"), null);
      assertEquals(await apt.candidate("no-such-package-tk"), null);

      const report = await runSetup({
        host: readOnly(host, ["addToGroup", "startService"]),
        packages: readOnly(new AptPackages(), ["install", "refresh"]),
        incus: readOnly(incus, ["createPool", "createBridge", "addProfileDevices"]),
        routes: procRoutes,
        clock: systemClock,
        confirm: null,
        images: {
          isLocal: async (ref) => (await backend.images!.local(ref)) !== null,
          pull: (ref) => Promise.reject(new Error(`read-only run pulled ${ref}`)),
        },
      }, { yes: false, image: lab!.image });
      assertEquals(
        report.steps.map((s) => [s.step, s.status]),
        SETUP_STEPS.map((s) => [s, "already"]),
      );
      assertEquals(report.changed, false);
      assertStringIncludes(report.steps[3].detail, lab!.bridge);
      assertStringIncludes(report.steps[2].detail, lab!.pool ?? "");
    } finally {
      incus.close();
      await backend.close();
    }
    assertEquals(await snapshot(), before);
  },
});

Deno.test({
  name:
    "setup --json on the lab through the CLI, as root and as the non-root lab user: all already; doctor finds access",
  ignore: labIgnored() || Deno.uid() !== 0,
  ...opts,
  async fn() {
    const before = await snapshot();
    const users: (string | undefined)[] = [undefined];
    if (lab!.user) users.push(lab!.user);
    for (const user of users) {
      const ws = await workspace({
        prefix: "setup",
        user,
        env: { TACHIKOMA_INCUS_SOCKET: lab!.socket, TACHIKOMA_BASE_IMAGE: lab!.image },
      });
      try {
        const run = ok(await ws.cli(["setup", "--json"]), `setup as ${user ?? "root"}`);
        const doc = JSON.parse(run.stdout);
        assertEquals(
          doc.steps.map((s: { step: string; status: string }) => [s.step, s.status]),
          SETUP_STEPS.map((s) => [s, "already"]),
        );
        assertEquals(doc.changed, false);
        assertEquals(doc.completed, true);
        assertEquals(doc.notes, []);
        const access = doc.steps.find((s: { step: string }) => s.step === "access");
        assertEquals(
          access.detail,
          user ? `${user} is in incus-admin` : "root uses the socket directly",
        );
        // The human form says the same.
        const text = ok(await ws.cli(["setup"]), "setup (text)").stdout;
        assertStringIncludes(text, "Incus was already set up: nothing changed.");
      } finally {
        await ws.remove();
      }
    }
    assertEquals(await snapshot(), before);
    // The doctor's access diagnosis, on the real socket, has nothing to say.
    const admin = new SocketIncusAdmin(lab!.socket);
    try {
      assertEquals(
        await localAccessCheck({
          admin,
          host: new RealHostSystem(),
          packages: new AptPackages(),
        }),
        null,
      );
    } finally {
      admin.close();
    }
  },
});

Deno.test({
  name:
    "setup and doctor as a user in incus-admin whose session lacks the group: denied, says log in again, changes nothing",
  ignore: labIgnored() || Deno.uid() !== 0 || !lab?.user,
  ...opts,
  async fn() {
    const before = await snapshot();
    const ws = await workspace({
      prefix: "setupnogrp",
      user: lab!.user,
      env: { TACHIKOMA_INCUS_SOCKET: lab!.socket, TACHIKOMA_BASE_IMAGE: lab!.image },
    });
    try {
      // The CLI as the workspace runs it, but with no supplementary group: the user is listed
      // in incus-admin, this process is not (as right after `usermod -aG`, before a new login).
      const cli = (args: string[]) => runCleared(lab!.user!, ws.env, ws.top, args);
      const setup = await cli(["setup", "--json"]);
      assertEquals(setup.code, 2, setup.stderr);
      const error = JSON.parse(setup.stderr).error;
      assertStringIncludes(error.message, `${lab!.user} cannot use the Incus socket`);
      assertStringIncludes(error.hint, "this login session is not yet: log in again");
      const doctor = await cli(["doctor", "--json"]);
      const checks = JSON.parse(doctor.stdout).checks as { name: string; message: string }[];
      const api = checks.find((c) => c.name === "incus api");
      assertStringIncludes(api?.message ?? "", "is in incus-admin, but this login session is not");
    } finally {
      await ws.remove();
    }
    assertEquals(await snapshot(), before);
  },
});

Deno.test({
  name:
    "setup as a non-root user on a terminal with a change to make runs itself again through sudo, same config dir",
  ignore: labIgnored() || Deno.uid() !== 0 || !lab?.user,
  ...opts,
  async fn() {
    const ws = await workspace({ prefix: "setupsudo", user: lab!.user });
    try {
      // A stand-in for sudo records its arguments: nothing runs as root.
      const bin = `${ws.top}/bin-sudo`;
      await Deno.mkdir(bin);
      const record = `${ws.top}/sudo-args`;
      await Deno.writeTextFile(
        `${bin}/sudo`,
        `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > '${record}'\nexit 7\n`,
      );
      await Deno.chmod(`${bin}/sudo`, 0o755);
      await new Deno.Command("chown", { args: ["-R", `${lab!.user}:${lab!.user}`, ws.top] })
        .output();
      const cli = quoteArgv([
        Deno.execPath(),
        "run",
        "-A",
        "--frozen",
        "--config",
        `${ROOT}deno.json`,
        `${ROOT}main.ts`,
        "setup",
      ]);
      const out = await new Deno.Command("setpriv", {
        args: [
          `--reuid=${lab!.user}`,
          `--regid=${lab!.user}`,
          "--init-groups",
          "--",
          "script",
          "-q",
          "-e",
          "-c",
          cli,
          "/dev/null",
        ],
        cwd: ws.top,
        clearEnv: true,
        // No socket there: "start Incus" is a change, which needs root.
        env: {
          ...ws.env,
          PATH: `${bin}:${ws.env.PATH}`,
          TACHIKOMA_INCUS_SOCKET: `${ws.top}/no-incus.socket`,
        },
        stdin: "null",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assertEquals(out.code, 7, text);
      assertStringIncludes(text, "has to start Incus");
      assertStringIncludes(text, "running it again with sudo");
      const args = (await Deno.readTextFile(record)).trimEnd().split("\n");
      assertEquals(args.slice(0, 3), ["--", "env", `TACHIKOMA_CONFIG_DIR=${ws.cfg}`]);
      assertEquals(args.slice(-1), ["setup"]);
      assert(args.includes(`${ROOT}main.ts`), args.join(" "));

      // Without a terminal (or with --json) there is no sudo: the line and its hint.
      const plain = await runCleared(
        lab!.user!,
        {
          ...ws.env,
          PATH: `${bin}:${ws.env.PATH}`,
          TACHIKOMA_INCUS_SOCKET: `${ws.top}/no-incus.socket`,
        },
        ws.top,
        ["setup"],
      );
      assertEquals(plain.code, 2, plain.stderr);
      assertStringIncludes(plain.stderr, "has to start Incus");
      assertStringIncludes(plain.stderr, "sudo tachikoma setup");
    } finally {
      await ws.remove();
    }
  },
});
