/**
 * StateStore: atomic locked writes, tachikoma v1 compatibility, corruption handling, modes.
 */
import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { FakeClock } from "../../testing/fake_clock.ts";
import { RuntimeError } from "../../../src/lib/errors.ts";
import { STATE_VERSION, StateStore } from "../../../src/state/mod.ts";
import { captureLogger, makeRecord, tempDir } from "./helpers.ts";

async function listDir(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(path)) names.push(e.name);
  return names.sort();
}

const mode = async (path: string) => (await Deno.stat(path)).mode! & 0o777;

Deno.test("read: missing file (and missing dir) is an empty state; nothing is created", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/cfg`;
  assertEquals(await new StateStore(dir).read(), { version: STATE_VERSION, vms: [] });
  await assertRejects(() => Deno.lstat(dir), Deno.errors.NotFound);
  await Deno.mkdir(dir);
  assertEquals(await new StateStore(dir).read(), { version: STATE_VERSION, vms: [] });
  assertEquals(await listDir(dir), ["state.lock"]);
});

Deno.test("update: creates dir 0700, state.json and state.lock 0600, pretty JSON v2", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/a/cfg`;
  const store = new StateStore(dir);
  const result = await store.update((s) => {
    s.vms.push(makeRecord("one"));
    return 42;
  });
  assertEquals(result, 42);
  assertEquals(await mode(dir), 0o700);
  assertEquals(await mode(`${dir}/state.json`), 0o600);
  assertEquals(await mode(`${dir}/state.lock`), 0o600);
  const text = await Deno.readTextFile(`${dir}/state.json`);
  const parsed = JSON.parse(text);
  assertEquals(text, JSON.stringify(parsed, null, 2) + "\n");
  assertStringIncludes(text, '{\n  "version": 2,\n  "vms": [\n    {\n      "name": "one",');
  assertEquals(parsed.vms, [makeRecord("one")]);
  assertEquals(await listDir(dir), ["state.json", "state.lock"]);
});

Deno.test("update: rewriting a 0644 state file leaves it 0600", async () => {
  await using tmp = await tempDir();
  await Deno.writeTextFile(`${tmp.path}/state.json`, '{"version":1,"vms":[]}', { mode: 0o644 });
  await Deno.chmod(`${tmp.path}/state.json`, 0o644);
  await new StateStore(tmp.path).put(makeRecord("x"));
  assertEquals(await mode(`${tmp.path}/state.json`), 0o600);
});

Deno.test("update: when fn throws nothing is written and the error propagates", async () => {
  await using tmp = await tempDir();
  const store = new StateStore(tmp.path);
  await store.put(makeRecord("keep"));
  const before = await Deno.readTextFile(`${tmp.path}/state.json`);
  await assertRejects(
    () =>
      store.update((s) => {
        s.vms.length = 0;
        throw new Error("boom");
      }),
    Error,
    "boom",
  );
  assertEquals(await Deno.readTextFile(`${tmp.path}/state.json`), before);
});

Deno.test("update: an invalid result is refused and the file is unchanged", async () => {
  await using tmp = await tempDir();
  const store = new StateStore(tmp.path);
  await store.put(makeRecord("keep"));
  const before = await Deno.readTextFile(`${tmp.path}/state.json`);
  const err = await assertRejects(
    () =>
      store.update((s) => {
        (s.vms[0] as unknown as Record<string, unknown>).status = "exploded";
      }),
    RuntimeError,
    "vms[0].status",
  );
  assertEquals(err.code, "state_invalid");
  assertEquals(await Deno.readTextFile(`${tmp.path}/state.json`), before);
});

Deno.test("update: concurrent updates in one process are serialised (none lost)", async () => {
  await using tmp = await tempDir();
  const store = new StateStore(tmp.path);
  await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      store.update(async (s) => {
        const n = s.vms.length;
        await Promise.resolve();
        s.vms.push(makeRecord(`p${i}`, { repo: String(n) }));
      })),
  );
  const state = await store.read();
  assertEquals(state.vms.length, 30);
  // Each update saw all the previous ones.
  assertEquals(state.vms.map((r) => r.repo), Array.from({ length: 30 }, (_, i) => String(i)));
});

Deno.test("get/put/remove", async () => {
  await using tmp = await tempDir();
  const store = new StateStore(tmp.path);
  assertEquals(await store.get("a"), undefined);
  await store.put(makeRecord("a"));
  await store.put(makeRecord("b"));
  await store.put(makeRecord("a", { status: "stopped", ip: "10.0.0.2" }));
  assertEquals((await store.read()).vms.map((r) => r.name), ["a", "b"]);
  assertEquals((await store.get("a"))?.status, "stopped");
  assertEquals((await store.get("a"))?.ip, "10.0.0.2");
  assertEquals(await store.remove("a"), true);
  assertEquals(await store.remove("a"), false);
  assertEquals((await store.read()).vms.map((r) => r.name), ["b"]);
  await assertRejects(
    () => store.put({ ...makeRecord("bad"), created_at: "yesterday" }),
    RuntimeError,
    "created_at",
  );
});

Deno.test("put replaces duplicate names tachikoma appended; remove drops all of them", async () => {
  await using tmp = await tempDir();
  const dup = [makeRecord("d", { ip: "1" }), makeRecord("e"), makeRecord("d", { ip: "2" })];
  await Deno.writeTextFile(`${tmp.path}/state.json`, JSON.stringify({ version: 1, vms: dup }));
  const store = new StateStore(tmp.path);
  assertEquals((await store.get("d"))?.ip, "1");
  await store.put(makeRecord("d", { ip: "3" }));
  assertEquals((await store.read()).vms.map((r) => [r.name, r.ip]), [["d", "3"], ["e", null]]);
  await Deno.writeTextFile(`${tmp.path}/state.json`, JSON.stringify({ version: 2, vms: dup }));
  assertEquals(await store.remove("d"), true);
  assertEquals((await store.read()).vms.map((r) => r.name), ["e"]);
});

// The example from tachikoma-spec §6, plus a record without `ip` and unknown fields.
const TACHIKOMA_V1 = `{
  "version": 1,
  "vms": [
    {
      "name": "tachikoma-myapp-feature-x",
      "repo": "myapp",
      "branch": "feature/x",
      "worktree_path": "/Users/me/src/myapp-feature/x",
      "created_at": "2026-04-12T19:19:46.123456Z",
      "last_used": "2026-04-12T19:25:01.000001Z",
      "status": "running",
      "ip": "192.168.64.10"
    },
    {
      "name": "tachikoma-myapp-main",
      "repo": "myapp",
      "branch": "main",
      "worktree_path": "/Users/me/src/myapp",
      "created_at": "2026-04-10T08:00:00Z",
      "last_used": "2026-04-11T09:30:00.5Z",
      "status": "suspended",
      "future_field": { "nested": [1, 2, 3] }
    }
  ],
  "top_level_extra": "kept"
}`;

Deno.test("tachikoma v1 file: read, then rewritten as v2 with every field kept", async () => {
  await using tmp = await tempDir();
  await Deno.writeTextFile(`${tmp.path}/state.json`, TACHIKOMA_V1);
  const store = new StateStore(tmp.path);
  const state = await store.read();
  assertEquals(state.version, 1);
  assertEquals(state.vms.length, 2);
  const [x, main] = state.vms;
  assertEquals(x.branch, "feature/x");
  assertEquals(x.ip, "192.168.64.10");
  assertEquals(x.backend, "tart");
  assertEquals(main.ip, null);
  assertEquals(main.status, "suspended");
  assertEquals(main.backend, "tart");

  await store.put(makeRecord("new"));
  const raw = JSON.parse(await Deno.readTextFile(`${tmp.path}/state.json`));
  const original = JSON.parse(TACHIKOMA_V1);
  assertEquals(raw.version, 2);
  assertEquals(raw.top_level_extra, "kept");
  assertEquals(raw.vms.length, 3);
  assertEquals(raw.vms[0], { ...original.vms[0], backend: "tart" });
  assertEquals(raw.vms[1], { ...original.vms[1], ip: null, backend: "tart" });
  // Field order of the original records is kept (tachikoma's declaration order).
  assertEquals(Object.keys(raw.vms[0]).slice(0, 8), Object.keys(original.vms[0]));
  assertEquals(raw.vms[2], makeRecord("new"));
});

Deno.test("v2 fields round-trip: provisioned, failure, repo_root", async () => {
  await using tmp = await tempDir();
  const store = new StateStore(tmp.path);
  const rec = makeRecord("full", {
    status: "failed",
    repo_root: "/home/u/src/myapp",
    failure: "provisioning step 'ssh_key' failed: exit 1",
    provisioned: {
      version: 3,
      last_step: "hostname",
      complete: false,
      fingerprints: { ssh_key: "abc", hostname: "def" },
    },
  });
  await store.put(rec);
  assertEquals(await store.get("full"), rec);
  await store.put(
    makeRecord("none", { provisioned: { version: 1, last_step: null, complete: false } }),
  );
  assertEquals((await store.get("none"))?.provisioned?.last_step, null);
});

const CORRUPT_CASES: [string, string, string][] = [
  ["bad JSON", '{"version": 1, "vms": [', "not valid JSON"],
  ["an empty file", "", "not valid JSON"],
  ["an array root", "[]", "(root)"],
  ["vms not an array", '{"version":1,"vms":{}}', "vms: expected an array"],
  ["a missing version", '{"vms":[]}', "version"],
  [
    "a record without name",
    JSON.stringify({ version: 1, vms: [{ ...makeRecord("x"), name: undefined }] }),
    "vms[0].name: missing",
  ],
  [
    "an invalid status",
    JSON.stringify({ version: 1, vms: [makeRecord("a"), { ...makeRecord("b"), status: "bogus" }] }),
    "vms[1].status",
  ],
  [
    "a bad timestamp",
    JSON.stringify({ version: 1, vms: [{ ...makeRecord("a"), last_used: "last tuesday" }] }),
    "vms[0].last_used",
  ],
  [
    "a numeric ip",
    JSON.stringify({ version: 1, vms: [{ ...makeRecord("a"), ip: 10 }] }),
    "vms[0].ip",
  ],
  [
    "a bad provisioned",
    JSON.stringify({ version: 2, vms: [{ ...makeRecord("a"), provisioned: { version: 1 } }] }),
    "vms[0].provisioned.last_step",
  ],
];

for (const [label, content, reason] of CORRUPT_CASES) {
  Deno.test(`corrupt file (${label}) is moved aside with a warning, never emptied`, async () => {
    await using tmp = await tempDir();
    const path = `${tmp.path}/state.json`;
    await Deno.writeTextFile(path, content);
    const { logger, lines } = captureLogger();
    const clock = new FakeClock(Date.UTC(2026, 3, 12, 19, 19, 46, 123));
    const store = new StateStore(tmp.path, { clock, logger });
    assertEquals(await store.read(), { version: STATE_VERSION, vms: [] });
    const aside = `${path}.corrupt-20260412T191946.123Z`;
    assertEquals(await Deno.readTextFile(aside), content);
    await assertRejects(() => Deno.lstat(path), Deno.errors.NotFound);
    const warnings = lines.filter((l) => l.startsWith("warning: "));
    assertEquals(warnings.length, 1);
    assertStringIncludes(warnings[0], `state file ${path} is corrupt`);
    assertStringIncludes(warnings[0], `moved it to ${aside}`);
    assertStringIncludes(warnings[0], reason);
    // The next write starts afresh next to the kept copy.
    await store.put(makeRecord("fresh"));
    assertEquals((await store.read()).vms.map((r) => r.name), ["fresh"]);
    assertEquals(await listDir(tmp.path), [
      "state.json",
      "state.json.corrupt-20260412T191946.123Z",
      "state.lock",
    ]);
  });
}

Deno.test("corrupt file found by update is moved aside; same timestamp twice gets -1", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/state.json`;
  const { logger, lines } = captureLogger();
  const clock = new FakeClock(Date.UTC(2026, 0, 2, 3, 4, 5, 6));
  const store = new StateStore(tmp.path, { clock, logger });
  await Deno.writeTextFile(path, "garbage one");
  await store.put(makeRecord("a"));
  await Deno.writeTextFile(path, "garbage two");
  await store.update(() => {});
  assertEquals(await Deno.readTextFile(`${path}.corrupt-20260102T030405.006Z`), "garbage one");
  assertEquals(await Deno.readTextFile(`${path}.corrupt-20260102T030405.006Z-1`), "garbage two");
  assertEquals(lines.filter((l) => l.startsWith("warning: ")).length, 2);
  assertEquals((await store.read()).vms, []);
});

Deno.test("a file from a newer tachikoma is an error and is left untouched", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/state.json`;
  const content = JSON.stringify({ version: STATE_VERSION + 1, vms: [] });
  await Deno.writeTextFile(path, content);
  const store = new StateStore(tmp.path);
  const err = await assertRejects(() => store.read(), RuntimeError, "newer tachikoma");
  assertEquals(err.code, "state_version");
  await assertRejects(() => store.put(makeRecord("x")), RuntimeError, "newer tachikoma");
  assertEquals(await Deno.readTextFile(path), content);
  assertEquals(await listDir(tmp.path), ["state.json", "state.lock"]);
});

Deno.test("leftover temp files of a crashed writer are ignored by reads, removed by writes", async () => {
  await using tmp = await tempDir();
  const store = new StateStore(tmp.path);
  await store.put(makeRecord("a"));
  await Deno.writeTextFile(`${tmp.path}/state.json.tmp-4242-deadbeef`, '{"version":2,"vms":[]');
  await Deno.writeTextFile(`${tmp.path}/state.json.tmp`, "tachikoma's own temp name");
  assertEquals((await store.read()).vms.map((r) => r.name), ["a"]);
  await store.put(makeRecord("b"));
  assertEquals(await listDir(tmp.path), ["state.json", "state.lock"]);
  assertEquals((await store.read()).vms.map((r) => r.name), ["a", "b"]);
});

Deno.test("read of 1,000 entries returns them all, in order (its cost: bench/startup_bench.ts)", async () => {
  await using tmp = await tempDir();
  const vms = Array.from({ length: 1000 }, (_, i) => makeRecord(`tachikoma-myapp-branch-${i}`));
  await Deno.writeTextFile(`${tmp.path}/state.json`, JSON.stringify({ version: 2, vms }, null, 2));
  const store = new StateStore(tmp.path);
  // How fast is measured by the startup bench (`list --json` over 1,000 entries, as a ratio to
  // an empty deno run in the same run), not with a wall-clock bound in a unit test.
  const read = (await store.read()).vms;
  assertEquals(read.map((r) => r.name), vms.map((r) => r.name));
  assertEquals(await listDir(tmp.path), ["state.json", "state.lock"], "a read writes nothing");
});
