/**
 * Softnet as the fake tart enforces it on its lab container (tart-contract.md §7.4), with the
 * argv the tart adapter uses for a restricted policy (`--net-softnet-block=0.0.0.0/0
 * --net-softnet-allow=<gateway>/32`): from inside the VM the host side (the gateway, where the
 * proxy listens) answers, another lab guest does not (TCP, IPv6); guest root flushing its
 * nftables changes nothing; plain `--net-softnet` keeps private ranges closed but the gateway
 * open; a run without Softnet reaches the other guest (the positive control); conflicting
 * network flags and malformed CIDRs are usage errors (exit 64).
 *
 * Traffic goes only to the lab bridge.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { systemClock } from "../../src/lib/clock.ts";
import { softnetArgs } from "../../src/backends/tart/egress.ts";
import { defaultRunner } from "../../src/lib/process.ts";
import { labEnv, labIgnored, labName } from "./lab.ts";
import { eventually, REAL_TART, type RunningTart, TartTarget, vmName } from "./tart_harness.ts";
import { openLabIncus, waitForSshd } from "./provision_lab.ts";

const TCP = 'timeout 3 bash -c \'exec 3<>/dev/tcp/"$1"/"$2"; head -c 4 <&3\' _ "$1" "$2"';

Deno.test({
  name: "lab: the fake tart's Softnet keeps a restricted VM to the host side",
  ignore: REAL_TART || labIgnored(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const lab = labEnv()!;
    const gateway = lab.gateway;
    const table = `tk_softnet_t_${crypto.randomUUID().slice(0, 8)}`;
    const tart = await TartTarget.open({ FAKE_TART_SOFTNET_TABLE: table });
    const vm = vmName("egress");
    const incus = await openLabIncus();
    const peer = labName("egress-peer");
    const hostService = Deno.serve(
      { hostname: gateway, port: 0, onListen: () => {} },
      () => new Response("host-service"),
    );
    let running: RunningTart | null = null;
    try {
      await incus.create(peer, { image: lab.image });
      await incus.start(peer, { shares: [] });
      const peerIp = await incus.waitForAddress(peer, {
        deadline: systemClock.now() + 90_000,
        clock: systemClock,
      });
      await waitForSshd(incus, peer);
      const v6 = await incus.exec(peer, {
        argv: ["sh", "-c", "ip -6 -o addr show dev eth0 scope link | awk '{print $4}'"],
        user: "root",
      });
      const peerV6 = new TextDecoder().decode(v6.stdout).trim().split("/")[0];
      assert(peerV6.startsWith("fe80:"), peerV6);

      assertEquals((await tart.run(["clone", tart.image, vm])).code, 0);
      const inVm = async (script: string, ...args: string[]) => {
        const r = await tart.run(["exec", vm, "bash", "-c", script, "bash", ...args]);
        return { code: r.code, out: r.stdout };
      };
      const start = async (net: string[]) => {
        const run = tart.spawnRun([vm, "--no-graphics", ...net]);
        running = run;
        await tart.waitState(vm, "running", 30_000).catch(async (e) => {
          run.kill();
          const out = await run.done();
          throw new Error(`${e.message}: ${out.code} ${out.stdout} ${out.stderr}`);
        });
        await eventually("the VM's address", async () => {
          const r = await tart.run(["ip", vm]);
          return r.code === 0 ? r.stdout.trim() : undefined;
        }, 90_000);
      };
      const stop = async () => {
        await tart.run(["stop", vm, "--timeout", "30"]);
        await running?.done();
        running = null;
      };
      const hostPort = String(hostService.addr.port);

      // The adapter's argv for a restricted policy.
      const net = softnetArgs({
        mode: "allowlist",
        allow: [],
        proxy: { host: gateway, port: 1 },
      });
      assertEquals(net, ["--net-softnet-block=0.0.0.0/0", `--net-softnet-allow=${gateway}/32`]);

      // Positive control: no Softnet, the other guest answers.
      await start([]);
      assertEquals((await inVm(TCP, peerIp, "22")).out, "SSH-");
      await stop();

      await start(net);
      const viaGateway = await inVm('curl -sS --max-time 4 "http://$1:$2/"', gateway, hostPort);
      assertEquals(viaGateway.out, "host-service");
      assert((await inVm(TCP, peerIp, "22")).out !== "SSH-", "TCP to the other guest");
      assert((await inVm(TCP, `${peerV6}%eth0`, "22")).out !== "SSH-", "IPv6 to the other guest");
      await inVm("sudo nft flush ruleset 2>/dev/null; sudo iptables -F 2>/dev/null; true");
      assert((await inVm(TCP, peerIp, "22")).out !== "SSH-", "after the guest's flush");
      await stop();
      // The rules go with the run.
      const listed = await defaultRunner.run("nft", ["list", "table", "netdev", table]);
      assert(!listed.stdout.includes("hook ingress"), listed.stdout);

      // Plain Softnet: private ranges (the other guest) closed, the gateway open.
      await start(["--net-softnet"]);
      assert((await inVm(TCP, peerIp, "22")).out !== "SSH-", "softnet default: private range");
      assertEquals(
        (await inVm('curl -sS --max-time 4 "http://$1:$2/"', gateway, hostPort)).out,
        "host-service",
      );
      await stop();

      for (
        const bad of [
          ["--net-softnet", "--net-host"],
          ["--net-softnet-allow=10.0.0.0/8", "--net-bridged", "en0"],
          ["--net-softnet-block=10.0.0.0/33"],
          ["--net-softnet-allow=example.com"],
        ]
      ) {
        const r = await tart.run(["run", vm, "--no-graphics", ...bad]);
        assertEquals(r.code, 64, `${bad.join(" ")}: ${r.stderr}`);
        assertMatch(r.stderr, /^Error: /);
      }
    } finally {
      if (running) {
        await tart.run(["stop", vm, "--timeout", "0"]).catch(() => {});
        (running as RunningTart).kill();
      }
      await hostService.shutdown();
      await tart.cleanup([vm]);
      await incus.delete(peer).catch(() => {});
      await incus.close();
      await defaultRunner.run("nft", ["delete", "table", "netdev", table]).catch(() => {});
    }
  },
});
