import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { FakeClock } from "../../testing/fake_clock.ts";
import { UsageError } from "../../../src/lib/errors.ts";
import {
  fingerprint,
  HostKeyMismatchError,
  KnownHosts,
  parseKeyBlob,
  parsePublicKeyLine,
  validateHostAlias,
} from "../../../src/ssh/known_hosts.ts";
import { fromBase64 } from "../../../src/lib/shell.ts";

async function keygen(dir: string, name: string, type = "ed25519"): Promise<string> {
  const out = await new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", type, "-N", "", "-C", "c", "-f", `${dir}/${name}`],
  }).output();
  if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
  return (await Deno.readTextFile(`${dir}/${name}.pub`)).trim();
}

Deno.test("keys parse from lines and blobs; fingerprints match ssh-keygen -l", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const type of ["ed25519", "ecdsa"]) {
      const line = await keygen(dir, type, type);
      const key = parsePublicKeyLine(line);
      assertEquals(parseKeyBlob(fromBase64(key.key)), key);
      const l = await new Deno.Command("ssh-keygen", {
        args: ["-l", "-E", "sha256", "-f", `${dir}/${type}.pub`],
      }).output();
      assertStringIncludes(new TextDecoder().decode(l.stdout), await fingerprint(key));
    }
    assertThrows(() => parsePublicKeyLine("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIA=="), Error);
    assertThrows(() => parsePublicKeyLine("garbage"), Error);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("first sight pins, same key passes, a changed key is refused unless recreated", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const clock = new FakeClock(Date.parse("2026-05-01T00:00:00Z"));
    const kh = new KnownHosts(`${dir}/known_hosts`, { clock });
    const a = parsePublicKeyLine(await keygen(dir, "a"));
    const b = parsePublicKeyLine(await keygen(dir, "b"));
    assertEquals(await kh.check("sb", a), "pinned");
    assertEquals(await kh.check("sb", a, { createdAt: "2030-01-01T00:00:00Z" }), "known");
    const e = await assertRejects(() => kh.check("sb", b), HostKeyMismatchError);
    assertStringIncludes(
      e.message,
      `pinned ssh-ed25519 ${await fingerprint(a)} on 2026-05-01T00:00:00.000Z`,
    );
    assertStringIncludes(e.message, `offered ssh-ed25519 ${await fingerprint(b)}`);
    assertEquals(e.hint, "if you recreated 'sb' yourself, run `tachikoma ssh forget sb` and retry");
    await assertRejects(
      () => kh.check("sb", b, { createdAt: "2026-04-30T23:59:59Z" }),
      HostKeyMismatchError,
    );
    assertEquals(await kh.check("sb", b, { createdAt: "2026-05-01T00:00:01Z" }), "replaced");
    assertEquals((await kh.list("sb")).map((p) => p.key), [b.key]);
    assertEquals(await kh.forget("sb"), true);
    assertEquals(await kh.forget("sb"), false);
    assertEquals(await kh.check("sb", a), "pinned");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the file stays OpenSSH-readable and keeps lines it does not own", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/known_hosts`;
    const foreign =
      "# a comment\n|1|abc=|def= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==\n@revoked * ssh-rsa AAAA\n";
    await Deno.writeTextFile(path, foreign);
    const kh = new KnownHosts(path);
    const a = parsePublicKeyLine(await keygen(dir, "a"));
    const e = parsePublicKeyLine(await keygen(dir, "e", "ecdsa"));
    await kh.pin("tachikoma-x", [a, e]);
    await kh.pin("tachikoma-y", [a]);
    await kh.pin("tachikoma-x", [a], { replace: true });
    const text = await Deno.readTextFile(path);
    assert(text.startsWith(foreign));
    const ours = text.slice(foreign.length).trim().split("\n");
    assertEquals(ours.map((l) => l.split(" ").slice(0, 2).join(" ")), [
      "tachikoma-y ssh-ed25519",
      "tachikoma-x ssh-ed25519",
    ]);
    assert(ours.every((l) => /tachikoma-pinned-at=\d{4}-/.test(l)));
    // ssh-keygen -F finds our entries: the format is OpenSSH's.
    const f = await new Deno.Command("ssh-keygen", { args: ["-F", "tachikoma-x", "-f", path] })
      .output();
    assertEquals(f.code, 0);
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("concurrent pins never lose each other (locked read-modify-write)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = parsePublicKeyLine(await keygen(dir, "a"));
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => new KnownHosts(`${dir}/known_hosts`).pin(`sb-${i}`, [a])),
    );
    assertEquals((await new KnownHosts(`${dir}/known_hosts`).list()).length, 8);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("host aliases that could inject into known_hosts or ssh config are refused", () => {
  for (const bad of ["a b", "*", "x,y", "[x]:22", "-oProxyCommand=x", "a\nb", ""]) {
    assertThrows(() => validateHostAlias(bad), UsageError);
  }
  validateHostAlias("tachikoma-app-feat-x.1_2");
});
