/**
 * End to end on the Incus lab (issue 4 §3): in a temp git repo, `tachikoma spawn --backend
 * incus --no-attach` brings up a container for the branch with the worktree shared, `tachikoma
 * exec -- git status` runs inside it, `halt`, `spawn` again (restart), `destroy --force`, and
 * `list --json` is right at each step. The CLI runs as a subprocess of main.ts.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { NotFoundError } from "../../src/lib/errors.ts";
import { labIgnored } from "./lab.ts";
import { openLabWorld } from "./lab_world.ts";
import { ok } from "../testing/run.ts";

interface ListDoc {
  sandboxes: {
    name: string;
    status: string;
    recorded_status: string;
    ip: string | null;
    backend: string;
  }[];
}

Deno.test({
  name: "incus e2e: spawn, exec, halt, spawn again, destroy; list right at each step",
  ignore: labIgnored(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using world = await openLabWorld({
      prefix: "e2e",
      env: { TACHIKOMA_TMUX_INSTALL: "skip" },
    });
    const { id, client, backend, cli } = world;
    const list = async (): Promise<ListDoc> =>
      JSON.parse(ok(await cli(["list", "--json"]), "list").stdout);
    const branch = `e2e/${id}`;

    // spawn: a new container for the branch, the worktree shared
    const spawned = await world.spawn([branch, "--backend", "incus"]);
    const name = spawned.name;
    assertEquals(spawned.action, "created");
    assertEquals(spawned.status, "running");
    assertEquals(spawned.branch, branch);
    const gatewayPrefix = world.lab.gateway.split(".").slice(0, 3).join(".") + ".";
    assert(spawned.ip.startsWith(gatewayPrefix), `ip ${spawned.ip} on the lab bridge`);
    const worktree: string = spawned.worktree_path;
    assertEquals((await backend.get(name)).state, "running");
    const devices = (await client.get<{ devices: Record<string, Record<string, string>> }>(
      `/1.0/instances/${name}`,
    )).devices;
    assertEquals(devices["tk-share-code"]?.source, worktree);

    let doc = await list();
    assertEquals(
      doc.sandboxes.map((s) => [s.name, s.status, s.recorded_status, s.ip, s.backend]),
      [
        [name, "running", "running", spawned.ip, "incus"],
      ],
    );

    // exec: git status inside, on the shared worktree
    const status = ok(await cli(["exec", "--", "git", "status"], worktree), "exec git status");
    assertStringIncludes(status.stdout, `On branch ${branch}`);
    const where = ok(
      await cli(["exec", "--", "sh", "-c", "id -u; pwd; cat README.md"], worktree),
      "exec",
    );
    assertEquals(where.stdout, "1000\n/mnt/tachikoma/code\nhello\n");

    // halt
    const halted = JSON.parse(ok(await cli(["halt", "--json"], worktree), "halt").stdout);
    assertEquals(halted.status, "stopped");
    assertEquals((await backend.get(name)).state, "stopped");
    doc = await list();
    assertEquals(doc.sandboxes.map((s) => [s.name, s.status, s.recorded_status, s.ip]), [
      [name, "stopped", "stopped", null],
    ]);

    // spawn again: restarts the same container
    const again = JSON.parse(
      ok(await cli(["spawn", "--no-attach", "--json"], worktree), "spawn again").stdout,
    );
    assertEquals(again.name, name);
    assertEquals(again.action, "started");
    assertMatch(again.ip, /^\d+\.\d+\.\d+\.\d+$/);
    doc = await list();
    assertEquals(doc.sandboxes.map((s) => [s.name, s.status, s.recorded_status, s.ip]), [
      [name, "running", "running", again.ip],
    ]);
    const status2 = ok(
      await cli(["exec", "--", "git", "status", "--short"], worktree),
      "exec after restart",
    );
    assertEquals(status2.stdout, "");

    // destroy
    const destroyed = JSON.parse(
      ok(await cli(["destroy", name, "--force", "--json"]), "destroy").stdout,
    );
    assertEquals(destroyed.destroyed.map((d: { name: string }) => d.name), [name]);
    let gone = false;
    try {
      await backend.get(name);
    } catch (error) {
      gone = error instanceof NotFoundError;
    }
    assert(gone, `${name} is gone from Incus`);
    assertEquals((await list()).sandboxes, []);
  },
});
