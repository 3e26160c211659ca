import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { Guest, GuestOutputError, QUERY_ATTEMPTS } from "../../../src/provision/guest.ts";
import { GuestCommandError } from "../../../src/provision/errors.ts";
import { dropOutput, localSandbox, pwnedPath } from "./helpers.ts";

Deno.test("writeFile/readFile carry any bytes, to hostile paths, atomically with the mode", async () => {
  const sb = await localSandbox();
  try {
    const guest = new Guest(sb.backend, sb.name, { user: "admin" });
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
    const guest = new Guest(sb.backend, sb.name, { user: "admin" });
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
    const guest = new Guest(sb.backend, sb.name, { user: "admin" });
    const e = await assertRejects(
      () => guest.shCheck('echo "boom $1" >&2; exit 3', ["x'y"], { what: "doing it" }),
      GuestCommandError,
    );
    assertEquals(e.message, "doing it failed (exit 3)");
    assertEquals(e.stderr, "boom x'y\n");
    assertEquals(await guest.home(), sb.home);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("readFile: lost output is read again, never taken for an empty file", async () => {
  // Lost twice, then intact: the content, after three reads.
  {
    const lost = dropOutput((r) => r.argv.some((a) => a.includes("wc -c <")), 2);
    const sb = await localSandbox({ tamper: lost });
    try {
      await Deno.writeTextFile(`${sb.home}/.profile`, "# mine\nexport KEEP=1\n");
      const guest = new Guest(sb.backend, sb.name, { user: "admin" });
      assertEquals(
        new TextDecoder().decode((await guest.readFile(`${sb.home}/.profile`))!),
        "# mine\nexport KEEP=1\n",
      );
      assertEquals(lost.dropped(), 2);
      // A really empty file is empty (its header says size 0), not lost.
      await Deno.writeTextFile(`${sb.home}/empty`, "");
      assertEquals(await guest.readFile(`${sb.home}/empty`), new Uint8Array());
    } finally {
      await sb.cleanup();
    }
  }
  // Always lost: GuestOutputError, after QUERY_ATTEMPTS² tries at most.
  {
    const lost = dropOutput((r) => r.argv.some((a) => a.includes("wc -c <")));
    const sb = await localSandbox({ tamper: lost });
    try {
      await Deno.writeTextFile(`${sb.home}/.profile`, "# mine\n");
      const guest = new Guest(sb.backend, sb.name, { user: "admin" });
      await assertRejects(() => guest.readFile(`${sb.home}/.profile`), GuestOutputError, "lost");
      assert(lost.dropped() >= QUERY_ATTEMPTS);
    } finally {
      await sb.cleanup();
    }
  }
});

Deno.test("readFile: damaged content (its hash does not match) is read again", async () => {
  let damaged = 0;
  const sb = await localSandbox({
    tamper: (request, result) => {
      if (!request.argv.some((a) => a.includes("wc -c <")) || damaged >= 2) return null;
      damaged++;
      // Same length, one byte changed in the base64 body (the last line before the trailer).
      const text = new TextDecoder().decode(result.stdout);
      const at = text.lastIndexOf("\ntachikoma-output-end") - 2;
      const swapped = text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
      return { ...result, stdout: new TextEncoder().encode(swapped) };
    },
  });
  try {
    await Deno.writeTextFile(`${sb.home}/f`, "content that matters\n");
    const guest = new Guest(sb.backend, sb.name, { user: "admin" });
    assertEquals(
      new TextDecoder().decode((await guest.readFile(`${sb.home}/f`))!),
      "content that matters\n",
    );
    assertEquals(damaged, 2);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("writeFile: the SHA-256 of what landed is the input's; a lost answer is asked again", async () => {
  // The write's own output lost: the hash is queried separately.
  const lost = dropOutput((r) => r.argv.some((a) => a.includes("base64 -d <")));
  const sb = await localSandbox({ tamper: lost });
  try {
    const guest = new Guest(sb.backend, sb.name, { user: "admin" });
    await guest.writeFile(`${sb.home}/a`, "exact bytes\n");
    assertEquals(lost.dropped(), 1);
    assertEquals(await Deno.readTextFile(`${sb.home}/a`), "exact bytes\n");
  } finally {
    await sb.cleanup();
  }
  // Something else lands (the guest changed it right after): refused, with both hashes.
  const sb2 = await localSandbox({
    tamper: (request, result) => {
      const last = request.argv.some((a) => a.includes("base64 -d <"));
      if (last) Deno.writeTextFileSync(request.argv.at(-5)!, "not the input\n");
      return last ? { ...result, stdout: new Uint8Array() } : null;
    },
  });
  try {
    const guest = new Guest(sb2.backend, sb2.name, { user: "admin" });
    const e = await assertRejects(
      () => guest.writeFile(`${sb2.home}/b`, "the input\n"),
      GuestOutputError,
    );
    assertStringIncludes(e.message, "is not the input's");
  } finally {
    await sb2.cleanup();
  }
});

Deno.test("query: output without its trailer is run again; always lost → GuestOutputError", async () => {
  const lost = dropOutput((r) => r.argv.some((a) => a === "echo answer"), 1);
  const sb = await localSandbox({ tamper: lost });
  try {
    const guest = new Guest(sb.backend, sb.name, { user: "admin" });
    const r = await guest.query("echo answer", [], { what: "asking" });
    assertEquals([r.code, r.stdout, lost.dropped()], [0, "answer\n", 1]);
    const quiet = await guest.query("true", [], { what: "asking" });
    assertEquals([quiet.code, quiet.stdout], [0, ""], "no output is fine when it is whole");
    const always = dropOutput((r) => r.argv.some((a) => a === "echo again"));
    const sb2 = await localSandbox({ tamper: always });
    try {
      await assertRejects(
        () =>
          new Guest(sb2.backend, sb2.name, { user: "admin" }).query("echo again", [], {
            what: "asking",
          }),
        GuestOutputError,
        `output lost ${QUERY_ATTEMPTS} times`,
      );
    } finally {
      await sb2.cleanup();
    }
  } finally {
    await sb.cleanup();
  }
});

Deno.test("a root script starts without waiting for the user's home; the user's looks it up once", async () => {
  const sb = await localSandbox();
  try {
    const guest = new Guest(sb.backend, sb.name, { user: "admin" });
    const before = sb.log.length;
    // (the double runs root scripts that read the host keys only)
    const keys = ": /etc/ssh/ssh_host_";
    await guest.shCheck(keys, [], { what: "as root", as: "root" });
    await guest.query(keys, [], { what: "asking root", as: "root" });
    const argv0 = () => sb.log.slice(before).map((l) => l.argv[0]);
    assert(!argv0().includes("getent"), `no home lookup for root: ${argv0()}`);
    await Promise.all([
      guest.shCheck("true", [], { what: "as the user" }),
      guest.query("pwd", [], { what: "where" }),
    ]);
    assertEquals(argv0().filter((a) => a === "getent").length, 1);
    assertEquals(argv0()[2], "getent", "looked up before the user's first script");
  } finally {
    await sb.cleanup();
  }
});
