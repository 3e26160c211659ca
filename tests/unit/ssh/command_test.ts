/** `tachikoma ssh install|refresh|uninstall|forget` through the real CLI (no lab needed). */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";

const MAIN = new URL("../../../main.ts", import.meta.url).pathname;
const dec = new TextDecoder();

async function cli(env: Record<string, string>, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", MAIN, ...args],
    env: {
      ...env,
      TACHIKOMA_INCUS_SOCKET: "/nonexistent/incus.socket", // never reach a real backend here
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
      NO_COLOR: "1",
    },
    stdin: "null",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("ssh install/refresh/uninstall/forget through the CLI", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const env = { HOME: `${dir}/home`, TACHIKOMA_CONFIG_DIR: `${dir}/cfg` };
    await Deno.mkdir(`${dir}/home/.ssh`, { recursive: true });
    await Deno.mkdir(`${dir}/cfg`);
    const original = "Host mine\n  User me\n";
    await Deno.writeTextFile(`${dir}/home/.ssh/config`, original);
    const rec = (name: string, ip: string | null) => ({
      name,
      repo: "app",
      branch: "b",
      worktree_path: "/w",
      created_at: "2026-01-01T00:00:00Z",
      last_used: "2026-01-01T00:00:00Z",
      status: ip ? "running" : "stopped",
      ip,
    });
    await Deno.writeTextFile(
      `${dir}/cfg/state.json`,
      JSON.stringify({
        version: 1,
        vms: [rec("tachikoma-app-a", "10.213.0.9"), rec("tachikoma-app-b", null)],
      }),
    );
    const install = await cli(env, "ssh", "install", "--json", "--backend", "incus");
    assertEquals(install.code, 0, install.stderr);
    const doc = JSON.parse(install.stdout);
    assertEquals(doc.hosts, ["tachikoma-app-a"]);
    assertEquals(doc.changed, true);
    assertEquals(doc.backup, `${dir}/home/.ssh/config.bak`);
    assertEquals(doc.unpinned, ["tachikoma-app-a"]);
    assertStringIncludes(install.stderr, "no pinned host key for tachikoma-app-a");
    const text = await Deno.readTextFile(`${dir}/home/.ssh/config`);
    assert(text.endsWith(`# END tachikoma managed\n${original}`));
    assertStringIncludes(text, `  IdentityFile ${dir}/home/.ssh/tachikoma\n`);

    const refresh = await cli(env, "ssh", "refresh", "--backend", "incus");
    assertEquals(refresh.code, 0, refresh.stderr);
    assertStringIncludes(refresh.stdout, "is up to date (1 sandbox)");

    const forget = await cli(env, "ssh", "forget", "tachikoma-app-a", "--json");
    assertEquals(JSON.parse(forget.stdout), { name: "tachikoma-app-a", forgotten: false });
    const bad = await cli(env, "ssh", "forget", "a b\nHost *");
    assertEquals(bad.code, 2);
    assertStringIncludes(bad.stderr, "invalid sandbox name for SSH host key pinning");

    const uninstall = await cli(env, "ssh", "uninstall");
    assertEquals(uninstall.code, 0, uninstall.stderr);
    assertEquals(await Deno.readTextFile(`${dir}/home/.ssh/config`), original);
    const again = await cli(env, "ssh", "uninstall", "--json");
    assertEquals(JSON.parse(again.stdout).changed, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
