import { assertEquals, assertThrows } from "@std/assert";
import { sshOptionValue, systemSshArgv } from "../../../src/ssh/system.ts";
import { UsageError } from "../../../src/lib/errors.ts";

const target = { host: "10.213.0.7", port: 2222, user: "admin", alias: "tachikoma-app-x" };

Deno.test("system ssh argv: our key only, our known_hosts strictly, alias, port, user", () => {
  const argv = systemSshArgv({
    target,
    identityFile: "/h/.ssh/tachikoma",
    knownHostsFile: "/h/Library/Application Support/tachikoma/known_hosts",
  });
  assertEquals(argv, [
    "ssh",
    "-o",
    "IdentityFile=/h/.ssh/tachikoma",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    'UserKnownHostsFile="/h/Library/Application Support/tachikoma/known_hosts"',
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "HostKeyAlias=tachikoma-app-x",
    "-o",
    "CheckHostIP=no",
    "-p",
    "2222",
    "-l",
    "admin",
    "-t",
    "--",
    "10.213.0.7",
  ]);
  const cmd = systemSshArgv({
    target,
    identityFile: "/k",
    knownHostsFile: "/kh",
    argv: ["echo", "a b", "it's"],
  });
  assertEquals(cmd.slice(-3), ["--", "10.213.0.7", "'echo' 'a b' 'it'\\''s'"]);
  assertEquals(cmd.includes("-t"), false, "no PTY for a command unless asked");
  assertThrows(
    () =>
      systemSshArgv({
        target: { ...target, alias: "-oProxyCommand=x" },
        identityFile: "/k",
        knownHostsFile: "/kh",
      }),
    UsageError,
  );
});

Deno.test("OpenSSH parses the options as meant (ssh -G, nothing is contacted)", async () => {
  const argv = systemSshArgv({
    target,
    identityFile: "/h/my keys/tachikoma",
    knownHostsFile: "/h/state dir/known_hosts",
    tty: false,
  });
  const dashes = argv.indexOf("--");
  const out = await new Deno.Command("ssh", {
    args: ["-G", ...argv.slice(1, dashes), ...argv.slice(dashes)],
    stdin: "null",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const conf = new Map(
    new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => {
      const i = l.indexOf(" ");
      return [l.slice(0, i), l.slice(i + 1)] as [string, string];
    }),
  );
  assertEquals(conf.get("hostname"), "10.213.0.7");
  assertEquals(conf.get("port"), "2222");
  assertEquals(conf.get("user"), "admin");
  assertEquals(conf.get("identityfile"), "/h/my keys/tachikoma");
  assertEquals(conf.get("userknownhostsfile"), "/h/state dir/known_hosts");
  assertEquals(conf.get("stricthostkeychecking"), "true");
  assertEquals(conf.get("hostkeyalias"), "tachikoma-app-x");
  assertEquals(conf.get("identitiesonly"), "yes");
});

Deno.test("sshOptionValue quotes spaces, doubles %, refuses quotes and newlines", () => {
  assertEquals(sshOptionValue("/a/b"), "/a/b");
  assertEquals(sshOptionValue("/a b/%h"), '"/a b/%%h"');
  assertThrows(() => sshOptionValue('/a"b'));
  assertThrows(() => sshOptionValue("/a\nb"));
});

Deno.test("system ssh argv: [env] session values by name only (SendEnv), never their values", () => {
  const argv = systemSshArgv({
    target,
    identityFile: "/k",
    knownHostsFile: "/kh",
    sendEnv: ["TK_TOKEN", "LANG_X"],
  });
  const dashes = argv.indexOf("--");
  assertEquals(argv.slice(dashes - 5, dashes), [
    "-o",
    "SendEnv=TK_TOKEN",
    "-o",
    "SendEnv=LANG_X",
    "-t",
  ]);
  for (const bad of ["A=B", "X Y", "$(id)", "a\nb", ""]) {
    assertThrows(() =>
      systemSshArgv({ target, identityFile: "/k", knownHostsFile: "/kh", sendEnv: [bad] })
    );
  }
});
