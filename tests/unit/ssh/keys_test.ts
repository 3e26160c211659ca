import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { ensureKey } from "../../../src/ssh/keys.ts";
import { type CommandRunner, defaultRunner } from "../../../src/lib/process.ts";
import { RuntimeError } from "../../../src/lib/errors.ts";

function counting(): { runner: CommandRunner; calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    runner: {
      run: (cmd, args, o) => (calls.push([cmd, ...args]), defaultRunner.run(cmd, args, o)),
    },
  };
}

Deno.test("ensureKey makes an ed25519 pair once (0600), even with parallel callers", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { runner, calls } = counting();
    const opts = { runner, home: `${dir}/home`, configDir: `${dir}/cfg` };
    const keys = await Promise.all(Array.from({ length: 4 }, () => ensureKey(opts)));
    assertEquals(new Set(keys.map((k) => k.publicKey)).size, 1);
    assertEquals(calls.length, 1, "ssh-keygen ran once");
    assertMatch(keys[0].publicKey, /^ssh-ed25519 AAAA\S+ tachikoma$/);
    assertEquals((await Deno.stat(keys[0].privatePath)).mode! & 0o777, 0o600);
    assertEquals((await Deno.stat(`${dir}/home/.ssh`)).mode! & 0o777, 0o700);
    assertEquals([...Deno.readDirSync(`${dir}/home/.ssh`)].map((e) => e.name).sort(), [
      "tachikoma",
      "tachikoma.pub",
    ]);
    await ensureKey(opts);
    assertEquals(calls.length, 1, "an existing key is reused");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a lost public half is restored; a private key readable by others is tightened", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const opts = { home: dir, configDir: `${dir}/cfg` };
    const first = await ensureKey(opts);
    await Deno.remove(first.publicPath);
    await Deno.chmod(first.privatePath, 0o644);
    const again = await ensureKey(opts);
    assertEquals(again.publicKey.split(" ").slice(0, 2), first.publicKey.split(" ").slice(0, 2));
    assertEquals((await Deno.stat(first.privatePath)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an ssh-keygen failure is one clear error with its stderr", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const runner: CommandRunner = {
      run: () => Promise.resolve({ code: 1, stdout: "", stderr: "no entropy\n", timedOut: false }),
    };
    const e = await assertRejects(
      () => ensureKey({ runner, home: dir, configDir: `${dir}/cfg` }),
      RuntimeError,
    );
    assertEquals(e.message, "ssh-keygen failed (exit 1): no entropy");
    assert(e.hint);
    assertEquals([...Deno.readDirSync(`${dir}/.ssh`)], [], "no temp dir left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
