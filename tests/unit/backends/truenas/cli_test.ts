/**
 * `--backend truenas` through the real CLI against the fake TrueNAS over wss:// (its certificate
 * is from a private CA, so the config turns verification off): the engine is registered, doctor
 * runs its checks, and a wrong key fails `truenas auth` in one line naming the host, without the key.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { runCli } from "../../cli/helpers.ts";
import { FakeTruenas } from "../../../fixtures/truenas/server.ts";
import { MemoryWorld } from "../../../fixtures/truenas/world.ts";
import { API_KEY } from "./harness.ts";
import { certs } from "./certs.ts";

/** A fake TrueNAS over TLS with a fresh world, started; and its certificates. */
async function startFake() {
  const c = await certs();
  const fake = new FakeTruenas({
    world: new MemoryWorld(),
    apiKey: API_KEY,
    tls: { cert: c.cert, key: c.key },
  });
  await fake.start();
  return { c, fake };
}

Deno.test("cli: --backend truenas doctor and a wrong key through the real CLI", async () => {
  const { c, fake } = await startFake();
  try {
    const env = (key: string) => ({
      TACHIKOMA_TRUENAS_HOST: "127.0.0.1",
      TACHIKOMA_TRUENAS_PORT: String(fake.port),
      TACHIKOMA_TRUENAS_API_KEY: key,
      TACHIKOMA_TRUENAS_INSECURE_SKIP_VERIFY: "true",
    });
    const doctor = await runCli(["--backend", "truenas", "doctor", "--json"], {
      env: env(API_KEY),
    });
    const doc = JSON.parse(doctor.stdout) as {
      checks: { name: string; ok: boolean; message: string }[];
    };
    const tn = doc.checks.filter((x) => x.name.startsWith("truenas"));
    assertEquals(tn.map((x) => [x.name, x.ok]), [
      ["truenas api", true],
      ["truenas auth", true],
      ["truenas version", true],
      ["truenas pool", true],
      ["truenas network", true],
    ]);
    assertMatch(tn[0].message, /TLS NOT verified \(insecure_skip_verify\)/);

    const wrongKey = "1-definitely-wrong-key-xyz";
    const bad = await runCli(["--backend", "truenas", "doctor", "--json"], { env: env(wrongKey) });
    assertEquals(bad.code, 1);
    const auth = (JSON.parse(bad.stdout) as typeof doc).checks.find((x) =>
      x.name === "truenas auth"
    );
    assertEquals(
      auth?.message,
      `TrueNAS 127.0.0.1:${fake.port}: auth.login_ex: the server refused the API key of user root (AUTH_ERR)`,
    );
    assert(!bad.stderr.includes(wrongKey) && !bad.stdout.includes(wrongKey));
  } finally {
    await fake.stop();
    await Deno.remove(c.dir, { recursive: true });
  }
});

Deno.test("cli: truenas.server_cert trusts a private CA; unset, the certificate is refused; unreadable, one line naming the key", async () => {
  const { c, fake } = await startFake();
  try {
    const env = (extra: Record<string, string>) => ({
      TACHIKOMA_TRUENAS_HOST: "127.0.0.1",
      TACHIKOMA_TRUENAS_PORT: String(fake.port),
      TACHIKOMA_TRUENAS_API_KEY: API_KEY,
      ...extra,
    });
    type Doc = { checks: { name: string; ok: boolean; message: string }[] };
    const api = (stdout: string) =>
      (JSON.parse(stdout) as Doc).checks.find((x) =>
        x.name === "truenas api" ||
        x.name === "truenas config"
      );

    await Deno.writeTextFile(`${c.dir}/ca.pem`, c.ca);
    const trusted = await runCli(["--backend", "truenas", "doctor", "--json"], {
      env: env({ TACHIKOMA_TRUENAS_SERVER_CERT: `${c.dir}/ca.pem` }),
    });
    assertEquals([api(trusted.stdout)?.name, api(trusted.stdout)?.ok], ["truenas api", true]);
    assertMatch(api(trusted.stdout)!.message, /\(TLS verified\)/);

    const refused = await runCli(["--backend", "truenas", "doctor", "--json"], { env: env({}) });
    assertEquals(refused.code, 1);
    assertEquals(api(refused.stdout)?.ok, false);
    assertMatch(
      api(refused.stdout)!.message,
      /^TrueNAS 127\.0\.0\.1:\d+: connecting: the TLS certificate does not verify/,
    );

    const missing = `${c.dir}/no such ca.pem`;
    const unreadable = await runCli(["--backend", "truenas", "doctor", "--json"], {
      env: env({ TACHIKOMA_TRUENAS_SERVER_CERT: missing }),
    });
    assertEquals(unreadable.code, 1);
    assertEquals(api(unreadable.stdout)?.name, "truenas config");
    assertMatch(
      api(unreadable.stdout)!.message,
      /^truenas\.server_cert: cannot read .*no such ca\.pem/,
    );
  } finally {
    await fake.stop();
    await Deno.remove(c.dir, { recursive: true });
  }
});
