/**
 * Background jobs over MCP, with `tachikoma mcp` as real processes against a memory world whose
 * exec runs on the host (real sh, setsid, coreutils): a job started through one server process
 * is read, in two pieces, through another after the first client and server are gone; its exit
 * code; max_bytes; job_kill; hostile and unknown job ids.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { eventually, mcpWorld, textOf } from "./helpers.ts";

type Doc = Record<string, unknown>;
type Result = { isError?: boolean; structuredContent?: Doc; content?: unknown };

const FEATURE = "tachikoma-myapp-feature-x";

Deno.test("mcp jobs: background exec survives the client; output read incrementally; kill", async () => {
  await using w = await mcpWorld();
  const code = await Deno.makeTempDir({ prefix: "tk-mcp-jobs-" });
  await w.seed(FEATURE, { branch: "feature/x", codeDir: code });
  const tools = (
    conn: { client: { callTool: (p: { name: string; arguments: Doc }) => unknown } },
  ) => {
    const call = async (name: string, args: Doc) =>
      await conn.client.callTool({ name, arguments: args }) as Result;
    const ok = async (name: string, args: Doc) => {
      const r = await call(name, args);
      assert(!r.isError, `${name} failed: ${textOf(r)}`);
      return r.structuredContent!;
    };
    return { call, ok };
  };

  let jobId: string;
  {
    await using first = await w.connect();
    const started = await tools(first).ok("exec_in_sandbox", {
      sandbox: FEATURE,
      shell: "printf part1; while [ ! -e go ]; do sleep 0.05; done; printf part2; " +
        'echo "err:$TACHIKOMA_MEMORY_SANDBOX" >&2; exit 7',
      background: true,
    });
    jobId = started.job_id as string;
    assert(/^[0-9a-f]{12}$/.test(jobId), jobId);
    assertEquals(started.exit_code, null);
  } // the first client and its server process are gone; the job is not

  await using second = await w.connect();
  const { ok, call } = tools(second);
  let piece1: Doc = {};
  await eventually("the first piece", async () => {
    piece1 = await ok("job_output", { sandbox: FEATURE, job_id: jobId });
    return piece1.stdout === "part1";
  });
  assertEquals([piece1.status, piece1.stdout_offset, piece1.more], ["running", 5, false]);
  const head = await ok("job_output", { sandbox: FEATURE, job_id: jobId, max_bytes: 2 });
  assertEquals([head.stdout, head.stdout_offset, head.more], ["pa", 2, true]);

  await Deno.writeTextFile(`${code}/go`, "");
  await eventually("the job to exit", async () => {
    const s = await ok("job_status", { sandbox: FEATURE, job_id: jobId });
    return s.status === "exited";
  });
  const piece2 = await ok("job_output", {
    sandbox: FEATURE,
    job_id: jobId,
    stdout_offset: piece1.stdout_offset,
    stderr_offset: piece1.stderr_offset,
  });
  assertEquals(
    [piece2.stdout, piece2.stderr, piece2.status, piece2.exit_code],
    ["part2", `err:${FEATURE}\n`, "exited", 7],
  );
  assertEquals([piece2.stdout_offset, piece2.stdout_bytes], [10, 10]);
  const done = await ok("job_kill", { sandbox: FEATURE, job_id: jobId });
  assertEquals(done.killed, false);

  // job_kill ends a running job and what it started.
  const sleeper = await ok("exec_in_sandbox", {
    sandbox: FEATURE,
    shell: "sleep 300 & sleep 300; wait",
    background: true,
  });
  const killed = await ok("job_kill", { sandbox: FEATURE, job_id: sleeper.job_id });
  assertEquals(killed.killed, true);
  await eventually("the killed job to end", async () => {
    const s = await ok("job_status", { sandbox: FEATURE, job_id: sleeper.job_id });
    return s.status !== "running";
  });

  // Hostile and unknown ids: one line naming them, nothing run.
  for (const bad of ["$(touch pwned)", "../../etc", "ABCDEF012345", ""]) {
    const r = await call("job_output", { sandbox: FEATURE, job_id: bad });
    assertEquals(r.isError, true);
    assertStringIncludes(textOf(r), "invalid job id");
  }
  const unknown = await call("job_status", { sandbox: FEATURE, job_id: "0123456789ab" });
  assertEquals(unknown.isError, true);
  assertStringIncludes(textOf(unknown), "no job 0123456789ab");
  assertEquals(await Deno.stat(`${code}/pwned`).then(() => true, () => false), false);
  await Deno.remove(code, { recursive: true });
});
