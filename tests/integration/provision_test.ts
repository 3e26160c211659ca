/**
 * Provisioning on the Incus lab: the scenario of tests/integration/provision_scenario.ts on a
 * real Incus container. Skipped (with the reason) when the lab is not up.
 */
import { labIgnored, labName } from "./lab.ts";
import { launch, openLabIncus } from "./provision_lab.ts";
import { provisionScenario } from "./provision_scenario.ts";

Deno.test({
  name: "provisioning a real Incus container: hostile input, resume, idempotence, ssh",
  ignore: labIgnored(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await provisionScenario(t, async () => {
      const backend = await openLabIncus();
      const name = labName("prov");
      return {
        kind: "incus",
        backend,
        name,
        launch: (shares) => launch(backend, name, shares),
        async close() {
          await backend.delete(name).catch(() => {});
          await backend.close();
        },
      };
    });
  },
});
