/**
 * A new sandbox is restricted from its first boot (lab, the CLI end to end): its policy is stored
 * before its first start, so even provisioning runs behind the host firewall. A provisioning
 * script (the user's `provision_scripts`, the last step) tries a direct TCP connection to a host
 * service on the bridge's gateway that is not the proxy, as the sandbox user and as root (sudo),
 * and leaves what it saw in the guest. A sandbox in `agent` mode saw it blocked both times; the
 * positive control, the same script in an `unrestricted` sandbox, reached the service.
 *
 * Traffic goes only to the lab bridge's host address (the gateway).
 */
import { assert, assertEquals } from "@std/assert";
import { LAB_EGRESS_ALLOW, labEnv, labIgnored } from "./lab.ts";
import { openLabWorld } from "./lab_world.ts";
import { ok } from "../testing/run.ts";

Deno.test({
  name: "lab: a new sandbox's provisioning already runs behind its egress firewall",
  ignore: labIgnored(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const gateway = labEnv()!.gateway;
    const service = Deno.serve(
      { hostname: gateway, port: 0, onListen: () => {} },
      () => new Response("host-service"),
    );
    try {
      const port = service.addr.port;
      const probe = (who: string) =>
        `if timeout 3 ${who} bash -c 'exec 3<>/dev/tcp/${gateway}/${port}; ` +
        `printf "GET / HTTP/1.0\\r\\n\\r\\n" >&3; cat <&3' 2>/dev/null | grep -q host-service; ` +
        `then echo open; else echo blocked; fi`;
      const script = `#!/bin/bash\n{ ${probe("")}; ${probe("sudo -n")}; } > "$HOME/probe.txt"\n`;
      // (packages for the sessions step come through the proxy from the lab's allowed mirror)
      await using world = await openLabWorld({
        prefix: "egfb",
        env: { TACHIKOMA_EGRESS_ALLOW: LAB_EGRESS_ALLOW },
      });
      const path = `${world.top}/probe.sh`;
      await Deno.writeTextFile(path, script);
      await Deno.writeTextFile(
        `${world.cfg}/config.toml`,
        `egress = "agent"\nprovision_scripts = [${JSON.stringify(path)}]\n`,
      );
      const seen = async (branch: string, extra: string[]) => {
        const doc = await world.spawn([branch, ...extra]);
        assert(doc.provisioning.steps.includes("scripts"), `${doc.provisioning.steps}`);
        const out = ok(
          await world.cli(["exec", "--", "sh", "-c", 'cat "$HOME/probe.txt"'], doc.worktree_path),
          `exec in ${branch}`,
        );
        return out.stdout.trim().split("\n");
      };
      // The positive control first: the probe reaches the service when nothing restricts it.
      assertEquals(await seen("open-net", ["--egress", "unrestricted"]), ["open", "open"]);
      assertEquals(await seen("closed-net", []), ["blocked", "blocked"]);
    } finally {
      await service.shutdown();
    }
  },
});
