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

const lab = labEnv();
const SERVER_CERT = "/var/lib/incus/server.crt";

async function haveOpenssl(): Promise<boolean> {
  try {
    return (await new Deno.Command("openssl", { args: ["version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

async function makeCert(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/${name}.crt`;
  const key = `${dir}/${name}.key`;
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-subj",
      `/CN=${name}`,
      "-days",
      "1",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`openssl: ${new TextDecoder().decode(out.stderr)}`);
  return { cert, key };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function pemBody(pem: string): string {
  return pem.split("\n").filter((l) => l && !l.startsWith("-----")).join("");
}

Deno.test({
  name: "incus remote: HTTPS with client certificate, pinned server certificate, wss exec",
  ignore: labIgnored() || !(await haveOpenssl()),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    // The unix-socket API, for setting up and tearing down the remote access.
    const local = await IncusClient.open({ socket: lab!.socket });
    const server = await local.get<{ config?: Record<string, string> }>("/1.0");
    const before = server.config?.["core.https_address"];
    if (before && !before.startsWith("127.0.0.1:")) {
      console.error(`incus remote test: skipped, the lab listens on ${before} (not loopback)`);
      local.close();
      return;
    }
    const address = before ?? `127.0.0.1:${freePort()}`;
    const dir = await Deno.makeTempDir({ prefix: "tk-incus-remote-" });
    const trusted = await makeCert(dir, "tkt-remote-trusted");
    const stranger = await makeCert(dir, "tkt-remote-stranger");
    const certName = labName("remote");
    let fingerprint = "";
    const name = labName("remote");
    let backend: IncusBackend | null = null;
    try {
      if (!before) {
        await local.mutate("PATCH", "/1.0", {
          body: { config: { "core.https_address": address } },
        });
      }
      await local.mutate("POST", "/1.0/certificates", {
        body: {
          type: "client",
          name: certName,
          certificate: pemBody(await Deno.readTextFile(trusted.cert)),
        },
      });
      const certs = await local.get<{ name: string; fingerprint: string }[]>(
        "/1.0/certificates?recursion=1",
      );
      fingerprint = certs.find((c) => c.name === certName)?.fingerprint ?? "";
      assert(fingerprint, "the test certificate is trusted");

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
        await b.pushFile(name, "/root/remote.txt", new TextEncoder().encode("remote"), {
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
      if (fingerprint) {
        await local.mutate("DELETE", `/1.0/certificates/${fingerprint}`).catch(() => {});
      }
      if (!before) {
        await local.mutate("PATCH", "/1.0", { body: { config: { "core.https_address": "" } } })
          .catch(() => {});
      }
      local.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
