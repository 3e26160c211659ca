/**
 * Remote access to the lab's Incus for tests: the daemon gets a loopback HTTPS listener
 * (127.0.0.1 only, unless it already has one there) and a freshly made client certificate is
 * trusted; {@link RemoteAccess.close} removes both. Shared by the remote backend test and the
 * remote (code by git) spawn e2e.
 *
 * @module
 */
import { IncusClient } from "../../src/backends/incus/mod.ts";
import { freePort } from "../testing/free_port.ts";
import { labName } from "./lab.ts";

/** The lab daemon's server certificate (pinned by remote clients). */
export const SERVER_CERT = "/var/lib/incus/server.crt";

/** True when `openssl` runs. */
export async function haveOpenssl(): Promise<boolean> {
  try {
    return (await new Deno.Command("openssl", { args: ["version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

/** A self-signed EC certificate and key `<dir>/<name>.{crt,key}`, valid one day. */
export async function makeCert(dir: string, name: string): Promise<{ cert: string; key: string }> {
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

/** The base64 body of a PEM document. */
export function pemBody(pem: string): string {
  return pem.split("\n").filter((l) => l && !l.startsWith("-----")).join("");
}

/** Remote access set up by {@link openRemoteAccess}. */
export interface RemoteAccess {
  /** The unix-socket API. */
  local: IncusClient;
  /** `127.0.0.1:<port>`. */
  address: string;
  /** A trusted client certificate, and one that is not. */
  trusted: { cert: string; key: string };
  stranger: { cert: string; key: string };
  /** Temp dir of the certificates. */
  dir: string;
  /** Removes the trust, the listener (when this set it) and the temp dir. */
  close(): Promise<void>;
}

/**
 * Sets up remote access, or returns null (with the reason on stderr) when the lab listens on a
 * non-loopback address.
 */
export async function openRemoteAccess(
  socket: string,
  prefix: string,
): Promise<RemoteAccess | null> {
  const local = await IncusClient.open({ socket });
  const server = await local.get<{ config?: Record<string, string> }>("/1.0");
  const before = server.config?.["core.https_address"];
  if (before && !before.startsWith("127.0.0.1:")) {
    console.error(`${prefix}: skipped, the lab listens on ${before} (not loopback)`);
    local.close();
    return null;
  }
  const address = before ?? `127.0.0.1:${freePort()}`;
  const dir = await Deno.makeTempDir({ prefix: "tk-incus-remote-" });
  const certName = labName(prefix);
  let fingerprint = "";
  const close = async () => {
    if (fingerprint) {
      await local.mutate("DELETE", `/1.0/certificates/${fingerprint}`).catch(() => {});
    }
    if (!before) {
      await local.mutate("PATCH", "/1.0", { body: { config: { "core.https_address": "" } } })
        .catch(() => {});
    }
    local.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const trusted = await makeCert(dir, "tkt-remote-trusted");
    const stranger = await makeCert(dir, "tkt-remote-stranger");
    if (!before) {
      await local.mutate("PATCH", "/1.0", { body: { config: { "core.https_address": address } } });
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
    if (!fingerprint) throw new Error("the test certificate was not trusted");
    return { local, address, trusted, stranger, dir, close };
  } catch (error) {
    await close();
    throw error;
  }
}
