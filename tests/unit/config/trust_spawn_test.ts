/**
 * A cloned repo with a hostile committed `.tachikoma.toml` (a host command and a host file to
 * copy into the guest): `tachikoma spawn` runs nothing and copies nothing until
 * `tachikoma config trust`, then does, and stops again when the file changes. Through the real
 * CLI with the memory engine (tests/testing/memory_main.ts); direct credential mode, so the
 * credential waterfall — and `credential_command` — runs during provisioning.
 */
import { assert, assertEquals } from "@std/assert";
import { toBase64 } from "../../../src/lib/shell.ts";
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
    /** Whether an exec since call `from` carried the host file into the guest. */
    const copiedSince = async (from: number) => {
      const calls = ((await w.world()).calls ?? []).slice(from) as {
        method: string;
        detail?: { argv?: string[] };
      }[];
      return calls.some((c) =>
        (c.detail?.argv ?? []).some((a) => a.includes(toBase64(secret)) || a.includes(secret))
      );
    };

    const first = await w.run(["spawn", "feat/x", "--no-attach"]);
    assertEquals(first.code, 0, first.stderr);
    assertEquals(first.stderr.split("\n")[0], warning, "the warning comes before anything else");
    assertEquals(first.stderr.split(warning).length, 2, "one warning line");
    assert(!exists(marker), "credential_command ran before the file was trusted");
    assertEquals(await copiedSince(0), false, "the host file was copied before trust");

    const trusted = await w.run(["config", "trust"]);
    assertEquals(trusted.code, 0, trusted.stderr);
    let from = ((await w.world()).calls ?? []).length;
    const second = await w.run(["spawn", "feat/x", "--no-attach", "--reprovision"]);
    assertEquals(second.code, 0, second.stderr);
    assert(!second.stderr.includes("ignoring"), second.stderr);
    assert(exists(marker), "credential_command did not run once trusted");
    assertEquals(await copiedSince(from), true, "the trusted provision script was not copied");

    // One byte more: untrusted again.
    await Deno.writeTextFile(file, "\n", { append: true });
    await Deno.remove(marker);
    from = ((await w.world()).calls ?? []).length;
    const third = await w.run(["spawn", "feat/x", "--no-attach", "--reprovision"]);
    assertEquals(third.code, 0, third.stderr);
    assertEquals(third.stderr.split("\n")[0], warning);
    assert(!exists(marker), "credential_command ran after the file changed");
    assertEquals(await copiedSince(from), false, "the host file was copied after the change");
  },
});
