/** `tachikoma doctor`'s Incus checks against the lab, good and broken configurations. */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { ConfigSchema } from "../../src/config/schema.ts";
import { incusChecks } from "../../src/doctor/incus.ts";
import type { CheckResult } from "../../src/doctor/check.ts";
import { labEnv, labIgnored } from "./lab.ts";
import { type CommandRunner, defaultRunner } from "../../src/lib/process.ts";
import { UnreachableError } from "../../src/lib/errors.ts";

const lab = labEnv();
const opts = { ignore: labIgnored(), sanitizeOps: false, sanitizeResources: false };

function byName(checks: CheckResult[]): Record<string, CheckResult> {
  return Object.fromEntries(checks.map((c) => [c.name, c]));
}

Deno.test({
  name: "incus doctor: the lab passes every check",
  ...opts,
  async fn() {
    const config = ConfigSchema.parse({
      backend: "incus",
      base_image: lab!.image,
      incus: { socket: lab!.socket },
    });
    const checks = byName(await incusChecks(config, {}));
    assertEquals(Object.keys(checks), [
      "incus api",
      "incus extensions",
      "incus storage pool",
      "incus network",
      "incus image",
      "incus shares",
      "egress enforcement",
    ]);
    for (const c of Object.values(checks)) assert(c.ok, JSON.stringify(c));
    assertStringIncludes(checks["incus api"].message, lab!.socket);
    assertStringIncludes(checks["incus storage pool"].message, lab!.pool ?? "");
    assertStringIncludes(checks["incus network"].message, lab!.bridge);
    assertStringIncludes(checks["incus network"].message, lab!.gateway);
    assertStringIncludes(checks["incus shares"].message, "POSIX ACLs work");
    assertStringIncludes(checks["egress enforcement"].message, "host nftables");
  },
});

Deno.test({
  name: "incus doctor: missing pool, network and image say what to do",
  ...opts,
  async fn() {
    const config = ConfigSchema.parse({
      backend: "incus",
      incus: {
        socket: lab!.socket,
        storage_pool: "tk-no-such-pool",
        network: "tk-no-such-net",
        image: "tk-no-such-image",
      },
    });
    const checks = byName(await incusChecks(config, {}));
    assertEquals(checks["incus api"].ok, true);
    assertEquals(checks["incus storage pool"].ok, false);
    assertEquals(checks["incus storage pool"].message, 'storage pool "tk-no-such-pool" not found');
    assertStringIncludes(checks["incus storage pool"].hint ?? "", "incus storage create");
    assertEquals(checks["incus network"].message, 'network "tk-no-such-net" not found');
    assertEquals(checks["incus image"].message, 'image "tk-no-such-image" not found');
    assertStringIncludes(checks["incus image"].hint ?? "", "incus image import");
  },
});

Deno.test({
  name: "incus doctor: shares need working POSIX ACLs; a missing setfacl is a failed check",
  ...opts,
  async fn() {
    const config = ConfigSchema.parse({ backend: "incus", base_image: lab!.image });
    let checks = byName(await incusChecks(config));
    assertEquals(checks["incus shares"].ok, true, checks["incus shares"].message);
    const noSetfacl: CommandRunner = {
      run: (cmd, args, options) =>
        cmd === "setfacl"
          ? Promise.reject(new UnreachableError("'setfacl' is not installed or not on PATH"))
          : defaultRunner.run(cmd, args, options),
    };
    checks = byName(await incusChecks(config, { runner: noSetfacl }));
    assertEquals(checks["incus shares"].ok, false);
    assertStringIncludes(checks["incus shares"].message, "setfacl is not installed");
    assertStringIncludes(checks["incus shares"].hint ?? "", "apt install acl");
  },
});

Deno.test({
  name: "incus doctor: an unreachable socket is one failed check with the reason",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const config = ConfigSchema.parse({
      backend: "incus",
      incus: { socket: "/nonexistent/incus.socket" },
    });
    const checks = await incusChecks(config);
    assertEquals(checks.length, 1);
    assertEquals(checks[0].ok, false);
    assertEquals(checks[0].required, true);
    // What is missing depends on this host: Incus not installed, or installed but not there.
    assertMatch(
      checks[0].message,
      /^Incus is (not installed \(no incus package, no socket at \/nonexistent\/incus\.socket\)|installed but its daemon does not answer at \/nonexistent\/incus\.socket \(\/nonexistent\/incus\.socket does not exist\))$/,
    );
    assertStringIncludes(checks[0].hint ?? "", "tachikoma setup");
  },
});
