/** `tachikoma doctor`'s Incus checks against the lab, good and broken configurations. */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { ConfigSchema } from "../../src/config/schema.ts";
import { incusChecks } from "../../src/doctor/incus.ts";
import type { CheckResult } from "../../src/doctor/check.ts";
import { labEnv, labIgnored } from "./lab.ts";

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
    const checks = byName(await incusChecks(config, { hostIds: { uid: 1000, gid: 1000 } }));
    assertEquals(Object.keys(checks), [
      "incus api",
      "incus extensions",
      "incus storage pool",
      "incus network",
      "incus image",
      "incus shares",
    ]);
    for (const c of Object.values(checks)) assert(c.ok, JSON.stringify(c));
    assertStringIncludes(checks["incus api"].message, lab!.socket);
    assertStringIncludes(checks["incus storage pool"].message, lab!.pool ?? "");
    assertStringIncludes(checks["incus network"].message, lab!.bridge);
    assertStringIncludes(checks["incus network"].message, lab!.gateway);
    assertStringIncludes(checks["incus shares"].message, "idmapped");
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
    const checks = byName(await incusChecks(config, { hostIds: { uid: 1000, gid: 1000 } }));
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
  name: "incus doctor: another host uid needs a delegated idmap",
  ...opts,
  async fn() {
    const config = ConfigSchema.parse({ backend: "incus", base_image: lab!.image });
    const readFile = (text: string) => (_path: string) => Promise.resolve(text);
    let checks = byName(
      await incusChecks(config, {
        hostIds: { uid: 1234, gid: 1234 },
        readFile: readFile("root:1000000:1000000000\n"),
      }),
    );
    assertEquals(checks["incus shares"].ok, false);
    assertStringIncludes(checks["incus shares"].hint ?? "", '"root:1234:1" to /etc/subuid');
    checks = byName(
      await incusChecks(config, {
        hostIds: { uid: 1234, gid: 1234 },
        readFile: readFile("root:1000000:1000000000\nroot:1234:1\n"),
      }),
    );
    assertEquals(checks["incus shares"].ok, true);
    assertStringIncludes(checks["incus shares"].message, "raw.idmap");
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
    assertEquals(
      checks[0].message,
      "cannot reach Incus at /nonexistent/incus.socket: is incusd running? (tachikoma doctor)",
    );
  },
});
