/**
 * `tachikoma image list|build|rm`, `spawn --from` and `checkpoint fork` as a user runs them: the
 * real CLI in a subprocess over a file-backed memory world, with dry provisioning; config errors
 * about bases, usage errors and unknown names are one line with the right exit code.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { cliWorld } from "./helpers.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  name: "cli: image build/list/rm, spawn --from a base, checkpoint fork",
  ...opts,
  async fn() {
    await using w = await cliWorld();
    await Deno.mkdir(w.configDir, { recursive: true });
    await Deno.writeTextFile(
      `${w.configDir}/config.toml`,
      '[bases.dev]\nimage = "img"\nsetup = "echo hi"\ndescription = "tools"\n' +
        '[bases.py]\nfrom = "dev"\n',
    );
    let list = await w.run(["image", "list", "--json"]);
    assertEquals(list.code, 0, list.stderr);
    assertEquals(
      JSON.parse(list.stdout).bases.map((b: { name: string; status: string }) => [
        b.name,
        b.status,
      ]),
      [["dev", "missing"], ["py", "missing"]],
    );
    const built = await w.run(["image", "build", "py", "--json"]);
    assertEquals(built.code, 0, built.stderr);
    assertEquals(
      JSON.parse(built.stdout).bases.map((b: { action: string }) => b.action),
      ["built", "built"],
    );
    list = await w.run(["image", "list"]);
    assertEquals(list.code, 0, list.stderr);
    assertStringIncludes(list.stdout, "BASE");
    assert(/^dev\s+img\s+ready\s/m.test(list.stdout), list.stdout);
    assert(/^py\s+dev\s+ready\s/m.test(list.stdout), list.stdout);

    const spawned = await w.run(["spawn", "feat", "--from", "py", "--no-attach", "--json"]);
    assertEquals(spawned.code, 0, spawned.stderr);
    const doc = JSON.parse(spawned.stdout);
    assertEquals(doc.from, { kind: "base", name: "py", checkpoint: null });
    assert(!doc.provisioning.steps.includes("bootstrap"), doc.provisioning.steps);

    const cp = await w.run(["checkpoint", "create", doc.name, "--label", "c1"]);
    assertEquals(cp.code, 0, cp.stderr);
    const fork = await w.run(["checkpoint", "fork", `${doc.name}:c1`, "other", "--json"], {
      cwd: w.home,
    });
    assertEquals(fork.code, 0, fork.stderr);
    const forked = JSON.parse(fork.stdout);
    assertEquals(forked.from, { kind: "checkpoint", name: doc.name, checkpoint: "c1" });
    assertEquals(forked.branch, "other");
    assertEquals(forked.provisioning.steps, ["ssh_key", "code", "hostname", "profile"]);

    const rm = await w.run(["image", "rm", "py", "--json"]);
    assertEquals(rm.code, 0, rm.stderr);
    assertEquals(JSON.parse(rm.stdout).removed.length, 1);
  },
});

Deno.test({
  name: "cli: bad bases config, unknown base, bad fork source: one line, the right exit code",
  ...opts,
  async fn() {
    await using w = await cliWorld();
    await Deno.mkdir(w.configDir, { recursive: true });
    await Deno.writeTextFile(`${w.configDir}/config.toml`, '[bases.a]\nfrom = "b"\n');
    const cfg = await w.run(["image", "list"]);
    assertEquals(cfg.code, 2);
    assertStringIncludes(cfg.stderr, 'bases.a: from = "b": no such base');
    await Deno.writeTextFile(`${w.configDir}/config.toml`, '[bases.a]\nimage = "x"\n');
    const unknown = await w.run(["image", "build", "nope"]);
    assertEquals(unknown.code, 3);
    assertStringIncludes(unknown.stderr, 'no base named "nope"');
    const bad = await w.run(["checkpoint", "fork", "no-colon", "b"]);
    assertEquals(bad.code, 2);
    assertStringIncludes(bad.stderr, "expected <sandbox>:<label>");
    const ghost = await w.run(["spawn", "b", "--from", "ghost", "--no-attach"]);
    assertEquals(ghost.code, 3);
    assertStringIncludes(ghost.stderr, "no base or sandbox");
  },
});
