/**
 * The hostile-guest scenario (`boundary_scenario.ts`) on the Incus lab: a real container, the
 * real CLI, the guest as root planting every trick, every host command afterwards.
 */
import { labEnv, labIgnored } from "./lab.ts";
import { boundaryWorld } from "./boundary_world.ts";
import { hostileGuestScenario } from "./boundary_scenario.ts";

const lab = labEnv();

Deno.test({
  name: "boundary (incus): nothing a root guest plants runs on the host or escalates there",
  ignore: labIgnored(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using w = await boundaryWorld("incus", [
      'backend = "incus"',
      `base_image = "${lab!.image}"`,
      "[incus]",
      `socket = "${lab!.socket}"`,
    ]);
    await hostileGuestScenario(w, t);
  },
});
