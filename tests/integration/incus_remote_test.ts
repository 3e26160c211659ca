/**
 * The Incus backend in remote mode against the lab: the daemon is given a loopback HTTPS
 * listener (127.0.0.1 only) and a freshly made client certificate is trusted for the test;
 * both are removed afterwards. Covers TLS with client certificate and a pinned server
 * certificate, websockets over TLS (exec), files, the project parameter, doctor's checks,
 * and the errors for a wrong server certificate and an untrusted client.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { IncusBackend, IncusClient, type IncusEndpoint } from "../../src/backends/incus/mod.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { UnreachableError, UnsupportedError } from "../../src/lib/errors.ts";
import { incusChecks } from "../../src/doctor/incus.ts";
import { ConfigSchema } from "../../src/config/schema.ts";
import { labEnv, labIgnored, labName } from "./lab.ts";
import { haveOpenssl, openRemoteAccess, SERVER_CERT } from "./incus_remote_lab.ts";

const lab = labEnv();

Deno.test({
  name: "incus remote: HTTPS with client certificate, pinned server certificate, wss exec",
  ignore: labIgnored() || !(await haveOpenssl()),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const access = await openRemoteAccess(lab!.socket, "remote");
    if (!access) return;
    const { address, trusted, stranger, dir } = access;
    const name = labName("remote");
    let backend: IncusBackend | null = null;
    try {
      const endpoint: IncusEndpoint = {
        socket: "/nonexistent/unused.socket",
        remote: `https://${address}`,
        clientCert: trusted.cert,
        clientKey: trusted.key,
        serverCert: SERVER_CERT,
        project: "default",
      };
      backend = new IncusBackend(await IncusClient.open(endpoint), {
        endpoint,
        cpus: 1,
        memoryMb: 512,
        sshUser: "admin",
        sshPort: 22,
      });
      const b = backend;

      await t.step("lifecycle, exec over wss, files", async () => {
        assertEquals(b.capabilities.mountHost, false, "a remote server cannot mount the host");
        await b.create(name, { image: lab!.image });
        await b.start(name, { shares: [] });
        const ip = await b.waitForAddress(name, {
          clock: systemClock,
          deadline: Date.now() + 60_000,
        });
        assert((await b.list()).some((s) => s.name === name && s.addresses.includes(ip)));
        const r = await b.exec(name, {
          argv: ["sh", "-c", "cat; echo err >&2; exit 4"],
          stdin: "over tls\n",
        });
        assertEquals(r.code, 4);
        assertEquals(new TextDecoder().decode(r.stdout), "over tls\n");
        assertEquals(new TextDecoder().decode(r.stderr), "err\n");
        await b.pushFile(name, {
          path: "/root/remote.txt",
          data: new TextEncoder().encode("remote"),
          owner: "root",
          mode: 0o600,
        });
        assertEquals(
          new TextDecoder().decode(await b.pullFile(name, "/root/remote.txt")),
          "remote",
        );
        await assertRejects(
          () =>
            b.start(name, {
              shares: [{ name: "code", hostPath: dir, guestPath: "/mnt/x", readOnly: false }],
            }),
          UnsupportedError,
          "remote Incus server",
        );
        await b.delete(name);
      });

      await t.step("doctor checks the remote server", async () => {
        const config = ConfigSchema.parse({
          backend: "incus",
          base_image: lab!.image,
          incus: {
            remote: `https://${address}`,
            client_cert: trusted.cert,
            client_key: trusted.key,
            server_cert: SERVER_CERT,
          },
        });
        const checks = await incusChecks(config);
        const api = checks.find((c) => c.name === "incus api");
        assertEquals(api?.ok, true, JSON.stringify(checks));
        assertStringIncludes(api!.message, `https://${address}`);
        const egress = checks.find((c) => c.name === "egress enforcement");
        assertEquals([egress?.ok, egress?.required], [false, false], "a warning, not an error");
        assert(
          checks.every((c) => c.ok || c === egress),
          JSON.stringify(checks, null, 1),
        );
        assert(
          !checks.some((c) => c.name === "incus shares"),
          "no share check for a remote server",
        );
      });

      await t.step("a wrong server certificate fails the TLS handshake", async () => {
        const wrong = await IncusClient.open({
          socket: "/unused",
          remote: `https://${address}`,
          clientCert: trusted.cert,
          clientKey: trusted.key,
          serverCert: stranger.cert,
        });
        const err = await assertRejects(() => wrong.get("/1.0"), UnreachableError);
        assertEquals(err.message, `cannot reach Incus at https://${address}: TLS handshake failed`);
        wrong.close();
      });

      await t.step("an untrusted client is refused with what to do", async () => {
        const endpoint2: IncusEndpoint = {
          socket: "/unused",
          remote: `https://${address}`,
          clientCert: stranger.cert,
          clientKey: stranger.key,
          serverCert: SERVER_CERT,
        };
        const untrusted = new IncusBackend(await IncusClient.open(endpoint2), {
          endpoint: endpoint2,
          cpus: 1,
          memoryMb: 512,
          sshUser: "admin",
          sshPort: 22,
        });
        const err = await assertRejects(() => untrusted.list(), UnreachableError);
        assertStringIncludes(err.hint ?? "", "incus config trust add-certificate");
        await untrusted.close();
      });
    } finally {
      if (backend) {
        await backend.delete(name).catch(() => {});
        await backend.close();
      }
      await access.close();
    }
  },
});
