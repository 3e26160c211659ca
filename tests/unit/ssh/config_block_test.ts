import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  sshBlockBody,
  type SshHostEntry,
  writeSshConfigBlock,
} from "../../../src/ssh/config_block.ts";
import { MarkedBlockError } from "../../../src/ssh/marked_block.ts";

const FILES = {
  identityFile: "/home/u/.ssh/tachikoma",
  knownHostsFile: "/home/u/.config/tachikoma/known_hosts",
};
const good: SshHostEntry = {
  name: "tachikoma-app-main",
  hostName: "10.213.0.5",
  user: "admin",
  port: 22,
};

async function sshG(config: string, host: string): Promise<Map<string, string>> {
  const out = await new Deno.Command("ssh", { args: ["-G", "-F", config, host], stdin: "null" })
    .output();
  if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
  const map = new Map<string, string>();
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const i = line.indexOf(" ");
    if (i > 0 && !map.has(line.slice(0, i))) map.set(line.slice(0, i), line.slice(i + 1));
  }
  return map;
}

Deno.test("the block has every key per sandbox, ends with Host *, skips hostile entries", () => {
  const { body, hosts, skipped } = sshBlockBody([
    good,
    { ...good, name: "evil\nHost *" },
    { ...good, name: "b", hostName: "10.0.0.1\n  ProxyCommand touch /tmp/x" },
    { ...good, name: "c", user: "root;id" },
    { ...good, name: "d", port: 0 },
    good,
    { ...good, name: "v6", hostName: "fd42::5" },
  ], FILES);
  assertEquals(hosts, ["tachikoma-app-main", "v6"]);
  assertEquals(skipped.map((s) => s.name), ["evil\nHost *", "b", "c", "d", "tachikoma-app-main"]);
  assertEquals(body.slice(1, 12), [
    "Host tachikoma-app-main",
    "  HostName 10.213.0.5",
    "  User admin",
    "  Port 22",
    "  IdentityFile /home/u/.ssh/tachikoma",
    "  IdentitiesOnly yes",
    "  UserKnownHostsFile /home/u/.config/tachikoma/known_hosts",
    "  StrictHostKeyChecking yes",
    "  HostKeyAlias tachikoma-app-main",
    "  CheckHostIP no",
    "",
  ]);
  assertEquals(body[body.length - 1], "Host *");
  assertEquals(sshBlockBody([], FILES).body.length, 1, "no sandboxes: only the comment");
  assertThrows(() => sshBlockBody([good], { ...FILES, identityFile: '/a"b' }));
});

Deno.test("OpenSSH reads the block: our values win over a later Host *, globals still apply", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/config`;
    await Deno.writeTextFile(config, "User globaluser\nHost *\n  User star\n  Port 2200\n");
    const files = {
      identityFile: `${dir}/my keys/tachikoma%x`,
      knownHostsFile: `${dir}/state dir/known_hosts`,
    };
    await writeSshConfigBlock(config, sshBlockBody([good], files).body);
    const ours = await sshG(config, "tachikoma-app-main");
    assertEquals(ours.get("hostname"), "10.213.0.5");
    assertEquals(ours.get("user"), "admin");
    assertEquals(ours.get("port"), "22");
    // `%` is doubled: ssh expands %-tokens in IdentityFile when it uses it (-G shows it raw).
    assertEquals(ours.get("identityfile"), `${dir}/my keys/tachikoma%%x`);
    assertEquals(ours.get("identitiesonly"), "yes");
    assertEquals(ours.get("userknownhostsfile"), `${dir}/state dir/known_hosts`);
    assertEquals(ours.get("stricthostkeychecking"), "true");
    assertEquals(ours.get("hostkeyalias"), "tachikoma-app-main");
    const other = await sshG(config, "elsewhere");
    assertEquals([other.get("user"), other.get("port")], ["globaluser", "2200"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install/uninstall keep every byte outside the block; backup; mode; symlink", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sshDir = `${dir}/.ssh`;
    const config = `${sshDir}/config`;
    const fresh = await writeSshConfigBlock(config, sshBlockBody([good], FILES).body);
    assertEquals([fresh.changed, fresh.backup], [true, null]);
    assertEquals((await Deno.stat(sshDir)).mode! & 0o777, 0o700);
    assertEquals((await Deno.stat(config)).mode! & 0o777, 0o600);

    const original = new Uint8Array([
      ...new TextEncoder().encode("Host x\r\n  User y\r\n# caf"),
      0xe9,
    ]);
    await Deno.writeFile(config, original, { mode: 0o640 });
    await Deno.chmod(config, 0o640);
    const w = await writeSshConfigBlock(config, sshBlockBody([good], FILES).body);
    assertEquals(w.backup, `${config}.bak`);
    assertEquals(await Deno.readFile(`${config}.bak`), original);
    assertEquals((await Deno.stat(config)).mode! & 0o777, 0o640);
    const installed = await Deno.readFile(config);
    assert(
      new TextDecoder().decode(installed).includes("  User admin\r\n"),
      "the block uses CRLF too",
    );
    assertEquals(installed.subarray(installed.length - original.length), original);
    const again = await writeSshConfigBlock(config, sshBlockBody([good], FILES).body);
    assertEquals(again.changed, false);
    await writeSshConfigBlock(config, null);
    assertEquals(await Deno.readFile(config), original);
    assertEquals((await writeSshConfigBlock(`${dir}/missing`, null)).changed, false);

    // A symlinked config (dotfiles managers): the target changes, the link stays.
    const target = `${dir}/dotfiles-ssh-config`;
    await Deno.writeTextFile(target, "Host z\n");
    await Deno.remove(config);
    await Deno.symlink(target, config);
    await writeSshConfigBlock(config, sshBlockBody([good], FILES).body);
    assert((await Deno.lstat(config)).isSymlink);
    assert((await Deno.readTextFile(target)).endsWith("# END tachikoma managed\nHost z\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a BEGIN without END fails and leaves the file alone", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/config`;
    const broken = "Host a\n# BEGIN tachikoma managed\nHost b\n";
    await Deno.writeTextFile(config, broken);
    await assertRejects(
      () => writeSshConfigBlock(config, sshBlockBody([good], FILES).body),
      MarkedBlockError,
      `${config}: line 2: '# BEGIN tachikoma managed' has no matching`,
    );
    assertEquals(await Deno.readTextFile(config), broken);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["config"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
