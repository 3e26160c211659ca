/**
 * Test certificates for the fake TrueNAS over wss://.
 *
 * @module
 */

async function openssl(args: string[], cwd: string): Promise<void> {
  const r = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!r.success) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(r.stderr)}`);
}

/** A private CA and a leaf certificate for 127.0.0.1 signed by it (made with openssl). */
export async function certs(): Promise<{ ca: string; cert: string; key: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "tn-tls-" });
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=tn-test-ca",
  ], dir);
  await openssl([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "leaf.key",
    "-out",
    "leaf.csr",
    "-subj",
    "/CN=127.0.0.1",
  ], dir);
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "leaf.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  ], dir);
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  return {
    ca: await read("ca.pem"),
    cert: await read("leaf.pem"),
    key: await read("leaf.key"),
    dir,
  };
}
