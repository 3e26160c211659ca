/**
 * A cloned repo with a hostile committed `.tachikoma.toml` (a host command and a host file to
 * copy into the guest): `tachikoma spawn` runs nothing and copies nothing until
 * `tachikoma config trust`, then does, and stops again when the file changes. Through the real
 * CLI with the memory engine (tests/testing/memory_main.ts) and its dry provisioner (real steps
 * and input fingerprints, no guest command): the host file is read into the `scripts` step's
 * inputs only when trusted, so `--reprovision` runs that step exactly then. Direct credential
 * mode, so the credential waterfall — and `credential_command` — runs on the host. That the
 * script really reaches a real guest only once trusted is the lab's boundary test.
 */
import { assert, assertEquals } from "@std/assert";
import { quote } from "../../../src/lib/shell.ts";
import { gitIn } from "../core/helpers.ts";
import { cliWorld } from "../commands/helpers.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "cli: a hostile committed .tachikoma.toml runs nothing until trusted, then does, then stops when it changes",
  ...opts,
  async fn() {
    await using w = await cliWorld();
    const marker = `${w.dir}/pwned it's $(x) ünï`;
    const secret = `-----BEGIN OPENSSH PRIVATE KEY-----\n${crypto.randomUUID()}\n`;
    const hostFile = `${w.home}/.ssh/id_ed25519`;
    await Deno.mkdir(`${w.home}/.ssh`, { recursive: true });
    await Deno.writeTextFile(hostFile, secret, { mode: 0o600 });
    const file = `${w.repo}/.tachikoma.toml`;
    await Deno.writeTextFile(
      file,
      `credential_command = ${JSON.stringify(`touch ${quote(marker)}`)}\n` +
        `provision_scripts = [${JSON.stringify(hostFile)}]\n`,
    );
    await gitIn(w.repo, "add", ".tachikoma.toml");
    await gitIn(w.repo, "commit", "-q", "-m", "a helpful sandbox setup");
    const warning = `warning: ignoring provision_scripts, credential_command from ${file} ` +
      "(not trusted; review the file, then run `tachikoma config trust`)";
    /** The provisioning steps a `spawn --json` ran. */
    const steps = (stdout: string): string[] => JSON.parse(stdout).provisioning.steps;

    const first = await w.run(["spawn", "feat/x", "--no-attach", "--json"]);
    assertEquals(first.code, 0, first.stderr);
    assertEquals(first.stderr.split("\n")[0], warning, "the warning comes before anything else");
    assertEquals(first.stderr.split(warning).length, 2, "one warning line");
    assert(!exists(marker), "credential_command ran before the file was trusted");
    assertEquals(
      first.stdout.includes(secret) || first.stderr.includes(secret),
      false,
      "the host file leaked into the output",
    );

    const trusted = await w.run(["config", "trust"]);
    assertEquals(trusted.code, 0, trusted.stderr);
    const second = await w.run(["spawn", "feat/x", "--no-attach", "--reprovision", "--json"]);
    assertEquals(second.code, 0, second.stderr);
    assert(!second.stderr.includes("ignoring"), second.stderr);
    assert(exists(marker), "credential_command did not run once trusted");
    assert(
      steps(second.stdout).includes("scripts"),
      "the trusted script did not change the inputs",
    );

    // One byte more: untrusted again.
    await Deno.writeTextFile(file, "\n", { append: true });
    await Deno.remove(marker);
    const third = await w.run(["spawn", "feat/x", "--no-attach", "--reprovision", "--json"]);
    assertEquals(third.code, 0, third.stderr);
    assertEquals(third.stderr.split("\n")[0], warning);
    assert(!exists(marker), "credential_command ran after the file changed");
    // The scripts step runs again, now without the host file (back to no scripts).
    assert(steps(third.stdout).includes("scripts"), "the ignored script stayed in the inputs");
  },
});
