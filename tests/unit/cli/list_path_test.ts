/**
 * `list`'s lean path (`AppServices.listSandboxes` in src/cli/wiring.ts: the state store, the
 * engine, the inventory, without the lifecycle dependencies) answers exactly what the sandbox
 * service's `list` answers: the same views, the same warnings, the same scoping, the same
 * `unknown` when the engine cannot be reached or opened. And it loads none of the lifecycle.
 */
import { assert, assertEquals } from "@std/assert";
import { appServices } from "../../../src/cli/wiring.ts";
import { loadConfig } from "../../../src/config/load.ts";
import { clearEngines, registerEngine } from "../../../src/backends/registry.ts";
import type { Backend } from "../../../src/backends/backend.ts";
import { SandboxService } from "../../../src/core/sandbox_service.ts";
import type { ListScope } from "../../../src/core/inventory.ts";
import type { SandboxRecord } from "../../../src/state/schema.ts";
import { UnreachableError } from "../../../src/lib/errors.ts";
import { type Harness, harness } from "../core/helpers.ts";
import { MEMORY_MAIN } from "../../testing/memory_main.ts";

function record(name: string, extra: Partial<SandboxRecord> = {}): SandboxRecord {
  return {
    name,
    repo: "other",
    branch: "x",
    worktree_path: `/src/${name}`,
    created_at: "2026-05-01T12:00:00.000Z",
    last_used: "2026-05-01T12:00:00.000Z",
    status: "running",
    ip: "10.0.0.9",
    ...extra,
  };
}

/** The CLI's services in `cwd`, over the harness's state dir, the engine `open` gives. */
function leanApp(h: Harness, cwd: string, open: () => Promise<Backend>) {
  clearEngines();
  registerEngine({ name: "incus", open });
  const env: Record<string, string> = { HOME: h.home, TACHIKOMA_CONFIG_DIR: h.stateDir };
  return appServices({
    cwd,
    progress: h.reporter,
    signal: new AbortController().signal,
    config: () => loadConfig({ cwd, env: (n) => env[n], os: "linux" }),
  });
}

/** A world with every kind of row: running, stopped, another repo, another backend, missing. */
async function world(h: Harness): Promise<void> {
  const a = await h.service.spawn({ branch: "a" });
  const b = await h.service.spawn({ branch: "b" });
  await h.service.halt(b.name);
  await h.store.put(record("tachikoma-other-x", { repo_root: "/src/other" }));
  await h.store.put(record("tachikoma-old-tart", { backend: "tart", repo: "old" }));
  await h.store.put(record("tachikoma-gone", { backend: "memory", repo: h.repo.name }));
  await h.backend.seed("tachikoma-other-x", { state: "running", address_at: 0 });
  assert(a.name);
}

const SCOPES: ListScope[] = [{}, { all: true }, { repo: "old" }, { repo: "myapp" }, {
  repo: "nothing",
}];

Deno.test("list path: the same views and warnings as the service's list, in every scope", async () => {
  await using h = await harness({ config: { backend: "incus" } });
  await world(h);
  const outside = await Deno.makeTempDir({ prefix: "tk-list-outside-" });
  try {
    for (const cwd of [h.repo.root, outside]) {
      const app = leanApp(h, cwd, () => Promise.resolve(h.backend));
      const service = new SandboxService(h.deps, cwd);
      for (const scope of SCOPES) {
        const lean = await app.listSandboxes(scope);
        assertEquals(lean, await service.list(scope), `${cwd} ${JSON.stringify(scope)}`);
      }
    }
    // inside the repo the default scope is the repo; outside, every repo
    const app = leanApp(h, h.repo.root, () => Promise.resolve(h.backend));
    const mine = await app.listSandboxes({});
    assertEquals(mine.sandboxes.map((s) => s.status), ["running", "stopped", "missing"]);
    assert(mine.sandboxes[0].ip !== null);
    const everyone = await leanApp(h, outside, () => Promise.resolve(h.backend)).listSandboxes({});
    assertEquals(everyone.sandboxes.length, 5);
    assertEquals(everyone.warnings, [
      "some sandboxes belong to the tart backend; their status is unknown with memory",
    ]);
  } finally {
    clearEngines();
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("list path: an unreachable engine, or one that cannot be opened, gives unknown as the service does", async () => {
  await using h = await harness({ config: { backend: "incus" } });
  await world(h);
  try {
    h.backend.fail("list", { kind: "unreachable", message: "socket gone" });
    const app = leanApp(h, h.repo.root, () => Promise.resolve(h.backend));
    const lean = await app.listSandboxes({ all: true });
    assertEquals(lean, await new SandboxService(h.deps, h.repo.root).list({ all: true }));
    assert(lean.sandboxes.every((s) => s.status === "unknown"));
    assertEquals(lean.warnings, [
      "cannot reach the memory backend (socket gone); status is unknown",
    ]);

    const refuse = () => Promise.reject(new UnreachableError("no socket at /nowhere"));
    const closed = leanApp(h, h.repo.root, refuse);
    const service = new SandboxService({ ...h.deps, backend: refuse }, h.repo.root);
    const none = await closed.listSandboxes({});
    assertEquals(none, await service.list({}));
    assertEquals(none.warnings, [
      "cannot reach the incus backend (no socket at /nowhere); status is unknown",
    ]);
  } finally {
    clearEngines();
  }
});

Deno.test("list path: `tachikoma list --json` merges live state and loads none of the lifecycle", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tk-list-cli-" });
  try {
    await Deno.mkdir(`${dir}/config`);
    const vms = [0, 1].map((i) =>
      record(`tachikoma-app-b${i}`, { repo: "app", backend: "memory", ip: null })
    );
    await Deno.writeTextFile(`${dir}/config/state.json`, JSON.stringify({ version: 2, vms }));
    await Deno.writeTextFile(
      `${dir}/world.json`,
      JSON.stringify({ sandboxes: { "tachikoma-app-b0": { state: "stopped" } } }),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--frozen", "-L", "debug", MEMORY_MAIN, "list", "--json", "--all"],
      cwd: dir,
      env: {
        HOME: dir,
        TACHIKOMA_CONFIG_DIR: `${dir}/config`,
        TACHIKOMA_TEST_MEMORY_WORLD: `${dir}/world.json`,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert(out.success, stderr);
    const doc = JSON.parse(new TextDecoder().decode(out.stdout));
    assertEquals(
      doc.sandboxes.map((s: { name: string; status: string }) => [s.name, s.status]),
      [["tachikoma-app-b0", "stopped"], ["tachikoma-app-b1", "missing"]],
    );
    // `-L debug` names each module Deno loads on a `fetch_no_follow` line.
    const loaded = stderr.split("\n").filter((l) => l.includes("fetch_no_follow"))
      .flatMap((l) => [...l.matchAll(/file:\/\/\S+?\/(src\/\S+?\.ts)/g)].map((m) => m[1]));
    assert(loaded.includes("src/core/inventory.ts"), "the module list is read from -L debug");
    for (const heavy of ["open_deps.ts", "lifecycle.ts", "sandbox_service.ts", "src/git/"]) {
      assertEquals(loaded.filter((m) => m.includes(heavy)), [], `list loaded ${heavy}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
