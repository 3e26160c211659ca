/**
 * The hostile-guest scenario (`boundary_scenario.ts`) on the fake tart (lab containers behind
 * tart's CLI contract): the same tricks, the same host commands, the same verdict.
 */
import { labIgnored } from "./lab.ts";
import { boundaryWorld } from "./boundary_world.ts";
import { hostileGuestScenario } from "./boundary_scenario.ts";
import { FAKE_TART_DIR, REAL_TART, TartTarget } from "./tart_harness.ts";

Deno.test({
  name: "boundary (fake tart): nothing a root guest plants runs on the host or escalates there",
  ignore: labIgnored() || REAL_TART,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const tart = await TartTarget.open();
    await using w = await boundaryWorld("tart", [
      'backend = "tart"',
      'ssh_user = "admin"',
      "[tart]",
      "stop_timeout_secs = 10",
    ], { env: tart.env, path: FAKE_TART_DIR });
    try {
      await hostileGuestScenario(w, t);
    } finally {
      await tart.cleanup([]);
    }
  },
});
