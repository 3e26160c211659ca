import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { cliWorld } from "./helpers.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  name: "cli: spawn --json creates then reconnects; list/status/cd; streams stay separate",
  ...opts,
  async fn() {
    await using w = await cliWorld();
    const first = await w.run(["spawn", "feat/x", "--no-attach", "--json"]);
    assertEquals(first.code, 0, first.stderr);
    const doc = JSON.parse(first.stdout);
    assertEquals(doc.action, "created");
    assertEquals(doc.name, "tachikoma-myapp-feat-x");
    assertEquals(doc.branch, "feat/x");
    assertEquals(doc.worktree.branch_created, true);
    assertEquals(doc.worktree_path, `${w.dir}/myapp-feat-x`);
    assertEquals(doc.ssh, { host: "127.0.0.1", port: w.ssh.port });
    assertEquals(doc.provisioning.ran, true);
    assertEquals(doc.attached, false);
    assert(!first.stderr.includes("{"), `no JSON on stderr: ${first.stderr}`);

    const again = await w.run(["spawn", "feat/x", "--no-attach"]);
    assertEquals(again.code, 0, again.stderr);
    assertEquals(
      again.stdout,
      `Reconnected to tachikoma-myapp-feat-x, ready at 127.0.0.1\nworktree: ${w.dir}/myapp-feat-x\n`,
    );
    // The bare form, and flags after the branch reach spawn (the root declares them too).
    const bare = await w.run(["feat/x", "--no-attach", "--json"]);
    assertEquals(JSON.parse(bare.stdout).action, "reconnected");
    const re = await w.run(["spawn", "feat/x", "--no-attach", "--reprovision"]);
    assertEquals(re.code, 0, re.stderr);
    assertStringIncludes(re.stderr, "nothing to reprovision");
    // -v: one line per step with its duration, on stderr.
    const verbose = await w.run(["spawn", "feat/x", "--no-attach", "-v"]);
    assertMatch(verbose.stderr, /✓ resolving branch \(feat\/x\) — \d+ ms/);
    assertMatch(verbose.stderr, /✓ connecting to tachikoma-myapp-feat-x — \d+ ms/);
    assert(!verbose.stdout.includes("✓"));

    const list = await w.run(["list", "--json"]);
    assertEquals(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout).sandboxes;
    assertEquals(listed.length, 1);
    assertEquals(listed[0].status, "running");
    assertEquals(listed[0].provisioned.complete, true);
    const human = await w.run(["ls"]);
    assertMatch(human.stdout, /^NAME\s+REPO\s+BRANCH\s+STATUS\s+IP\s+LAST USED\n/);
    assertStringIncludes(human.stdout, "tachikoma-myapp-feat-x  myapp  feat/x  running  127.0.0.1");

    const status = await w.run(["status", "feat/x", "--json"]);
    assertEquals(JSON.parse(status.stdout).worktree_path, `${w.dir}/myapp-feat-x`);
    const statusText = await w.run(["status", "feat/x"]);
    assertStringIncludes(statusText.stdout, "Status:      running\n");
    const cd = await w.run(["cd", "tachikoma-myapp-f"]);
    assertEquals(cd.stdout, `${w.dir}/myapp-feat-x\n`);
    // From inside the worktree, no name is needed.
    const here = await w.run(["cd"], { cwd: `${w.dir}/myapp-feat-x` });
    assertEquals(here.stdout, `${w.dir}/myapp-feat-x\n`);
  },
});

Deno.test({
  name: "cli: exit codes 0/1/2/3 and JSON errors on stderr only",
  ...opts,
  async fn() {
    await using w = await cliWorld();
    const missing = await w.run(["status", "nope", "--json"]);
    assertEquals(missing.code, 3);
    assertEquals(missing.stdout, "");
    assertEquals(JSON.parse(missing.stderr).error.code, "not_found");

    const usage = await w.run(["prune", "--days", "soon"]);
    assertEquals(usage.code, 2);
    assertStringIncludes(usage.stderr, "--days must be a whole number");

    // The main checkout's branch: refused (exit 1) with a way out.
    const main = await w.run(["spawn", "--no-attach"]);
    assertEquals(main.code, 1);
    assertStringIncludes(main.stderr, "checked out in the main checkout");
    assertStringIncludes(main.stderr, "hint:");

    const outside = await w.run(["spawn", "x", "--no-attach"], { cwd: w.home });
    assertEquals(outside.code, 2);
    assertStringIncludes(outside.stderr, "not inside a git work tree");

    const bad = await w.run(["spawn", "a..b", "--no-attach"]);
    assertEquals(bad.code, 2);
    assertStringIncludes(bad.stderr, 'invalid branch name "a..b"');
  },
});

Deno.test({
  name: "cli: a boot that times out exits 1, stops the sandbox, records failed; list shows it",
  ...opts,
  async fn() {
    await using w = await cliWorld({ defaults: { never_address: true } });
    const r = await w.run(["spawn", "slow", "--no-attach", "--json"], {
      env: { TACHIKOMA_BOOT_TIMEOUT_SECS: "1" },
    });
    assertEquals(r.code, 1);
    assertEquals(r.stdout, "");
    const error = JSON.parse(r.stderr.trim().split("\n").at(-1)!).error;
    assertEquals(error.code, "timeout");
    assertStringIncludes(error.hint, "tachikoma destroy tachikoma-myapp-slow");
    const world = await w.world() as { sandboxes: Record<string, { state: string }> };
    assertEquals(world.sandboxes["tachikoma-myapp-slow"].state, "stopped");
    const list = JSON.parse((await w.run(["list", "--json"])).stdout).sandboxes;
    assertEquals(list[0].status, "failed");
    assertStringIncludes(list[0].failure, "no IP address within 1 s");
    const destroyed = await w.run(["destroy", "slow", "--force", "--json"]);
    assertEquals(destroyed.code, 0, destroyed.stderr);
    assertEquals((await w.state()).vms, []);
  },
});

Deno.test({
  name: "cli: exec keeps argv, streams, forwards stdin, returns the remote exit code",
  ...opts,
  async fn() {
    await using w = await cliWorld();
    assertEquals((await w.run(["spawn", "e", "--no-attach"])).code, 0);
    // Provisioned with the default exec ("ok"); from now on commands run on the host.
    await w.editWorld((world) => void (world.exec = { mode: "host" }));
    const r = await w.run([
      "exec",
      "--name",
      "e",
      "--",
      "sh",
      "-c",
      'printf "%s|" "$@"; echo; echo to-stderr >&2; cat; exit 7',
      "sh",
      "a b",
      "$(touch pwned)",
      "`id`",
      "'q'",
    ], { stdin: "from stdin\n" });
    assertEquals(r.code, 7);
    assertEquals(r.stdout, "a b|$(touch pwned)|`id`|'q'|\nfrom stdin\n");
    assertStringIncludes(r.stderr, "to-stderr");
    const wt = `${w.dir}/myapp-e`;
    assertEquals((await w.run(["exec", "-n", "e", "--", "pwd"])).stdout, `${wt}\n`);
    const json = await w.run(["exec", "-n", "e", "--json", "--", "sh", "-c", "echo hi; exit 3"]);
    assertEquals(json.code, 3);
    assertEquals(JSON.parse(json.stdout), {
      name: "tachikoma-myapp-e",
      argv: ["sh", "-c", "echo hi; exit 3"],
      exit_code: 3,
      stdout: "hi\n",
      stderr: "",
    });
    // enter --no-persist: a plain shell (host process in this world), its exit status is ours.
    const enter = await w.run(["enter", "e", "--no-persist"], {
      stdin: "echo in-shell\nexit 4\n",
    });
    assertEquals(enter.code, 4);
    assertStringIncludes(enter.stdout, "in-shell");
    // enter: the persistent session, through the login environment (~/.profile puts a
    // recording `tmux` first on PATH here), `main` by default or the one named.
    await Deno.mkdir(`${w.home}/fakebin`);
    await Deno.writeTextFile(
      `${w.home}/fakebin/tmux`,
      '#!/bin/sh\nprintf tmux:; printf "%s|" "$@"; echo; exit 5\n',
      { mode: 0o755 },
    );
    await Deno.writeTextFile(`${w.home}/.profile`, 'PATH="$HOME/fakebin:$PATH"; export PATH\n');
    const main = await w.run(["enter", "e"], { stdin: "" });
    assertEquals(main.code, 5);
    assertStringIncludes(main.stdout, "tmux:new-session|-A|-s|main|");
    const dev = await w.run(["enter", "e", "-s", "dev-2", "--json"], { stdin: "" });
    assertEquals(JSON.parse(dev.stdout), {
      name: "tachikoma-myapp-e",
      session: "dev-2",
      exit_code: 5,
    });
    assertStringIncludes(dev.stderr, "tmux:new-session|-A|-s|dev-2|");
    for (const bad of ["a b", "$(touch pwned)", "x'y", "a.b"]) {
      const r = await w.run(["enter", "e", "--session", bad], { stdin: "" });
      assertEquals(r.code, 2, r.stderr);
      assertStringIncludes(r.stderr, "invalid session name");
    }
    const both = await w.run(["enter", "e", "-s", "x", "--no-persist"], { stdin: "" });
    assertEquals(both.code, 2);
  },
});

Deno.test({
  name: "cli: exec streams a pipe that stays open; the command need not read it to the end",
  ...opts,
  async fn() {
    await using w = await cliWorld();
    assertEquals((await w.run(["spawn", "p", "--no-attach"])).code, 0);
    await w.editWorld((world) => void (world.exec = { mode: "host" }));
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    // Safety net only (a CLI that waits for EOF would never answer): generous, never hit.
    const deadline = AbortSignal.timeout(60_000);

    // 1. The command sees the first line while the pipe is still open, answers, and the test
    //    only then sends the second one and closes the pipe.
    const child = w.spawn([
      "exec",
      "-n",
      "p",
      "--",
      "sh",
      "-c",
      'read a; echo "got:$a"; read b; echo "then:$b"',
    ]);
    const stdin = child.stdin.getWriter();
    const stdout = child.stdout.getReader();
    await stdin.write(enc.encode("first\n"));
    let seen = "";
    while (!seen.includes("got:first\n")) {
      const { value, done } = await Promise.race([
        stdout.read(),
        new Promise<never>((_, reject) =>
          deadline.addEventListener("abort", () => reject(new Error(`saw only ${seen}`)))
        ),
      ]);
      if (done) break;
      seen += dec.decode(value);
    }
    assertEquals(seen, "got:first\n", "the command ran before stdin ended");
    await stdin.write(enc.encode("second\n"));
    await stdin.close();
    for (;;) {
      const { value, done } = await stdout.read();
      if (done) break;
      seen += dec.decode(value);
    }
    const status = await child.status;
    await child.stderr.cancel();
    assertEquals([status.code, seen], [0, "got:first\nthen:second\n"]);

    // 2. The command ends after 4 bytes; the pipe stays open and unread: the CLI still ends.
    const early = w.spawn(["exec", "-n", "p", "--", "head", "-c", "4"]);
    const feed = early.stdin.getWriter();
    await feed.write(enc.encode("abcdefgh"));
    const [out, end] = await Promise.all([
      new Response(early.stdout).text(),
      early.status,
      new Response(early.stderr).text(),
    ]);
    assertEquals([end.code, out], [0, "abcd"]);
    await feed.close().catch(() => {});
  },
});

Deno.test({
  name: "cli: halt, suspend without backend support, destroy confirmation and --worktree, prune",
  ...opts,
  async fn() {
    await using w = await cliWorld({ capabilities: { suspend: false } });
    assertEquals((await w.run(["spawn", "h", "--no-attach"])).code, 0);
    const suspend = await w.run(["suspend", "h"]);
    assertEquals(suspend.code, 0);
    assertEquals(
      suspend.stdout,
      "Stopped tachikoma-myapp-h (the memory backend cannot suspend, so it was stopped)\n",
    );
    assertEquals((await w.run(["spawn", "h", "--no-attach", "--json"])).code, 0);
    const halt = await w.run(["stop", "h", "--json"]);
    assertEquals(JSON.parse(halt.stdout), {
      name: "tachikoma-myapp-h",
      status: "stopped",
      previous: "running",
    });
    const refused = await w.run(["destroy", "h"]);
    assertEquals(refused.code, 2);
    assertStringIncludes(refused.stderr, "pass --force");
    const destroyed = await w.run(["delete", "h", "--force", "--worktree", "--json"]);
    assertEquals(destroyed.code, 0, destroyed.stderr);
    assertEquals(JSON.parse(destroyed.stdout).destroyed[0].worktree_removed, true);
    assertEquals((await w.state()).vms, []);
    const prune = await w.run(["prune", "--dry-run", "--json"]);
    assertEquals(JSON.parse(prune.stdout), { dry_run: true, days: 30, pruned: [], warnings: [] });
  },
});

Deno.test({
  name: "cli: list with an unreachable backend prints state, status unknown, a warning, exit 0",
  ...opts,
  async fn() {
    await using w = await cliWorld();
    assertEquals((await w.run(["spawn", "u", "--no-attach"])).code, 0);
    await w.editWorld((world) => {
      world.failures = { list: { kind: "unreachable", message: "engine down" } };
    });
    const r = await w.run(["list", "--json"]);
    assertEquals(r.code, 0);
    assertEquals(JSON.parse(r.stdout).sandboxes[0].status, "unknown");
    assertStringIncludes(r.stderr, "warning: cannot reach the memory backend (engine down)");
  },
});

Deno.test({
  name: "cli: two spawns of one branch at once (two processes) create it once",
  ...opts,
  async fn() {
    await using w = await cliWorld({ delays: { create: 400 } });
    const [a, b] = await Promise.all([
      w.run(["spawn", "race", "--no-attach", "--json"]),
      w.run(["spawn", "race", "--no-attach", "--json"]),
    ]);
    assertEquals([a.code, b.code], [0, 0], a.stderr + b.stderr);
    const actions = [JSON.parse(a.stdout).action, JSON.parse(b.stdout).action].sort();
    assertEquals(actions, ["created", "reconnected"]);
    const calls = (await w.world()).calls ?? [];
    assertEquals(calls.filter((c) => c.method === "create").length, 1);
    assertEquals((await w.state()).vms.length, 1);
  },
});
