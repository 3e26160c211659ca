/**
 * Egress enforced on the host for real Incus guests (lab): the Incus backend's nftables chain on
 * the guest's veth (its own table, removed at the end), the proxy on the bridge gateway with
 * per-sandbox policies from the state file and the per-sandbox egress log.
 *
 * Sandbox A is restricted (`allowlist`); container B is a second guest on the same bridge,
 * unrestricted (its own policy). From inside A, as root: direct TCP to a host service on the
 * gateway and to B's sshd fails, UDP to the host never arrives, IPv6 (link-local, to B) fails,
 * DHCP/ARP keep working, `nft flush ruleset` inside A changes nothing; through the proxy, an
 * allowed host answers, a refused one gets 403 and a log line naming A; allowing a host and
 * removing it again apply without a restart; `unrestricted` restores direct access and going
 * back restricts again, live; a restart re-applies the policy to the new veth; destroy removes
 * the rules. B reaches the host service directly all along (it keeps its own policy). Every
 * "fails" has a positive control that proves the same probe can succeed.
 *
 * Traffic goes only to the lab bridge (the gateway and the lab's containers).
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { createSocket } from "node:dgram";
import { CredentialCache } from "../../src/credentials/cache.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { Logger } from "../../src/lib/log.ts";
import { IncusBackend, IncusClient } from "../../src/backends/incus/mod.ts";
import { HostNft } from "../../src/backends/incus/egress.ts";
import type { EgressPolicy } from "../../src/backends/backend.ts";
import { TokenClientDirectory } from "../../src/proxy/clients.ts";
import { FileEgressLog, readEgressLog } from "../../src/proxy/egress_log.ts";
import { startProxyServer } from "../../src/proxy/server.ts";
import { ensureToken } from "../../src/proxy/tokens.ts";
import { defaultRunner } from "../../src/lib/process.ts";
import { labEnv, labIgnored, labName } from "./lab.ts";
import { guestRunner } from "./proxy_guest_lab.ts";
import { until, waitForSshd } from "./provision_lab.ts";

/** The probes, run as root in a guest. `$1` = target host, `$2` = port. */
const TCP = 'timeout 3 bash -c \'exec 3<>/dev/tcp/"$1"/"$2"; head -c 4 <&3\' _ "$1" "$2"';
const HTTP = 'curl -sS --max-time 4 "http://$1:$2/"';
/** One ICMP echo request to $1 from a raw socket (guest root); prints `pong` or `none`. */
const PING_PY = [
  "import os, socket, struct, sys, time",
  "dst = sys.argv[1]",
  "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)",
  "s.settimeout(0.5)",
  "ident = os.getpid() & 0xffff",
  "def csum(b):",
  "    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))",
  "    t = (t >> 16) + (t & 0xffff)",
  "    return ~(t + (t >> 16)) & 0xffff",
  "head = struct.pack('!BBHHH', 8, 0, 0, ident, 1) + b'tk'",
  "s.sendto(struct.pack('!BBHHH', 8, 0, csum(head), ident, 1) + b'tk', (dst, 0))",
  "end = time.time() + 2",
  "while time.time() < end:",
  "    try:",
  "        d, a = s.recvfrom(1024)",
  "    except socket.timeout:",
  "        continue",
  "    if a[0] == dst and d[20] == 0 and struct.unpack('!H', d[24:26])[0] == ident:",
  "        print('pong')",
  "        sys.exit(0)",
  "print('none')",
].join("\n");
const PING = 'python3 -c "$1" "$2"';

Deno.test({
  name: "lab: a restricted incus guest reaches only the proxy; enforced on the host, live",
  ignore: labIgnored(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const lab = labEnv()!;
    const gateway = lab.gateway;
    const table = `tk_egress_t_${crypto.randomUUID().slice(0, 8)}`;
    const client = await IncusClient.open({ socket: lab.socket });
    const backend = new IncusBackend(client, {
      endpoint: { socket: lab.socket },
      cpus: 1,
      memoryMb: 512,
      sshUser: "admin",
      sshPort: 22,
    }, { egressTable: table });
    const nft = new HostNft(defaultRunner, table);
    const nameA = labName("egress-a");
    const nameB = labName("egress-b");
    const stateDir = await Deno.makeTempDir({ prefix: "tk-egress-" });
    const lines: string[] = [];
    const logger = new Logger({ level: "debug", sink: (l) => lines.push(l) });
    // A host service on the gateway that is not the proxy.
    const hostService = Deno.serve(
      { hostname: gateway, port: 0, onListen: () => {} },
      () => new Response("host-service"),
    );
    const udp = createSocket("udp4");
    const received: string[] = [];
    udp.on("message", (data: Uint8Array) => received.push(new TextDecoder().decode(data)));
    await new Promise<void>((resolve) => udp.bind(0, gateway, resolve));
    const udpPort = udp.address().port;
    let proxy: Awaited<ReturnType<typeof startProxyServer>> | null = null;
    try {
      const boot = async (name: string) => {
        await backend.create(name, { image: lab.image });
        await backend.start(name, { shares: [] });
        return await backend.waitForAddress(name, {
          deadline: systemClock.now() + 90_000,
          clock: systemClock,
        });
      };
      const [ipA, ipB] = await Promise.all([boot(nameA), boot(nameB)]);
      await waitForSshd(backend, nameB);
      const runA = guestRunner(backend, nameA);
      const runB = guestRunner(backend, nameB);
      const hostPort = hostService.addr.port;

      // The state the proxy reads: A's own policy (B has no token: it never uses the proxy).
      const statePath = `${stateDir}/state.json`;
      const writePolicy = async (egress: { mode: string; allow: string[] }) => {
        const vm = {
          name: nameA,
          repo: "r",
          branch: "b",
          worktree_path: "/tmp",
          created_at: "2026-01-01T00:00:00Z",
          last_used: "2026-01-01T00:00:00Z",
          status: "running",
          ip: ipA,
          egress,
        };
        const tmp = `${statePath}.tmp`;
        await Deno.writeTextFile(tmp, JSON.stringify({ version: 2, vms: [vm] }));
        await Deno.rename(tmp, statePath);
      };
      await writePolicy({ mode: "allowlist", allow: [] });
      const token = await ensureToken(stateDir, nameA);
      proxy = await startProxyServer({
        bind: gateway,
        port: 0,
        upstream: "http://127.0.0.1:9",
        credentials: new CredentialCache({
          resolve: () => Promise.reject(new Error("no credentials in this test")),
          ttlMs: 60_000,
        }),
        clients: new TokenClientDirectory({ stateDir, logger }),
        logger,
        egressLog: new FileEgressLog(stateDir),
        resolver: () => Promise.reject(new Error("no DNS in lab tests")),
      });
      const proxyUrl = `http://tachikoma:${token}@${gateway}:${proxy.port}`;
      const viaProxy = (target: string) =>
        runA(
          `curl -sS --max-time 6 -w '\\n%{http_code}' -x "$1" "$2"`,
          { root: true, args: [proxyUrl, target] },
        );
      const restricted: EgressPolicy = {
        mode: "allowlist",
        allow: [],
        proxy: { host: gateway, port: proxy.port },
      };

      // Positive controls before any restriction: A and B reach the host service and each other.
      const open = await runA(HTTP, { root: true, args: [gateway, String(hostPort)] });
      assertEquals(open.stdout, "host-service", open.stderr);
      assertEquals((await runA(TCP, { root: true, args: [ipB, "22"] })).stdout, "SSH-");
      const linkB = await runB("ip -6 -o addr show dev eth0 scope link | awk '{print $4}'", {
        root: true,
      });
      const v6B = linkB.stdout.trim().split("/")[0];
      assert(v6B.startsWith("fe80:"), `B's link-local address: ${linkB.stdout}`);
      const v6 = await runA(TCP, { root: true, args: [`${v6B}%eth0`, "22"] });
      assertEquals(v6.stdout, "SSH-", `IPv6 control: ${v6.stderr}`);
      for (const dst of [gateway, ipB]) {
        const ping = await runA(PING, { root: true, args: [PING_PY, dst] });
        assertEquals(ping.stdout.trim(), "pong", `ICMP control to ${dst}: ${ping.stderr}`);
      }

      // Restrict A, live.
      await backend.setEgress(nameA, restricted);
      assertEquals((await backend.getEgress(nameA)).mode, "allowlist");
      assertEquals((await nft.chains(nameA)).length, 1);
      const probeAll = async (label: string) => {
        const direct = await runA(HTTP, { root: true, args: [gateway, String(hostPort)] });
        assert(direct.code !== 0, `${label}: direct TCP to the host service: ${direct.stdout}`);
        const peer = await runA(TCP, { root: true, args: [ipB, "22"] });
        assert(peer.stdout !== "SSH-", `${label}: direct TCP to the other sandbox`);
        const six = await runA(TCP, { root: true, args: [`${v6B}%eth0`, "22"] });
        assert(six.stdout !== "SSH-", `${label}: IPv6 to the other sandbox`);
        for (const dst of [gateway, ipB]) {
          const ping = await runA(PING, { root: true, args: [PING_PY, dst] });
          assertEquals(ping.stdout.trim(), "none", `${label}: ICMP to ${dst}: ${ping.stderr}`);
        }
        const marker = `udp-${label}-${crypto.randomUUID()}`;
        await runA('printf %s "$1" > /dev/udp/"$2"/"$3"', {
          root: true,
          args: [marker, gateway, String(udpPort)],
        });
        // Barrier: a proxied request after the datagram; had it passed, it has arrived by now.
        const barrier = await viaProxy(`http://${ipB}:22/`);
        assert(barrier.stdout.endsWith("403"), `${label}: barrier: ${barrier.stdout}`);
        assert(!received.includes(marker), `${label}: UDP to the host got through`);
      };
      await probeAll("restricted");

      // Through the proxy: refused host → 403 + a log line naming A; then allowed, live.
      const target = `http://${gateway}:${hostPort}/`;
      const refused = await viaProxy(target);
      assert(refused.stdout.endsWith("403"), refused.stdout + refused.stderr);
      let log = await readEgressLog(stateDir, nameA);
      const refusal = log.entries.find((e) => e.port === hostPort && e.verdict === "refused");
      assert(refusal, `no refusal logged: ${JSON.stringify(log.entries)}`);
      assertEquals(refusal!.sandbox, nameA);
      assertEquals(refusal!.host, gateway);
      const mode = (await Deno.stat(`${stateDir}/proxy/egress/${nameA}.log`)).mode! & 0o777;
      assertEquals(mode, 0o600);

      await writePolicy({ mode: "allowlist", allow: [`${gateway}:${hostPort}`] });
      let last = "";
      await until("the allowed host answers through the proxy", async () => {
        const r = await viaProxy(target).catch((e) => {
          last = String(e);
          throw e;
        });
        last = JSON.stringify({ r, lines: lines.slice(-3) });
        return r.stdout === "host-service\n200";
      }, 15_000).catch((e) => Promise.reject(new Error(`${e.message}: ${last}`)));
      log = await readEgressLog(stateDir, nameA);
      assert(log.entries.some((e) => e.port === hostPort && e.verdict === "allowed"));
      // Allowed through the proxy does not mean allowed directly.
      const stillDirect = await runA(HTTP, { root: true, args: [gateway, String(hostPort)] });
      assert(stillDirect.code !== 0, "direct access after allow");

      // Guest root flushing its own firewall changes nothing on the host.
      const flush = await runA("nft flush ruleset && iptables -F 2>/dev/null; echo flushed", {
        root: true,
      });
      assertStringIncludes(flush.stdout, "flushed");
      await probeAll("after-flush");

      // Deny again (state change only): refused at the next request.
      await writePolicy({ mode: "allowlist", allow: [] });
      await until("the removed host is refused again", async () => {
        const r = await viaProxy(target);
        return r.stdout.endsWith("403");
      }, 15_000);

      // B keeps its own (unrestricted) policy on the same bridge.
      const fromB = await runB(HTTP, { root: true, args: [gateway, String(hostPort)] });
      assertEquals(fromB.stdout, "host-service", fromB.stderr);

      // unrestricted restores direct access, live; restricted again blocks it, live.
      await backend.setEgress(nameA, { mode: "unrestricted", allow: [] });
      assertEquals(await nft.chains(nameA), []);
      const reopened = await runA(HTTP, { root: true, args: [gateway, String(hostPort)] });
      assertEquals(reopened.stdout, "host-service", reopened.stderr);
      await backend.setEgress(nameA, restricted);
      await probeAll("restricted-again");

      // A restart gives A a new veth: the stored policy follows it.
      await backend.stop(nameA, { force: true });
      await backend.start(nameA, { shares: [] });
      await backend.waitForAddress(nameA, {
        deadline: systemClock.now() + 90_000,
        clock: systemClock,
      });
      assertEquals((await nft.chains(nameA)).length, 1);
      await probeAll("after-restart");

      // Destroy removes the rules.
      await backend.delete(nameA);
      assertEquals(await nft.chains(nameA), []);
    } finally {
      await proxy?.shutdown();
      await hostService.shutdown();
      udp.close();
      await backend.delete(nameA).catch(() => {});
      await backend.delete(nameB).catch(() => {});
      await defaultRunner.run("nft", ["delete", "table", "netdev", table]).catch(() => {});
      await backend.close();
      await Deno.remove(stateDir, { recursive: true });
    }
  },
});
