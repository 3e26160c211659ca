import { assertEquals, assertRejects } from "@std/assert";
import { Guest } from "../../../src/provision/guest.ts";
import { GuestCommandError } from "../../../src/provision/errors.ts";
import { localSandbox, pwnedPath } from "./helpers.ts";

Deno.test("writeFile/readFile carry any bytes, to hostile paths, atomically with the mode", async () => {
  const sb = await localSandbox();
  try {
    const guest = new Guest(sb.backend, sb.name, "admin");
    const pwned = pwnedPath();
    const dir = `${sb.home}/d $(touch ${pwned}) 'q" \`touch ${pwned}\``;
    const path = `${dir}/f\nnewline ü`;
    const bytes = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) % 256);
    await guest.writeFile(path, bytes, { mode: 0o640 });
    assertEquals(await Deno.readFile(path), bytes);
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o640);
    assertEquals(await guest.readFile(path), bytes);
    assertEquals(await guest.readFile(`${dir}/missing`), null);
    // No temp files left behind.
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["f\nnewline ü"]);
    assertEquals(await Deno.stat(pwned).catch(() => null), null);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("writeFile splits big content into several execs and reassembles it", async () => {
  const sb = await localSandbox();
  try {
    const guest = new Guest(sb.backend, sb.name, "admin");
    const big = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 31 + (i >> 8)) % 256);
    const before = sb.log.length;
    await guest.writeFile(`${sb.home}/big.bin`, big);
    const writes = sb.log.slice(before).filter((l) => l.argv[0] === "sh");
    assertEquals(writes.length, 3); // 266 668 base64 chars in 96 KiB argv chunks
    assertEquals(await Deno.readFile(`${sb.home}/big.bin`), big);
    assertEquals(await guest.readFile(`${sb.home}/big.bin`), big);
    await guest.writeFile(`${sb.home}/empty`, "");
    assertEquals(await Deno.readFile(`${sb.home}/empty`), new Uint8Array());
  } finally {
    await sb.cleanup();
  }
});

Deno.test("check/shCheck throw GuestCommandError with the guest's stderr", async () => {
  const sb = await localSandbox();
  try {
    const guest = new Guest(sb.backend, sb.name, "admin");
    const e = await assertRejects(
      () => guest.shCheck('echo "boom $1" >&2; exit 3', ["x'y"], "doing it"),
      GuestCommandError,
    );
    assertEquals(e.message, "doing it failed (exit 3)");
    assertEquals(e.stderr, "boom x'y\n");
    assertEquals(await guest.home(), sb.home);
  } finally {
    await sb.cleanup();
  }
});
