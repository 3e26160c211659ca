/**
 * Stock images that cannot work, on the lab (issue "Works with the Incus a user has"): a bad
 * reference, an alias the server does not have, an image server nobody answers for, an image
 * without apt, packages the proxy refuses to fetch. Each is one clear `tachikoma:` line naming
 * the server and the alias (or the package step and why), the sandbox recorded failed, and
 * nothing half-made left running. A sandbox whose bootstrap failed bootstraps on the next spawn
 * once the cause is fixed.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { IncusClient } from "../../src/backends/incus/client.ts";
import { labEnv, labIgnored } from "./lab.ts";
import { errorLine, freePort, stockConfig, workspace } from "./stock_lab.ts";
import { ok, type Run } from "../testing/run.ts";
import { forgetPrepared, removeInstances, removeInstancesOf } from "./stock_incus.ts";

const lab = labEnv();

interface Listed {
  name: string;
  status: string;
  recorded_status: string;
  failure: string | null;
}

Deno.test({
  name: "stock image failures: one clear line, the sandbox recorded failed, nothing left running",
  ignore: labIgnored() || !lab?.imageServer,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const server = lab!.imageServer!;
    const client = await IncusClient.open({ socket: lab!.socket });
    // No prepared image for this test's user: its bootstraps install packages.
    await forgetPrepared(client, "tkfail");
    const closed = freePort();
    const ws = await workspace({
      prefix: "stockfail",
      env: stockConfig(lab!, {
        TACHIKOMA_SSH_USER: "tkfail",
        TACHIKOMA_CREDENTIAL_PROXY: "false",
        TACHIKOMA_EGRESS: "unrestricted",
        TACHIKOMA_INCUS_IMAGE_SERVERS:
          `{lab = {url = "${server.url}", certificate = "${server.cert}"}, ` +
          `down = {url = "https://127.0.0.1:${closed}"}}`,
      }),
    });
    const names: string[] = [];
    const listed = async (branch: string): Promise<Listed> => {
      const doc = JSON.parse(ok(await ws.cli(["list", "--json"]), "list").stdout);
      const found = doc.sandboxes.find((s: Listed & { branch: string }) => s.branch === branch);
      assert(found, `${branch} in list`);
      names.push(found.name);
      return found;
    };
    const instanceState = async (name: string): Promise<string | null> => {
      try {
        return (await client.get<{ status: string }>(`/1.0/instances/${name}`)).status;
      } catch {
        return null;
      }
    };
    /** A spawn that fails with one line matching `re`; returns the line and the run. */
    const failing = async (
      branch: string,
      image: string,
      code: number,
      re: RegExp,
    ): Promise<{ line: string; run: Run }> => {
      ws.setEnv({ TACHIKOMA_BASE_IMAGE: image });
      const run = await ws.cli(["spawn", branch, "--no-attach"]);
      assertEquals(run.code, code, `spawn ${image}: ${run.stderr}`);
      const line = errorLine(run);
      assertMatch(line, re);
      assertEquals(line.split("\n").length, 1);
      return { line, run };
    };
    try {
      await t.step("a reference to an unknown server: exit 2, nothing made", async () => {
        const { line } = await failing(
          "bad/ref",
          "nope:debian/12",
          2,
          /no image server named "nope"/,
        );
        assertStringIncludes(line, 'base_image = "nope:debian/12"');
        const s = await listed("bad/ref");
        assertEquals(s.recorded_status, "failed");
        assertStringIncludes(s.failure ?? "", "nope");
        assertEquals(await instanceState(s.name), null);
        // --json: the same as one JSON document on stderr
        const j = await ws.cli(["--json", "spawn", "bad/ref", "--no-attach"]);
        assertEquals(j.code, 2);
        assertEquals(j.stdout, "");
        assertEquals(j.stderr.trim().split("\n").length, 1);
        assertStringIncludes(JSON.parse(j.stderr).error.message, 'no image server named "nope"');
      });

      await t.step(
        "an alias the server does not have: exit 3, names server and alias",
        async () => {
          const { line } = await failing(
            "bad/alias",
            "lab:debian/99",
            3,
            /image lab:debian\/99 \(https:\/\/127\.0\.0\.1:\d+\): no such image on the server/,
          );
          assert(!line.includes("\n"));
          const s = await listed("bad/alias");
          assertEquals(s.recorded_status, "failed");
          assertEquals(await instanceState(s.name), null);
        },
      );

      await t.step(
        "an image server nobody answers for: exit 1, names server and alias",
        async () => {
          await failing(
            "bad/server",
            "down:debian/12",
            1,
            new RegExp(
              `image down:debian/12 \\(https://127\\.0\\.0\\.1:${closed}\\): the image server is ` +
                "unreachable \\(.*refused",
            ),
          );
          const s = await listed("bad/server");
          assertEquals(s.recorded_status, "failed");
          assertEquals(await instanceState(s.name), null);
        },
      );

      await t.step(
        "an image without apt: the bootstrap says so, the sandbox is stopped",
        async () => {
          const { line } = await failing(
            "no/apt",
            `lab:${server.noapt}`,
            1,
            /provisioning step 'bootstrap' failed: the image \(.*\) has no apt-get\/dpkg: cannot install openssh-server sudo git curl ca-certificates/,
          );
          assert(!line.includes("guest stderr"));
          const s = await listed("no/apt");
          assertEquals(s.status, "failed");
          assertStringIncludes(s.failure ?? "", "has no apt-get/dpkg");
          assertEquals(await instanceState(s.name), "Stopped");
        },
      );

      await t.step(
        "packages the proxy refuses: the apt failure and the egress hint; fixed, the next " +
          "spawn bootstraps it",
        async () => {
          const port = freePort();
          ws.setEnv({
            TACHIKOMA_CREDENTIAL_PROXY: "true",
            TACHIKOMA_CREDENTIAL_PROXY_PORT: String(port),
            TACHIKOMA_EGRESS: "agent",
          });
          const { run } = await failing(
            "no/egress",
            `lab:${server.stock}`,
            1,
            /provisioning step 'bootstrap' failed: apt-get update failed: .*403/,
          );
          const s = await listed("no/egress");
          assertMatch(run.stderr, new RegExp(`hint: .*tachikoma network allow ${s.name} <host>`));
          assertEquals(s.status, "failed");
          assertEquals(await instanceState(s.name), "Stopped");
          // allowed now (the sandbox's own policy, which the running proxy reloads): spawn
          // starts it again and the bootstrap completes
          ok(await ws.cli(["network", "allow", s.name, server.apt]), "network allow");
          const again = JSON.parse(
            ok(await ws.cli(["spawn", "no/egress", "--no-attach", "--json"]), "spawn again").stdout,
          );
          assertEquals(again.action, "started");
          assertEquals(again.provisioning.steps[0], "bootstrap");
          const who = ok(
            await ws.cli(["exec", "-n", again.name, "--", "sudo", "-n", "id", "-un"]),
            "exec",
          );
          assertEquals(who.stdout, "root\n");
          assertEquals((await listed("no/egress")).status, "running");
        },
      );
    } finally {
      await ws.cli(["proxy", "stop"]).catch(() => {});
      await removeInstances(client, names);
      await removeInstancesOf(client, ws.repo);
      client.close();
      await ws.remove();
    }
  },
});
