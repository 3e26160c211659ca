/**
 * `src/core/sandbox_files.ts` against the memory backend in host-exec mode: the scripts run
 * under the host's real `sh` and coreutils, with the code share mapped to a temp directory, so
 * quoting, modes, symlinks and error mapping are exercised for real.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { MemoryBackend } from "../../../src/backends/memory/mod.ts";
import type { ExecRequest, ExecResult } from "../../../src/backends/backend.ts";
import {
  deleteFile,
  editFile,
  FILE_QUERY_ATTEMPTS,
  type FileTarget,
  writeFile,
} from "../../../src/core/sandbox_files.ts";
import { listFiles, readFile } from "../../../src/core/file_read.ts";
import { isBinary, sha256Hex } from "../../../src/core/file_values.ts";
import { GUEST_CODE_DIR } from "../../../src/provision/shares.ts";
import { ConflictError, NotFoundError, RuntimeError, UsageError } from "../../../src/lib/errors.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Names that must survive the trip unchanged. */
const HOSTILE = [
  "it's here.txt",
  "$(touch pwned).txt",
  "`touch pwned2`.txt",
  "new\nline.txt",
  "-rf",
  "spaces  and\ttab.txt",
  "ünïcødé-日本.txt",
  'quote"double.txt',
];

async function setup(): Promise<{ dir: string; target: FileTarget; backend: MemoryBackend }> {
  const dir = await Deno.makeTempDir({ prefix: "tk-files-" });
  const backend = new MemoryBackend({}, { sandboxes: {}, exec: { mode: "host" } });
  await backend.seed("sb", {
    state: "running",
    address_at: 0,
    shares: [{ name: "code", hostPath: dir, guestPath: GUEST_CODE_DIR, readOnly: false }],
  });
  return { dir, backend, target: { backend, sandbox: "sb" } };
}

Deno.test("write then read round-trips hostile names and content, nothing else is run", async () => {
  const { dir, target } = await setup();
  try {
    for (const name of HOSTILE) {
      const content = `content of ${name}\n$(echo no) \`echo no\` '\n`;
      const w = await writeFile(target, `sub dir/${name}`, { data: enc.encode(content) });
      assertEquals(w.bytes_written, enc.encode(content).length);
      assertEquals(w.mode, "0644");
      const r = await readFile(target, `sub dir/${name}`);
      assertEquals(dec.decode(r.data), content);
      assertEquals(r.truncated, false);
      assertEquals(r.binary, false);
      assertEquals(await Deno.readTextFile(`${dir}/sub dir/${name}`), content);
    }
    const listing = await listFiles(target, "sub dir");
    assertEquals(
      listing.entries.map((e) => e.path).sort(),
      HOSTILE.map((n) => `sub dir/${n}`).sort(),
    );
    for (const stray of ["pwned", "pwned2", "sub dir/pwned", "sub dir/pwned2"]) {
      await assertRejects(() => Deno.stat(`${dir}/${stray}`), Deno.errors.NotFound);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("read: max_bytes, offset, truncation, binary detection, errors", async () => {
  const { dir, target } = await setup();
  try {
    await Deno.writeTextFile(`${dir}/a.txt`, "0123456789");
    let r = await readFile(target, "a.txt", { maxBytes: 4 });
    assertEquals([dec.decode(r.data), r.truncated, r.size], ["0123", true, 10]);
    r = await readFile(target, "a.txt", { maxBytes: 4, offset: 8 });
    assertEquals([dec.decode(r.data), r.truncated], ["89", false]);
    r = await readFile(target, `${dir}/a.txt`, { maxBytes: 10 });
    assertEquals([dec.decode(r.data), r.truncated], ["0123456789", false]);
    await Deno.writeFile(`${dir}/b.bin`, new Uint8Array([1, 0, 2, 255]));
    r = await readFile(target, "b.bin");
    assert(r.binary);
    assertEquals([...r.data], [1, 0, 2, 255]);
    // A multi-byte character cut by max_bytes is still text.
    await Deno.writeTextFile(`${dir}/u.txt`, "aé");
    r = await readFile(target, "u.txt", { maxBytes: 2 });
    assertEquals([r.truncated, r.binary], [true, false]);
    await assertRejects(() => readFile(target, "missing.txt"), NotFoundError, "no such file");
    await assertRejects(() => readFile(target, "."), UsageError, "is a directory");
    await assertRejects(() => readFile(target, "a.txt", { maxBytes: 0 }), UsageError, "max_bytes");
    await assertRejects(() => readFile(target, ""), UsageError, "path is empty");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("write: mode given, kept on overwrite, parents, symlink target, errors", async () => {
  const { dir, target } = await setup();
  try {
    await writeFile(target, "bin/run.sh", { data: enc.encode("#!/bin/sh\n"), mode: 0o750 });
    assertEquals((await Deno.stat(`${dir}/bin/run.sh`)).mode! & 0o7777, 0o750);
    const again = await writeFile(target, "bin/run.sh", { data: enc.encode("#!/bin/sh\necho\n") });
    assertEquals(again.mode, "0750");
    await Deno.symlink("bin/run.sh", `${dir}/link`);
    await writeFile(target, "link", { data: enc.encode("through\n") });
    assert((await Deno.lstat(`${dir}/link`)).isSymlink, "the link stays a link");
    assertEquals(await Deno.readTextFile(`${dir}/bin/run.sh`), "through\n");
    await assertRejects(
      () => writeFile(target, "nodir/x", { data: enc.encode(""), createParents: false }),
      NotFoundError,
      "no such directory",
    );
    await assertRejects(
      () => writeFile(target, "bin", { data: enc.encode("") }),
      UsageError,
      "directory",
    );
    await assertRejects(
      () => writeFile(target, "x", { data: enc.encode(""), mode: 0o10000 }),
      UsageError,
      "mode",
    );
    const leftovers = [...Deno.readDirSync(`${dir}/bin`)].map((e) => e.name);
    assertEquals(leftovers, ["run.sh"], "no temp files left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("edit: replaces, keeps the mode, and refuses the documented error cases", async () => {
  const { dir, target } = await setup();
  try {
    await Deno.writeTextFile(`${dir}/s.sh`, "echo one\necho two\necho one\n", { mode: 0o755 });
    await Deno.chmod(`${dir}/s.sh`, 0o755);
    await assertRejects(
      () => editFile(target, "s.sh", { oldString: "echo one", newString: "echo 1" }),
      ConflictError,
      "occurs 2 times",
    );
    await assertRejects(
      () => editFile(target, "s.sh", { oldString: "absent", newString: "x" }),
      NotFoundError,
      "not found",
    );
    await assertRejects(
      () => editFile(target, "s.sh", { oldString: "same", newString: "same" }),
      UsageError,
      "identical",
    );
    await assertRejects(
      () => editFile(target, "s.sh", { oldString: "", newString: "x" }),
      UsageError,
      "empty",
    );
    const all = await editFile(target, "s.sh", {
      oldString: "echo one",
      newString: "echo '$&' $1",
      replaceAll: true,
    });
    assertEquals([all.replacements, all.mode], [2, "0755"]);
    assertEquals(await Deno.readTextFile(`${dir}/s.sh`), "echo '$&' $1\necho two\necho '$&' $1\n");
    assertEquals((await Deno.stat(`${dir}/s.sh`)).mode! & 0o7777, 0o755);
    const one = await editFile(target, "s.sh", { oldString: "two", newString: "2" });
    assertEquals(one.replacements, 1);
    await Deno.writeFile(`${dir}/b.bin`, new Uint8Array([0xff, 0xfe, 0x41]));
    await assertRejects(
      () => editFile(target, "b.bin", { oldString: "A", newString: "B" }),
      UsageError,
      "UTF-8",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("write with expectSha256 refuses a file changed since it was read", async () => {
  const { dir, target } = await setup();
  try {
    await Deno.writeTextFile(`${dir}/f`, "v1");
    const stale = await sha256Hex(enc.encode("v0"));
    await assertRejects(
      () => writeFile(target, "f", { data: enc.encode("v2"), expectSha256: stale }),
      ConflictError,
      "changed since it was read",
    );
    assertEquals(await Deno.readTextFile(`${dir}/f`), "v1");
    const fresh = await sha256Hex(enc.encode("v1"));
    await writeFile(target, "f", { data: enc.encode("v2"), expectSha256: fresh });
    assertEquals(await Deno.readTextFile(`${dir}/f`), "v2");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("list: one level or recursive, entry fields, cap, errors", async () => {
  const { dir, target } = await setup();
  try {
    await Deno.mkdir(`${dir}/d/e`, { recursive: true });
    await Deno.writeTextFile(`${dir}/d/x.txt`, "xyz");
    await Deno.chmod(`${dir}/d/x.txt`, 0o600);
    await Deno.writeTextFile(`${dir}/d/e/y.txt`, "y");
    await Deno.symlink("x.txt", `${dir}/d/l`);
    const flat = await listFiles(target, "d");
    assertEquals(flat.entries.map((e) => [e.path, e.type, e.is_dir]), [
      ["d/e", "dir", true],
      ["d/l", "symlink", false],
      ["d/x.txt", "file", false],
    ]);
    const x = flat.entries.find((e) => e.path === "d/x.txt")!;
    assertEquals([x.size, x.mode], [3, "0600"]);
    const deep = await listFiles(target, "d", { recursive: true });
    assertEquals(deep.entries.map((e) => e.path), ["d/e", "d/e/y.txt", "d/l", "d/x.txt"]);
    const capped = await listFiles(target, "d", { recursive: true, maxEntries: 2 });
    assertEquals([capped.entries.length, capped.truncated], [2, true]);
    const abs = await listFiles(target, `${dir}/d/e`);
    assertEquals(abs.entries.map((e) => e.path), [`${dir}/d/e/y.txt`]);
    await assertRejects(() => listFiles(target, "nope"), NotFoundError);
    await assertRejects(() => listFiles(target, "d/x.txt"), UsageError, "not a directory");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("delete: one file or symlink (never its target), hostile names; directories and missing files refused", async () => {
  const { dir, target } = await setup();
  try {
    for (const name of HOSTILE) {
      await Deno.writeTextFile(`${dir}/${name}`, "x");
      assertEquals(await deleteFile(target, name), { path: name, type: "file" });
      await assertRejects(() => Deno.stat(`${dir}/${name}`), Deno.errors.NotFound);
    }
    await Deno.writeTextFile(`${dir}/target.txt`, "kept");
    await Deno.symlink(`${dir}/target.txt`, `${dir}/link`);
    await Deno.symlink(`${dir}/nowhere`, `${dir}/dangling`);
    assertEquals((await deleteFile(target, "link")).type, "symlink");
    assertEquals((await deleteFile(target, `${dir}/dangling`)).type, "symlink");
    assertEquals(await Deno.readTextFile(`${dir}/target.txt`), "kept", "the target stays");
    await assertRejects(() => Deno.lstat(`${dir}/link`), Deno.errors.NotFound);
    await Deno.mkdir(`${dir}/sub`);
    await assertRejects(() => deleteFile(target, "sub"), UsageError, "is a directory");
    await assertRejects(() => deleteFile(target, "sub/"), UsageError, "names a directory");
    await assertRejects(() => deleteFile(target, "gone.txt"), NotFoundError, "no such file");
    await assertRejects(() => deleteFile(target, ""), UsageError, "path is empty");
    assert((await Deno.stat(`${dir}/sub`)).isDirectory, "the directory is untouched");
    for (const stray of ["pwned", "pwned2"]) {
      await assertRejects(() => Deno.stat(`${dir}/${stray}`), Deno.errors.NotFound);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("isBinary: NUL, invalid UTF-8, a cut multi-byte character", () => {
  assert(isBinary(new Uint8Array([0x41, 0])));
  assert(isBinary(new Uint8Array([0xc3, 0x28])));
  assert(!isBinary(enc.encode("héllo")));
  assert(!isBinary(enc.encode("日").subarray(0, 2), true));
  assert(isBinary(enc.encode("日").subarray(0, 2), false));
});

/**
 * The same sandbox through a backend that tampers with exec results as an engine can (Incus
 * loses output under concurrent execs): `tamper` gets each request and its real result.
 */
function lossy(
  backend: MemoryBackend,
  tamper: (argv: string[], result: ExecResult) => ExecResult | null,
): FileTarget {
  const proxy = new Proxy(backend, {
    get(target, prop) {
      if (prop === "exec") {
        return async (name: string, request: ExecRequest) => {
          const result = await target.exec(name, request);
          return tamper(request.argv, result) ?? result;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { backend: proxy, sandbox: "sb" };
}

const LOST: ExecResult = { code: 0, stdout: new Uint8Array(), stderr: new Uint8Array() };
const isScript = (marker: string) => (argv: string[]) => argv[2]?.includes(marker) ?? false;

Deno.test("lost output: reads and lists are asked again, then fail; never empty", async () => {
  const { dir, backend } = await setup();
  try {
    await Deno.writeTextFile(`${dir}/f.txt`, "real content\n");
    await Deno.writeTextFile(`${dir}/empty.txt`, "");
    await Deno.mkdir(`${dir}/nothing here`);
    let drops = 2;
    const twice = lossy(backend, (argv) => isScript("head -c")(argv) && drops-- > 0 ? LOST : null);
    assertEquals(dec.decode((await readFile(twice, "f.txt")).data), "real content\n");
    assertEquals(drops, -1, "two lost reads, then an intact one");
    assertEquals((await readFile(twice, "empty.txt")).data.length, 0, "empty is empty");

    const always = lossy(backend, (argv) => isScript("head -c")(argv) ? LOST : null);
    const e = await assertRejects(() => readFile(always, "f.txt"), RuntimeError);
    assertEquals(e.code, "guest_output");
    assertStringIncludes(e.message, `lost ${FILE_QUERY_ATTEMPTS} times`);
    // Cut short (the size header says more): also asked again, then refused.
    const cut = lossy(
      backend,
      (argv, r) => isScript("head -c")(argv) ? { ...r, stdout: r.stdout.subarray(0, 8) } : null,
    );
    await assertRejects(() => readFile(cut, "f.txt"), RuntimeError, "answer was lost");

    assertEquals((await listFiles(twice, "nothing here")).entries, [], "an empty dir is empty");
    const noList = lossy(backend, (argv) => isScript("find ")(argv) ? LOST : null);
    await assertRejects(() => listFiles(noList, "."), RuntimeError, "answer was lost");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("write/edit: what landed is compared with the input (SHA-256 in the guest)", async () => {
  const { dir, backend } = await setup();
  try {
    // The write's answer lost: a read-only check finds the right bytes, so it succeeds.
    const quiet = lossy(backend, (argv) => isScript("mktemp")(argv) ? LOST : null);
    const w = await writeFile(quiet, "a.txt", { data: enc.encode("exact\n"), mode: 0o600 });
    assertEquals([w.bytes_written, w.mode], [6, "0600"]);
    // Something else landed (changed right after, or garbled): refused, never "written".
    const swapped = lossy(backend, (argv) => {
      if (!isScript("mktemp")(argv)) return null;
      Deno.writeTextFileSync(`${dir}/b.txt`, "not what was sent\n");
      return LOST;
    });
    const e = await assertRejects(
      () => writeFile(swapped, "b.txt", { data: enc.encode("what was sent\n") }),
      RuntimeError,
      "not the 14 bytes written",
    );
    assertEquals(e.code, "guest_output");
    await Deno.writeTextFile(`${dir}/c.txt`, "one two\n");
    await assertRejects(
      () =>
        editFile(
          lossy(backend, (argv) => {
            if (!isScript("mktemp")(argv)) return null;
            Deno.writeTextFileSync(`${dir}/c.txt`, "garbled\n");
            return LOST;
          }),
          "c.txt",
          { oldString: "one", newString: "1" },
        ),
      RuntimeError,
      "SHA-256",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
