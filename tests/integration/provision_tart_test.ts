/**
 * Provisioning on the tart backend: the scenario of tests/integration/provision_scenario.ts
 * through the real tart adapter driving the fake tart (tests/fixtures/tart), whose VMs are lab
 * containers. Before the key is authorised the adapter reaches the guest through `tart exec`;
 * after, over SSH with the key the provisioning made. Needs the lab (the guest's install server
 * listens on the lab bridge), so it is skipped when the lab is down or the real tart is asked for.
 */
import { defaultConfig } from "../../src/config/default_config.ts";
import type { Config } from "../../src/config/schema.ts";
import { openTart } from "../../src/backends/tart/mod.ts";
import { SshGuest } from "../../src/backends/tart/ssh_guest.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { KnownHosts } from "../../src/ssh/known_hosts.ts";
import { labIgnored } from "./lab.ts";
import { waitForSshd } from "./provision_lab.ts";
import { provisionScenario } from "./provision_scenario.ts";
import { FAKE_TART, REAL_TART, TartTarget, vmName } from "./tart_harness.ts";

Deno.test({
  name: "provisioning a tart VM (fake tart on the lab): hostile input, resume, idempotence, ssh",
  ignore: REAL_TART || labIgnored(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await provisionScenario(t, async ({ stateDir, home }) => {
      const tart = await TartTarget.open();
      const base = defaultConfig("linux");
      const tartConfig = { ...base.tart, binary: FAKE_TART, stop_timeout_secs: 10 };
      const config: Config = {
        ...base,
        backend: "tart",
        ssh_user: "admin",
        vm_cpus: 1,
        vm_memory: 1024,
        tart: tartConfig,
      } as Config;
      const ssh = new SshGuest({
        knownHosts: new KnownHosts(`${stateDir}/known_hosts`),
        privateKeyPath: `${home}/.ssh/tachikoma`,
        connectTimeoutMs: 10_000,
      });
      const backend = await openTart(config, { stateDir }, { env: tart.env, ssh });
      const name = vmName("prov");
      return {
        kind: "tart",
        backend,
        name,
        config: { tart: tartConfig },
        async launch(shares) {
          await backend.create(name, { image: tart.image });
          await backend.start(name, { shares });
          const ip = await backend.waitForAddress(name, {
            deadline: systemClock.now() + 180_000,
            clock: systemClock,
          });
          await backend.mountShares(name, shares);
          await waitForSshd(backend, name);
          return ip;
        },
        async close() {
          await backend.close();
          await tart.cleanup([name]);
        },
      };
    });
  },
});
