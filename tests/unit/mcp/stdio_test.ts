/**
 * `tachikoma mcp` as a real process (`deno run main.ts mcp`), driven by the SDK's own `Client`
 * over `StdioClientTransport`, against a file-backed memory world whose exec runs on the host
 * (real `sh`, real coreutils, the code share mapped to a real directory). Every tool and error
 * path; plus a raw process whose every stdout line must be a JSON-RPC message, and protocol
 * version negotiation with old and unknown client versions.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import type { Progress, Tool } from "@modelcontextprotocol/sdk/types.js";
import { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";
import { eventually, MAIN_TS, mcpWorld, textOf, TOOL_NAMES } from "./helpers.ts";

type Doc = Record<string, unknown>;
type Result = { isError?: boolean; structuredContent?: Doc; content?: unknown };

const FEATURE = "tachikoma-myapp-feature-x";
const OTHER = "tachikoma-myapp-feature-y";

Deno.test("stdio: every tool and error path against the memory backend", async (t) => {
  await using w = await mcpWorld();
  const code = await Deno.makeTempDir({ prefix: "tk-mcp-code-" });
  await w.seed(FEATURE, { branch: "feature/x", codeDir: code });
  await w.seed(OTHER, { branch: "feature/y", codeDir: code });
  await using conn = await w.connect();
  const { client } = conn;
  const call = async (name: string, args: Doc = {}): Promise<Result> =>
    await client.callTool({ name, arguments: args }) as Result;
  const ok = async (name: string, args: Doc = {}): Promise<Doc> => {
    const result = await call(name, args);
    assert(!result.isError, `${name} failed: ${textOf(result)}\n${conn.stderr()}`);
    return result.structuredContent!;
  };
  const fails = async (name: string, args: Doc, ...needles: string[]): Promise<string> => {
    const result = await call(name, args);
    assertEquals(result.isError, true, `${name} should fail: ${textOf(result)}`);
    const text = textOf(result);
    for (const n of needles) assertStringIncludes(text, n);
    return text;
  };

  await t.step("tools/list: all tools (output schemas cached for validation)", async () => {
    const { tools } = await client.listTools() as { tools: Tool[] };
    assertEquals(tools.map((x) => x.name).sort(), [...TOOL_NAMES].sort());
    const exec = tools.find((x) => x.name === "exec_in_sandbox")!;
    assertEquals(exec.inputSchema.required, ["sandbox"]);
    assert(Object.keys(exec.inputSchema.properties ?? {}).includes("timeout_secs"));
  });

  await t.step("list_sandboxes and sandbox_status by name, branch and prefix", async () => {
    const list = await ok("list_sandboxes");
    const names = (list.sandboxes as Doc[]).map((s) => s.name).sort();
    assertEquals(names, [FEATURE, OTHER]);
    assertEquals((list.sandboxes as Doc[])[0].status, "running");
    for (const form of [FEATURE, "feature/x", "myapp-feature-x", "tachikoma-myapp-feature-x"]) {
      const status = await ok("sandbox_status", { sandbox: form });
      assertEquals((status.sandbox as Doc).name, FEATURE, form);
    }
  });

  await t.step("unknown and ambiguous sandboxes are tool errors with hints", async () => {
    await fails("sandbox_status", { sandbox: "nope" }, "no sandbox matches 'nope'", "hint:");
    await fails("exec_in_sandbox", { sandbox: "nope", command: ["true"] }, "no sandbox matches");
    await fails("read_file", { sandbox: "nope", path: "x" }, "no sandbox matches");
    await fails("sandbox_status", { sandbox: "feature" }, "matches 2 sandboxes", FEATURE, OTHER);
    await fails("halt_sandbox", { sandbox: "x", repo: "/no/such/dir" }, "repo: no such directory");
  });

  await t.step("bad arguments and unknown tools are tool errors, not protocol errors", async () => {
    await fails("sandbox_status", { sandbox: 42 }, "expected string");
    await fails("no_such_tool", {}, "not found");
    await fails("exec_in_sandbox", { sandbox: FEATURE }, "exactly one of `command`");
    await fails(
      "exec_in_sandbox",
      { sandbox: FEATURE, command: ["true"], shell: "true" },
      "exactly one of",
    );
    await fails(
      "exec_in_sandbox",
      { sandbox: FEATURE, command: ["true"], env: { "BAD-NAME": "1" } },
      "not a valid variable name",
    );
  });

  await t.step("exec: argv kept exactly, shell lines, cwd, env, stdin, exit codes", async () => {
    const hostile = ["it's", "$(touch pwned)", "`id`", "a\nb", "ünï 日本", "--", ""];
    let r = await ok("exec_in_sandbox", {
      sandbox: FEATURE,
      command: ["printf", "[%s]\\n", ...hostile],
    });
    assertEquals(r.stdout, hostile.map((a) => `[${a}]\n`).join(""));
    assertEquals([r.exit_code, r.timed_out, r.stdout_truncated], [0, false, false]);
    await assertRejects(() => Deno.stat(`${code}/pwned`), Deno.errors.NotFound);

    r = await ok("exec_in_sandbox", {
      sandbox: "feature/x",
      shell: 'echo "$GREETING" | tr a-z A-Z; echo oops >&2; exit 3',
      env: { GREETING: "hi 'there' $(x)" },
    });
    assertEquals([r.exit_code, r.stdout, r.stderr], [3, "HI 'THERE' $(X)\n", "oops\n"]);
    const raw = await call("exec_in_sandbox", { sandbox: FEATURE, shell: "exit 3" });
    assertEquals(raw.isError, undefined, "a non-zero exit is a result, not a tool error");
    assertStringIncludes(textOf(raw), "exit code: 3");

    await Deno.mkdir(`${code}/sub dir`, { recursive: true });
    r = await ok("exec_in_sandbox", { sandbox: FEATURE, command: ["pwd"], cwd: `${code}/sub dir` });
    assertEquals(r.stdout, `${await Deno.realPath(`${code}/sub dir`)}\n`);
    r = await ok("exec_in_sandbox", { sandbox: FEATURE, command: ["pwd"] });
    assertEquals(r.stdout, `${await Deno.realPath(code)}\n`, "default cwd is the code dir");
    r = await ok("exec_in_sandbox", { sandbox: FEATURE, command: ["wc", "-c"], stdin: "12345" });
    assertEquals((r.stdout as string).trim(), "5");
  });

  await t.step("exec: output capped per stream, head and tail kept, flags set", async () => {
    const r = await ok("exec_in_sandbox", {
      sandbox: FEATURE,
      shell: "printf 'BEGIN'; head -c 10000 /dev/zero | tr '\\0' x; printf 'END'; echo err >&2",
      max_output_bytes: 1024,
    });
    assertEquals([r.stdout_truncated, r.stdout_bytes, r.stderr_truncated], [true, 10008, false]);
    const out = r.stdout as string;
    assert(out.startsWith("BEGINxxx") && out.endsWith("xxxEND"), out.slice(0, 40));
    assertStringIncludes(out, "bytes omitted");
    assert(out.length < 1200, `${out.length} characters kept`);
    assertEquals(r.stderr, "err\n");
  });

  await t.step("exec: a timeout kills the command and returns what it printed", async () => {
    const started = Date.now();
    const r = await ok("exec_in_sandbox", {
      sandbox: FEATURE,
      shell: "echo before; exec sleep 30",
      timeout_secs: 0.5,
    });
    assertEquals([r.timed_out, r.exit_code, r.stdout], [true, null, "before\n"]);
    assert(Date.now() - started < 10_000, "returned long before the command would have ended");
  });

  await t.step("exec: a cancelled request kills its command", async () => {
    const pidFile = `${code}/sleeper.pid`;
    const abort = new AbortController();
    const pending = client.callTool(
      {
        name: "exec_in_sandbox",
        arguments: { sandbox: FEATURE, shell: `echo $$ > '${pidFile}'; exec sleep 60` },
      },
      undefined,
      { signal: abort.signal },
    );
    pending.catch(() => {});
    let pid = 0;
    await eventually("the command to start", async () => {
      pid = Number(await Deno.readTextFile(pidFile).catch(() => "0"));
      return pid > 0;
    });
    assert(alive(pid));
    abort.abort("stop");
    await assertRejects(() => pending);
    await eventually("the cancelled command to be killed", () => !alive(pid));
    // The server is still fine afterwards.
    assertEquals(
      (await ok("exec_in_sandbox", { sandbox: FEATURE, command: ["true"] })).exit_code,
      0,
    );
  });

  await t.step("write_file, read_file, list_files", async () => {
    const w1 = await ok("write_file", {
      sandbox: FEATURE,
      path: "deep/new dir/run it.sh",
      content: "#!/bin/sh\necho 'one'\necho two\necho 'one'\n",
      mode: "0750",
    });
    assertEquals([w1.bytes_written, w1.mode], [41, "0750"]);
    assertEquals((await Deno.stat(`${code}/deep/new dir/run it.sh`)).mode! & 0o777, 0o750);
    const r = await ok("read_file", { sandbox: FEATURE, path: "deep/new dir/run it.sh" });
    assertEquals(r.content, "#!/bin/sh\necho 'one'\necho two\necho 'one'\n");
    assertEquals([r.truncated, r.binary, r.encoding, r.size], [false, false, "utf-8", 41]);
    const part = await ok("read_file", {
      sandbox: FEATURE,
      path: `${code}/deep/new dir/run it.sh`,
      max_bytes: 9,
    });
    assertEquals([part.content, part.truncated, part.bytes_read], ["#!/bin/sh", true, 9]);
    const partText = textOf(
      await call("read_file", { sandbox: FEATURE, path: "deep/new dir/run it.sh", max_bytes: 9 }),
    );
    assertStringIncludes(partText, "offset=9");

    await ok("write_file", {
      sandbox: FEATURE,
      path: "deep/blob.bin",
      content: btoa(String.fromCharCode(0, 1, 2, 255)),
      encoding: "base64",
    });
    const bin = await ok("read_file", { sandbox: FEATURE, path: "deep/blob.bin" });
    assertEquals([bin.binary, bin.encoding, bin.content], [true, "base64", "AAEC/w=="]);

    const listing = await ok("list_files", { sandbox: FEATURE, path: "deep", recursive: true });
    assertEquals(
      (listing.entries as Doc[]).map((e) => [e.path, e.is_dir, e.mode]),
      [
        ["deep/blob.bin", false, "0644"],
        ["deep/new dir", true, "0755"],
        ["deep/new dir/run it.sh", false, "0750"],
      ],
    );
    const top = await ok("list_files", { sandbox: FEATURE });
    assert((top.entries as Doc[]).some((e) => e.path === "deep" && e.type === "dir"));
    await fails("read_file", { sandbox: FEATURE, path: "missing.txt" }, "no such file");
    await fails("list_files", { sandbox: FEATURE, path: "deep/blob.bin" }, "not a directory");
    await fails(
      "write_file",
      { sandbox: FEATURE, path: "nope/x", content: "", create_parents: false },
      "no such directory",
    );
    await fails("write_file", { sandbox: FEATURE, path: "x", content: "", mode: "999" }, "mode");
  });

  await t.step("edit_file: replaces, keeps the mode, reports each error", async () => {
    const path = "deep/new dir/run it.sh";
    await fails(
      "edit_file",
      { sandbox: FEATURE, path, old_string: "echo 'one'", new_string: "echo 1" },
      "occurs 2 times",
      "replace_all",
    );
    await fails(
      "edit_file",
      { sandbox: FEATURE, path, old_string: "not there", new_string: "x" },
      "not found",
    );
    await fails(
      "edit_file",
      { sandbox: FEATURE, path, old_string: "two", new_string: "two" },
      "identical",
    );
    await fails(
      "edit_file",
      { sandbox: FEATURE, path: "deep/blob.bin", old_string: "a", new_string: "b" },
      "UTF-8",
    );
    const e = await ok("edit_file", {
      sandbox: FEATURE,
      path,
      old_string: "echo 'one'",
      new_string: "echo \"$1\" '$&'",
      replace_all: true,
    });
    assertEquals([e.replacements, e.mode], [2, "0750"]);
    assertEquals(
      await Deno.readTextFile(`${code}/${path}`),
      "#!/bin/sh\necho \"$1\" '$&'\necho two\necho \"$1\" '$&'\n",
    );
    assertEquals((await Deno.stat(`${code}/${path}`)).mode! & 0o777, 0o750, "mode kept");
  });

  await t.step("halt_sandbox, then the running-only tools say how to start it", async () => {
    const h = await ok("halt_sandbox", { sandbox: OTHER });
    assertEquals([h.status, h.previous], ["stopped", "running"]);
    await fails(
      "exec_in_sandbox",
      { sandbox: OTHER, command: ["true"] },
      "is stopped",
      "spawn",
    );
    await fails("read_file", { sandbox: OTHER, path: "x" }, "is stopped");
  });

  await t.step("spawn_sandbox restarts it, with progress notifications", async () => {
    const progress: Progress[] = [];
    const result = await client.callTool(
      { name: "spawn_sandbox", arguments: { branch: "feature/y" } },
      undefined,
      { onprogress: (p: Progress) => progress.push(p) },
    ) as Result;
    assert(!result.isError, `${textOf(result)}\n${conn.stderr()}`);
    const s = result.structuredContent!;
    assertEquals([s.name, s.status, s.action, s.address], [
      OTHER,
      "running",
      "started",
      "127.0.0.1",
    ]);
    const messages = progress.map((p) => p.message ?? "");
    assert(messages.some((m) => m.startsWith(`starting ${OTHER}`)), messages.join(" | "));
    assert(messages.some((m) => m.startsWith("waiting for boot: done")), messages.join(" | "));
    assertEquals(progress.map((p) => p.progress), progress.map((_, i) => i + 1));
  });

  await t.step("spawn_sandbox errors: not a repo, bad branch name", async () => {
    const plain = await Deno.makeTempDir({ prefix: "tk-mcp-plain-" });
    try {
      await fails("spawn_sandbox", { repo: plain }, "git");
    } finally {
      await Deno.remove(plain, { recursive: true });
    }
    await fails("spawn_sandbox", { branch: "bad..name" }, "bad..name");
  });

  await t.step("checkpoints: create, list, restore (the disk goes back), delete", async () => {
    await fails("list_checkpoints", { sandbox: "nope" }, "no sandbox matches");
    const empty = await ok("list_checkpoints", { sandbox: OTHER });
    assertEquals([empty.name, empty.checkpoints], [OTHER, []]);
    await fails(
      "create_checkpoint",
      { sandbox: OTHER, label: "bad label;$(x)" },
      "invalid checkpoint label",
      "bad label;$(x)",
    );

    const made = await ok("create_checkpoint", { sandbox: "feature/y", label: "before-rm" });
    assertEquals([made.name, made.label], [OTHER, "before-rm"]);
    const auto = await ok("create_checkpoint", { sandbox: OTHER });
    assertMatch(auto.label as string, /^tk-\d{8}-\d{6}$/);
    await fails(
      "create_checkpoint",
      { sandbox: OTHER, label: "before-rm" },
      "already has a checkpoint",
      "hint:",
    );
    const listed = await ok("list_checkpoints", { sandbox: OTHER });
    assertEquals(
      (listed.checkpoints as Doc[]).map((c) => c.label).sort(),
      ["before-rm", auto.label].sort(),
    );

    // A change to the sandbox's own disk after the checkpoint is undone by the restore (the
    // memory engine's disk is its world entry; its exec and file tools run on the host).
    const file = "/home/agent/state.txt";
    await w.world((world) => {
      world.sandboxes[OTHER].files = { [file]: { data: btoa("after"), mode: 0o644 } };
    });
    const progress: Progress[] = [];
    const result = await client.callTool(
      { name: "restore_checkpoint", arguments: { sandbox: OTHER, label: "before-rm" } },
      undefined,
      { onprogress: (p: Progress) => progress.push(p) },
    ) as Result;
    assert(!result.isError, `${textOf(result)}\n${conn.stderr()}`);
    const restored = result.structuredContent!;
    assertEquals([restored.name, restored.status, restored.previous], [
      OTHER,
      "running",
      "running",
    ]);
    const messages = progress.map((p) => p.message ?? "");
    assert(
      messages.some((m) => m.startsWith("restoring checkpoint before-rm")),
      messages.join("|"),
    );
    const world = JSON.parse(await Deno.readTextFile(w.worldPath));
    assertEquals(Object.keys(world.sandboxes[OTHER].files ?? {}), [], "the disk went back");
    await fails("restore_checkpoint", { sandbox: OTHER, label: "never-made" }, "never-made");
    // A sandbox whose worktree is broken is refused before anything is stopped.
    await ok("create_checkpoint", { sandbox: FEATURE, label: "one" });
    await fails(
      "restore_checkpoint",
      { sandbox: FEATURE, label: "one" },
      "worktree",
      "nothing was changed",
    );
    assertEquals(
      (await ok("sandbox_status", { sandbox: FEATURE }).then((d) => d.sandbox as Doc)).status,
      "running",
    );

    const gone = await ok("delete_checkpoint", { sandbox: OTHER, label: auto.label });
    assertEquals([gone.label, gone.deleted], [auto.label, true]);
    const after = await ok("list_checkpoints", { sandbox: OTHER });
    assertEquals((after.checkpoints as Doc[]).map((c) => c.label), ["before-rm"]);
    await fails("delete_checkpoint", { sandbox: OTHER, label: auto.label }, auto.label as string);
  });

  await t.step("pull_sandbox on a sandbox that mounts the host: nothing to pull", async () => {
    const p = await ok("pull_sandbox", { sandbox: FEATURE });
    assertEquals([p.name, p.mode, p.action, p.commits, p.ref], [
      FEATURE,
      "share",
      "shared",
      0,
      null,
    ]);
    assert(String(p.notice).includes("nothing to pull"), String(p.notice));
  });

  await t.step("destroy_sandbox removes it; afterwards it is unknown", async () => {
    const d = await ok("destroy_sandbox", { sandbox: FEATURE });
    assertEquals([d.name, d.was_missing, d.worktree_removed], [FEATURE, false, false]);
    await fails("sandbox_status", { sandbox: FEATURE }, "no sandbox matches");
    const world = JSON.parse(await Deno.readTextFile(w.worldPath));
    assertEquals(Object.keys(world.sandboxes), [OTHER]);
    const list = await ok("list_sandboxes", { all: true });
    assertEquals((list.sandboxes as Doc[]).map((s) => s.name), [OTHER]);
  });

  assertEquals(conn.stderr().includes("error:"), false, conn.stderr());
  await Deno.remove(code, { recursive: true });
});

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** A server process read line by line. */
async function rawSession(
  env: Record<string, string>,
  cwd: string,
  requests: Doc[],
): Promise<{ lines: string[]; code: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", "--quiet", MAIN_TS, "mcp"],
    cwd,
    env,
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const enc = new TextEncoder();
  const lines: string[] = [];
  let buffer = "";
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let i;
      while ((i = buffer.indexOf("\n")) >= 0) {
        lines.push(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
      }
    }
  })();
  // Each request waits for its response, so the order of the answers is known.
  for (const request of requests) {
    const before = lines.length;
    await writer.write(enc.encode(JSON.stringify(request) + "\n"));
    if ("id" in request) {
      await eventually(`the answer to ${request.method}`, () =>
        lines.slice(before).some((l) => {
          try {
            return JSON.parse(l).id === request.id;
          } catch {
            return true; // garbage: let the assertions below report it
          }
        }));
    }
  }
  await writer.close(); // end of input: the server must exit by itself
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
    reading,
  ]);
  if (buffer !== "") lines.push(buffer);
  return { lines, code: status.code, stderr };
}

function initialize(id: number, version: string): Doc {
  return {
    jsonrpc: "2.0",
    id,
    method: "initialize",
    params: {
      protocolVersion: version,
      capabilities: {},
      clientInfo: { name: "raw", version: "0" },
    },
  };
}

Deno.test("stdio: every stdout line is JSON-RPC; old clients negotiated down; EOF exits 0", async () => {
  await using w = await mcpWorld();
  await w.seed(FEATURE, { branch: "feature/x" });
  const session = await rawSession(w.env, w.repo.root, [
    initialize(1, "2024-11-05"),
    { jsonrpc: "2.0", method: "notifications/initialized" },
    { jsonrpc: "2.0", id: 2, method: "tools/list" },
    {
      jsonrpc: "2.0",
      id: 3,
      method: "tools/call",
      params: { name: "list_sandboxes", arguments: {} },
    },
    {
      jsonrpc: "2.0",
      id: 4,
      method: "tools/call",
      params: { name: "sandbox_status", arguments: { sandbox: "nope" } },
    },
    {
      jsonrpc: "2.0",
      id: 5,
      method: "tools/call",
      params: { name: "exec_in_sandbox", arguments: { sandbox: FEATURE, shell: "echo to-stdout" } },
    },
    { jsonrpc: "2.0", id: 6, method: "ping" },
  ]);
  assertEquals(session.code, 0, session.stderr);
  assert(session.lines.length >= 6, session.lines.join("\n"));
  const messages = session.lines.map((line) => {
    const m = JSON.parse(line);
    assertEquals(m.jsonrpc, "2.0", line);
    return m;
  });
  const byId = new Map(messages.map((m) => [m.id, m]));
  assertEquals(byId.get(1).result.protocolVersion, "2024-11-05");
  assertEquals(byId.get(1).result.serverInfo.name, "tachikoma");
  assertEquals(byId.get(2).result.tools.length, TOOL_NAMES.length);
  assertEquals(byId.get(3).result.structuredContent.sandboxes[0].name, FEATURE);
  assertEquals(byId.get(4).result.isError, true);
  assertEquals(byId.get(5).result.structuredContent.stdout, "to-stdout\n");
  assertEquals(byId.get(6).result, {});
});

Deno.test("stdio: an unknown client protocol version gets the newest one", async () => {
  await using w = await mcpWorld();
  const session = await rawSession(w.env, w.repo.root, [initialize(1, "1999-01-01")]);
  assertEquals(session.code, 0, session.stderr);
  assertEquals(JSON.parse(session.lines[0]).result.protocolVersion, LATEST_PROTOCOL_VERSION);
});

Deno.test("stdio: end of input or SIGTERM stops the server and kills running commands", async () => {
  await using w = await mcpWorld();
  const code = await Deno.makeTempDir({ prefix: "tk-mcp-stop-" });
  await w.seed(FEATURE, { branch: "feature/x", codeDir: code });
  try {
    for (const how of ["eof", "SIGTERM"] as const) {
      const pidFile = `${code}/${how}.pid`;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--frozen", "--quiet", MAIN_TS, "mcp"],
        cwd: w.repo.root,
        env: w.env,
        clearEnv: true,
        stdin: "piped",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const writer = child.stdin.getWriter();
      const send = (m: Doc) => writer.write(new TextEncoder().encode(JSON.stringify(m) + "\n"));
      await send(initialize(1, LATEST_PROTOCOL_VERSION));
      await send({ jsonrpc: "2.0", method: "notifications/initialized" });
      await send({
        jsonrpc: "2.0",
        id: 2,
        method: "tools/call",
        params: {
          name: "exec_in_sandbox",
          arguments: { sandbox: FEATURE, shell: `echo $$ > '${pidFile}'; exec sleep 60` },
        },
      });
      let pid = 0;
      await eventually("the command to start", async () => {
        pid = Number(await Deno.readTextFile(pidFile).catch(() => "0"));
        return pid > 0;
      });
      const started = Date.now();
      if (how === "eof") await writer.close();
      else child.kill("SIGTERM");
      const status = await child.status;
      assertEquals(status.code, 0, `${how}: exits cleanly`);
      assert(Date.now() - started < 10_000, `${how}: promptly`);
      await eventually(`${how}: the running command to be killed`, () => !alive(pid));
      if (how === "SIGTERM") await writer.close().catch(() => {});
    }
  } finally {
    await Deno.remove(code, { recursive: true });
  }
});
