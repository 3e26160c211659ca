/**
 * Bases and forks over the memory backend: `image build` (ancestors first, base steps and the
 * setup script as root, stop, checkpoint), ready/stale/missing, a failed build leaving nothing,
 * the shared lock, `image rm`; `spawn --from` a base, a stopped sandbox or a checkpoint (clone,
 * then only the steps the source lacks), and the refusals (running sandbox, unknown source,
 * base not built) that change nothing.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { buildBases, removeBase } from "../../../src/core/base_build.ts";
import { BASE_CHECKPOINT, baseViews } from "../../../src/core/bases.ts";
import { parseDuBytes, recordedBaseSize } from "../../../src/core/base_size.ts";
import {
  ConflictError,
  NotFoundError,
  RuntimeError,
  UnsupportedError,
  UsageError,
} from "../../../src/lib/errors.ts";
import type { ExecRequest } from "../../../src/backends/backend.ts";
import { FakeProvisioner, gitIn, type Harness, harness } from "./helpers.ts";

const STEPS = [
  "bootstrap",
  "ssh_key",
  "code",
  "hostname",
  "profile",
  "claude",
  "gh_auth",
  "scripts",
];
const enc = new TextEncoder();
const dec = new TextDecoder();

interface World {
  h: Harness;
  provisioner: FakeProvisioner;
  execs: { name: string; request: ExecRequest }[];
}

async function world(
  options: { failSetup?: boolean; du?: string; backend?: Record<string, unknown> } = {},
): Promise<World> {
  const execs: World["execs"] = [];
  const h = await harness({
    config: {
      bases: {
        dev: { image: "img:dev", setup: "apt-get install -y jq", description: "tools" },
        py: { from: "dev", setup: "pip install x" },
      },
    },
    backend: {
      ...options.backend,
      exec: (name, request) => {
        execs.push({ name, request });
        const fail = options.failSetup && request.argv.join(" ").includes("base-setup");
        if (fail) request.onStderr?.(enc.encode("E: no jq here\n"));
        const du = request.argv[0] === "du" && options.du !== undefined;
        return Promise.resolve({
          code: fail ? 100 : 0,
          stdout: du ? enc.encode(options.du) : new Uint8Array(),
          stderr: fail ? enc.encode("E: no jq here\n") : new Uint8Array(),
        });
      },
    },
  });
  // The service holds its own copy of the deps: give the harness's provisioner the real steps.
  const provisioner = h.provisioner;
  Object.assign(provisioner, { steps: STEPS, inputs: new FakeProvisioner(STEPS).inputs });
  return { h, provisioner, execs };
}

async function sandboxes(h: Harness): Promise<string[]> {
  return (await h.backend.list()).map((s) => s.name).sort();
}

Deno.test("image build: ancestors first; base steps + setup as root; stopped, checkpointed; ready", async () => {
  const { h, provisioner, execs } = await world();
  await using _ = h;
  const before = await baseViews(h.deps.config, h.backend);
  assertEquals(before.map((b) => [b.name, b.status]), [["dev", "missing"], ["py", "missing"]]);

  const result = await buildBases(h.deps, { name: "py" });
  assertEquals(result.bases.map((b) => [b.name, b.action, b.status]), [
    ["dev", "built", "ready"],
    ["py", "built", "ready"],
  ]);
  // Only the stock-image base provisions; the child has it from its parent.
  assertEquals(provisioner.runs, [["bootstrap", "profile", "claude"]]);
  const setups = execs.filter((e) => e.request.argv.join(" ").includes("base-setup"));
  assertEquals(setups.map((e) => e.request.user), ["root", "root"]);
  const [devBox, pyBox] = result.bases.map((b) => b.sandbox!);
  assert(/^tkb-dev-[0-9a-f]{10}$/.test(devBox), devBox);
  for (const box of [devBox, pyBox]) {
    assertEquals((await h.backend.get(box)).state, "stopped");
    assertEquals((await h.backend.listCheckpoints(box)).map((c) => c.name), [BASE_CHECKPOINT]);
  }
  const script = await h.backend.pullFile(pyBox, "/root/.tachikoma-base-setup.sh");
  assertEquals(dec.decode(script), "pip install x");
  const clones = (await h.backend.calls("clone")).map((c) => c.name);
  assertEquals(clones, [pyBox]);

  // Built already: nothing to do; --force builds the target again (not its parent).
  const again = await buildBases(h.deps, {});
  assertEquals(again.bases.map((b) => [b.name, b.action]), [["dev", "ready"], ["py", "ready"]]);
  const forced = await buildBases(h.deps, { name: "py", force: true });
  assertEquals(forced.bases.map((b) => [b.name, b.action]), [["dev", "ready"], ["py", "built"]]);
  assertEquals(await sandboxes(h), [devBox, pyBox].sort());
});

Deno.test("image list: stale when the recipe or the parent changes; a rebuild replaces the old build", async () => {
  const { h } = await world();
  await using _ = h;
  await buildBases(h.deps, {});
  const old = await sandboxes(h);
  h.deps.config.bases.py = { from: "dev", setup: "pip install y" };
  let views = await baseViews(h.deps.config, h.backend);
  assertEquals(views.map((v) => [v.name, v.status]), [["dev", "ready"], ["py", "stale"]]);
  h.deps.config.bases.dev = { image: "img:dev", setup: "apt-get install -y jq yq" };
  views = await baseViews(h.deps.config, h.backend);
  assertEquals(views.map((v) => [v.name, v.status]), [["dev", "stale"], ["py", "stale"]]);
  assert(views.every((v) => v.built_at !== null && v.sandbox !== null));
  await buildBases(h.deps, { name: "py" });
  views = await baseViews(h.deps.config, h.backend);
  assertEquals(views.map((v) => [v.name, v.status]), [["dev", "ready"], ["py", "ready"]]);
  const now = await sandboxes(h);
  assertEquals(now.length, 2);
  assert(now.every((n) => !old.includes(n)), `old builds deleted: ${now}`);
});

Deno.test("image build: a failing setup leaves nothing and logs the output; the error is one line", async () => {
  const { h } = await world({ failSetup: true });
  await using _ = h;
  const error = await assertRejects(() => buildBases(h.deps, { name: "dev" }), RuntimeError);
  assertEquals(error.code, "base_setup_failed");
  assertEquals(error.message, "base dev: the setup script exited 100: E: no jq here");
  assertStringIncludes(error.hint ?? "", "base-dev.log");
  assertEquals(await sandboxes(h), []);
  const log = await Deno.readTextFile(`${h.stateDir}/logs/base-dev.log`);
  assertEquals(log, "E: no jq here\n");
  assertEquals((await Deno.stat(`${h.stateDir}/logs/base-dev.log`)).mode! & 0o777, 0o600);
  assertEquals(
    (await baseViews(h.deps.config, h.backend)).map((v) => v.status),
    ["missing", "missing"],
  );
});

Deno.test("image build: concurrent builds are serialised by the lock (one build)", async () => {
  const { h } = await world();
  await using _ = h;
  const [a, b] = await Promise.all([
    buildBases(h.deps, { name: "dev" }),
    buildBases(h.deps, { name: "dev" }),
  ]);
  assertEquals([a.bases[0].action, b.bases[0].action].sort(), ["built", "ready"]);
  assertEquals((await h.backend.calls("create")).length, 1);
});

Deno.test("image build/rm: unknown base; rm deletes every build; no bases = the stock image", async () => {
  const { h } = await world();
  await using _ = h;
  await assertRejects(() => buildBases(h.deps, { name: "nope" }), NotFoundError, "no base named");
  await buildBases(h.deps, { name: "dev" });
  const removed = await removeBase(h.deps, "dev");
  assertEquals(removed.removed.length, 1);
  assertEquals(await sandboxes(h), []);
  await assertRejects(() => removeBase(h.deps, "ghost"), NotFoundError);
  await buildBases(h.deps, { name: "dev" });
  for (const hostile of ["dev!", "d.*", "../dev", "dev\n", "$(id)", "DEV", ""]) {
    await assertRejects(() => removeBase(h.deps, hostile), UsageError, "invalid base name");
    await assertRejects(() => buildBases(h.deps, { name: hostile }), UsageError);
  }
  assertEquals((await sandboxes(h)).length, 1, "no hostile name removed the dev build");
  await removeBase(h.deps, "dev");
  h.deps.config.bases = {};
  const views = await baseViews(h.deps.config, h.backend);
  assertEquals(views.map((v) => [v.name, v.image, v.status]), [
    ["default", h.deps.config.base_image ?? "images:debian/12", "missing"],
  ]);
});

Deno.test("image build: an engine without clones or checkpoints is refused", async () => {
  const h = await harness({ backend: { capabilities: { checkpoints: false } } });
  await using _ = h;
  await assertRejects(() => buildBases(h.deps, {}), UnsupportedError, "cannot hold bases");
});

Deno.test("spawn --from base: clone, then every step but the base's", async () => {
  const { h, provisioner } = await world();
  await using _ = h;
  const built = await buildBases(h.deps, { name: "dev" });
  provisioner.runs.length = 0;
  const result = await h.service.spawn({ branch: "feat", from: "dev" });
  assertEquals(result.action, "created");
  assertEquals(result.from?.kind, "base");
  assertEquals((await h.backend.calls("create")).length, 1, "only the base was created");
  const clone = (await h.backend.calls("clone")).find((c) => c.name === result.name)!;
  assertEquals(clone.detail, { source: built.bases[0].sandbox, checkpoint: BASE_CHECKPOINT });
  assertEquals(provisioner.runs, [[
    "ssh_key",
    "code",
    "hostname",
    "profile",
    "gh_auth",
    "scripts",
  ]]);
  const record = (await h.store.get(result.name))!;
  assertEquals(record.provisioned?.complete, true);
  assertEquals(record.provisioned?.last_step, "scripts");
  // Its files are the base's.
  const file = await h.backend.pullFile(result.name, "/root/.tachikoma-base-setup.sh");
  assertEquals(dec.decode(file), "apt-get install -y jq");
});

Deno.test("spawn (API exec): a new sandbox's policy is stored before its first start; a fork's steps wait for the address", async () => {
  const { h, provisioner } = await world({
    backend: { capabilities: { execOverSsh: false }, addressDelayMs: 2_000 },
  });
  await using _ = h;
  h.deps.config.egress = "agent";
  await buildBases(h.deps, { name: "dev" });
  const seen: { networkFirst?: boolean; network: boolean }[] = [];
  const run = provisioner.run.bind(provisioner);
  provisioner.run = async (ctx, options) => {
    seen.push({ networkFirst: ctx.networkFirst, network: ctx.network !== undefined });
    return await run(ctx, options);
  };
  /** The order of `name`'s start and egress calls. */
  const order = async (name: string) =>
    (await h.backend.calls()).filter((c) =>
      c.name === name && (c.method === "start" || c.method === "setEgress")
    ).map((c) => c.method);
  const fork = await h.service.spawn({ branch: "feat", from: "dev" });
  assertEquals(seen, [{ networkFirst: true, network: true }]);
  // Stored before the start (which puts it in force on the new NICs), and only then.
  assertEquals(await order(fork.name), ["setEgress", "start"]);
  assertEquals((await h.backend.peek(fork.name))?.egress?.mode, "agent");
  const fresh = await h.service.spawn({ branch: "other" });
  assertEquals(seen[1], { networkFirst: false, network: true });
  // So does a fresh one (its provisioning goes through the proxy).
  assertEquals(await order(fresh.name), ["setEgress", "start"]);
});

Deno.test("spawn --from base (exec over SSH, like tart): the policy is stored before the first start", async () => {
  const { h } = await world({ backend: { capabilities: { execOverSsh: true } } });
  await using _ = h;
  h.deps.config.egress = "agent";
  await buildBases(h.deps, { name: "dev" });
  const fork = await h.service.spawn({ branch: "feat", from: "dev" });
  const order = (await h.backend.calls()).filter((c) =>
    c.name === fork.name && (c.method === "start" || c.method === "setEgress")
  ).map((c) => c.method);
  assertEquals(order, ["setEgress", "start"]);
});

Deno.test("spawn --from: an unknown source, a running sandbox, an unknown label: refused, nothing made", async () => {
  const { h } = await world();
  await using _ = h;
  await assertRejects(
    () => h.service.spawn({ branch: "b2", from: "ghost" }),
    NotFoundError,
    "no base or sandbox",
  );
  const src = await h.service.spawn({ branch: "src" });
  const error = await assertRejects(
    () => h.service.spawn({ branch: "b3", from: src.name }),
    ConflictError,
    "is running",
  );
  assertStringIncludes(error.hint ?? "", "checkpoint create");
  await assertRejects(
    () => h.service.spawn({ branch: "b4", from: `${src.name}:nolabel` }),
    NotFoundError,
    "no checkpoint",
  );
  assertEquals(await sandboxes(h), [src.name]);
  assertEquals((await h.store.read()).vms.map((r) => r.name), [src.name]);
  const branches = await gitIn(h.repo.root, "branch", "--format=%(refname:short)");
  assertEquals(branches.split("\n").sort(), ["main", "src"], "no branch made for a refused fork");
});

Deno.test("spawn --from a base not built yet builds it (ancestors first); a failed build makes nothing", async () => {
  const { h, provisioner } = await world();
  await using _ = h;
  const result = await h.service.spawn({ branch: "feat", from: "py" });
  assertEquals(result.from?.kind, "base");
  assert(h.reporter.events.some((n) => n.includes("base py is not built yet")), "noted");
  assertEquals(
    (await baseViews(h.deps.config, h.backend)).map((v) => v.status),
    ["ready", "ready"],
  );
  assertEquals(provisioner.runs.map((r) => r[0]), ["bootstrap", "ssh_key"]);

  const failing = await world({ failSetup: true });
  await using __ = failing.h;
  await assertRejects(
    () => failing.h.service.spawn({ branch: "feat", from: "dev" }),
    RuntimeError,
    "setup script exited 100",
  );
  assertEquals(await sandboxes(failing.h), []);
  assertEquals((await failing.h.store.read()).vms, []);
});

Deno.test("spawn --from a stopped sandbox, and checkpoint fork: only the per-branch steps; the checkpoint's files", async () => {
  const { h, provisioner } = await world();
  await using _ = h;
  const src = await h.service.spawn({ branch: "src" });
  await h.backend.pushFile(src.name, {
    path: "/home/admin/state.txt",
    data: enc.encode("at checkpoint"),
  });
  await h.backend.createCheckpoint(src.name, "cp1");
  await h.backend.pushFile(src.name, { path: "/home/admin/state.txt", data: enc.encode("after") });
  provisioner.runs.length = 0;

  const fork = await h.service.spawn({ branch: "forked", from: `src:cp1` });
  assertEquals(fork.from, {
    kind: "checkpoint",
    name: src.name,
    checkpoint: "cp1",
    clone: { sandbox: src.name, checkpoint: "cp1" },
    skip: fork.from!.skip,
  });
  assertEquals(provisioner.runs, [["ssh_key", "code", "hostname", "profile"]]);
  assertEquals(
    dec.decode(await h.backend.pullFile(fork.name, "/home/admin/state.txt")),
    "at checkpoint",
  );
  assertEquals(fork.record.branch, "forked");
  assert(fork.worktree.path !== src.worktree.path);
  assertEquals(await gitIn(fork.worktree.path, "rev-parse", "--abbrev-ref", "HEAD"), "forked");

  await h.service.halt(src.name);
  provisioner.runs.length = 0;
  const copy = await h.service.spawn({ branch: "copy", from: src.name });
  assertEquals(copy.from?.kind, "sandbox");
  assertEquals(provisioner.runs, [["ssh_key", "code", "hostname", "profile"]]);
  assertEquals(dec.decode(await h.backend.pullFile(copy.name, "/home/admin/state.txt")), "after");

  // The sandbox exists already: --from is not used, the sandbox is reused.
  const reused = await h.service.spawn({ branch: "copy", from: "dev" });
  assertEquals(reused.action, "reconnected");
  assertEquals(reused.from, null);
});

Deno.test("image build: the guest's stderr in the error has no control characters (hostile guest)", async () => {
  const h = await harness({
    config: { bases: { dev: { image: "img", setup: "x" } } },
    backend: {
      exec: (_name, request) => {
        const hostile = "ok\n\x1b]0;pwned\x07\x1b[2J\x1b[31mE: evil\rrewrite\x00\x9b\n";
        const stderr = enc.encode(hostile);
        request.onStderr?.(stderr);
        return Promise.resolve({ code: 3, stdout: new Uint8Array(), stderr });
      },
    },
  });
  await using _ = h;
  const error = await assertRejects(() => buildBases(h.deps, { name: "dev" }), RuntimeError);
  // deno-lint-ignore no-control-regex
  assert(!/[\x00-\x1f\x7f-\x9f]/.test(error.message), JSON.stringify(error.message));
  assertStringIncludes(error.message, "exited 3: rewrite");
  // The log keeps the raw bytes (a file, not a terminal).
  const log = await Deno.readFile(`${h.stateDir}/logs/base-dev.log`);
  assertEquals(dec.decode(log), "ok\n\x1b]0;pwned\x07\x1b[2J\x1b[31mE: evil\rrewrite\x00\x9b\n");
});

Deno.test("image list: a base's size is the engine's, else the one measured in the guest at build", async () => {
  const { h, execs } = await world({ du: "1234567890\t/\n" });
  await using _ = h;
  const built = await buildBases(h.deps, { name: "dev" });
  const du = execs.filter((e) => e.request.argv[0] === "du");
  assertEquals(du.map((e) => [e.request.argv, e.request.user]), [
    [["du", "-s", "-x", "-B1", "/"], "root"],
  ]);
  // An engine that reports no size for the checkpoint (Incus on btrfs): the measured one.
  const withoutSizes = async (name: string) =>
    (await h.backend.listCheckpoints(name)).map(({ sizeBytes: _, ...c }) => c);
  const sizeless = new Proxy(h.backend, {
    get: (target, key) => {
      if (key === "listCheckpoints") return withoutSizes;
      const value = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const measured = await baseViews(h.deps.config, sizeless, h.deps.stateDir);
  assertEquals(measured.find((v) => v.name === "dev")?.size_bytes, 1234567890);
  const file = `${h.deps.stateDir}/bases/${built.bases[0].sandbox}.json`;
  assertEquals((await Deno.stat(file)).mode! & 0o777, 0o600);
  // The engine's own figure wins when it has one.
  const engine = await baseViews(h.deps.config, h.backend, h.deps.stateDir);
  assert(engine.find((v) => v.name === "dev")?.size_bytes !== 1234567890);
  // rm forgets it.
  await removeBase(h.deps, "dev");
  await assertRejects(() => Deno.stat(file), Deno.errors.NotFound);
});

Deno.test("base size: only a plain byte count from the guest is believed", async () => {
  assertEquals(parseDuBytes("4096\t/\n"), 4096);
  for (
    const hostile of ["", "-1\t/", "1e9\t/", "99999999999999999999\t/", "12abc", "\n12\t/", "x 1"]
  ) {
    assertEquals(parseDuBytes(hostile), null, JSON.stringify(hostile));
  }
  const { h } = await world({ du: "$(reboot)\n" });
  await using _ = h;
  const built = await buildBases(h.deps, { name: "dev" });
  assertEquals(await recordedBaseSize(h.deps.stateDir, built.bases[0].sandbox!), null);
});
