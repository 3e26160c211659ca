/**
 * The MCP tools in process: the SDK's own `Client` over an in-memory transport, talking to
 * `createMcpServer` whose context opens the core service over the lifecycle test harness
 * (memory backend, real git repo, fake provisioner, fake clock). Covers what the stdio tests
 * cannot yet: spawning a brand-new sandbox end to end (provisioning included), progress
 * notifications for every step, and a cancelled spawn stopping its work in core.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { Progress, Tool } from "@modelcontextprotocol/sdk/types.js";
import { SandboxService } from "../../../src/core/sandbox_service.ts";
import { createMcpServer, type McpContext } from "../../../src/mcp/mod.ts";
import { type Harness, harness } from "../core/helpers.ts";
import { textOf, TOOL_NAMES } from "./helpers.ts";

async function connect(h: Harness): Promise<Client & AsyncDisposable> {
  const ctx: McpContext = {
    cwd: h.repo.root,
    clock: h.clock,
    openService: ({ cwd, reporter, signal }) =>
      Promise.resolve(new SandboxService({ ...h.deps, reporter, signal }, cwd)),
    close: () => Promise.resolve(),
  };
  const server = createMcpServer(ctx);
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: "tachikoma-test", version: "1.0.0" });
  await client.connect(clientSide);
  return Object.assign(client, {
    async [Symbol.asyncDispose]() {
      await client.close();
      await server.close();
    },
  });
}

Deno.test("in process: instructions, every tool with schema and description", async () => {
  await using h = await harness();
  await using client = await connect(h);
  assertStringIncludes(client.getInstructions() ?? "", "spawn_sandbox");
  const { tools } = await client.listTools() as { tools: Tool[] };
  assertEquals(tools.map((t) => t.name).sort(), [...TOOL_NAMES].sort());
  for (const tool of tools) {
    assert((tool.description ?? "").length > 60, `${tool.name} has a real description`);
    assertEquals(tool.inputSchema.type, "object");
    assert(tool.outputSchema, `${tool.name} publishes an output schema`);
    for (const [key, prop] of Object.entries(tool.inputSchema.properties ?? {})) {
      assert((prop as { description?: string }).description, `${tool.name}.${key} is described`);
    }
  }
});

Deno.test("in process: spawn_sandbox creates and provisions, with progress for every step", async () => {
  await using h = await harness();
  await using client = await connect(h);
  const progress: { progress: number; message?: string }[] = [];
  const result = await client.callTool(
    { name: "spawn_sandbox", arguments: { branch: "feature/mcp" } },
    undefined,
    { onprogress: (p: Progress) => progress.push(p) },
  );
  assert(!result.isError, textOf(result));
  const doc = result.structuredContent as Record<string, unknown>;
  assertEquals(doc.status, "running");
  assertEquals(doc.action, "created");
  assertEquals(doc.branch, "feature/mcp");
  assertEquals(doc.branch_created, true);
  assertEquals(doc.address, "127.0.0.1");
  assertEquals((doc.provisioning as { steps: string[] }).steps, h.provisioner.steps);
  assertEquals(h.provisioner.runs.length, 1);
  const messages = progress.map((p) => p.message ?? "");
  for (const step of ["creating sandbox", "waiting for boot", "provision: keys"]) {
    assert(messages.some((m) => m.startsWith(step)), `progress mentions "${step}": ${messages}`);
    assert(messages.some((m) => m.startsWith(step) && m.includes(": done")), `${step} done`);
  }
  assertEquals(progress.map((p) => p.progress), progress.map((_, i) => i + 1), "increasing");

  const again = await client.callTool({
    name: "spawn_sandbox",
    arguments: { branch: "feature/mcp" },
  });
  assertEquals((again.structuredContent as Record<string, unknown>).action, "reconnected");
  assertEquals(h.provisioner.runs.length, 1, "a running sandbox is not provisioned again");
  const listed = await client.callTool({ name: "list_sandboxes", arguments: {} });
  const names = (listed.structuredContent as { sandboxes: { name: string }[] }).sandboxes
    .map((s) => s.name);
  assertEquals(names, [doc.name]);
});

Deno.test("in process: a failing spawn is a tool error with the core's message and hint", async () => {
  await using h = await harness();
  await using client = await connect(h);
  h.provisioner.failAt = "env";
  const result = await client.callTool({ name: "spawn_sandbox", arguments: { branch: "b" } });
  assertEquals(result.isError, true);
  const text = textOf(result);
  assertStringIncludes(text, "provisioning");
  assertStringIncludes(text, "failed after step 'mounts'");
  assertStringIncludes(text, "hint: ");
  assertStringIncludes(text, "(error code: provision_failed)");
});

Deno.test("in process: cancelling spawn aborts it in core (stopped and marked failed)", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  let reached!: () => void;
  const atStart = new Promise<void>((r) => reached = r);
  await using h = await harness({
    backend: {
      onCall: async (method) => {
        if (method !== "start") return;
        reached();
        await gate;
      },
    },
  });
  await using client = await connect(h);
  const abort = new AbortController();
  const call = client.callTool(
    { name: "spawn_sandbox", arguments: { branch: "slow" } },
    undefined,
    {
      signal: abort.signal,
    },
  );
  await atStart;
  abort.abort(new Error("user pressed stop"));
  await assertRejects(() => call);
  release();
  // The server keeps no response for a cancelled request; its effect shows in state.
  const name = (await h.store.read()).vms[0].name;
  for (let i = 0; i < 200; i++) {
    const record = await h.store.get(name);
    if (record?.status === "failed") break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const record = await h.store.get(name);
  assertEquals(record?.status, "failed");
  assertStringIncludes(record?.failure ?? "", "interrupted");
  assertEquals((await h.backend.get(name)).state, "stopped");
  assertEquals(h.provisioner.runs.length, 0, "nothing was provisioned after the cancel");
});

Deno.test("in process: spawn_sandbox.from clones a checkpoint; a running source is a tool error", async () => {
  await using h = await harness();
  await using client = await connect(h);
  const first = await client.callTool({ name: "spawn_sandbox", arguments: { branch: "src" } });
  const src = (first.structuredContent as { name: string }).name;
  const refused = await client.callTool({
    name: "spawn_sandbox",
    arguments: { branch: "copy", from: src },
  });
  assertEquals(refused.isError, true);
  assertStringIncludes(textOf(refused), "is running");
  await h.backend.createCheckpoint(src, "cp1");
  h.provisioner.runs.length = 0;
  const forked = await client.callTool({
    name: "spawn_sandbox",
    arguments: { branch: "copy", from: `${src}:cp1` },
  });
  assert(!forked.isError, textOf(forked));
  const doc = forked.structuredContent as { name: string; action: string; branch: string };
  assertEquals([doc.action, doc.branch], ["created", "copy"]);
  const clone = (await h.backend.calls("clone")).find((c) => c.name === doc.name);
  assertEquals(clone?.detail, { source: src, checkpoint: "cp1" });
  // The fake recipe's steps are none of the per-branch ones: the clone runs none of them.
  assertEquals(h.provisioner.runs, [[]]);
});

Deno.test("in process: list_bases and build_base on the core of image list|build; spawn_sandbox.from a base", async () => {
  await using h = await harness({
    config: { bases: { dev: { image: "img:dev", setup: "true" } } },
  });
  await using client = await connect(h);
  const listed = async () => {
    const r = await client.callTool({ name: "list_bases", arguments: {} });
    assert(!r.isError, textOf(r));
    return (r.structuredContent as { bases: { name: string; status: string }[] }).bases;
  };
  assertEquals((await listed()).map((b) => [b.name, b.status]), [["dev", "missing"]]);
  const unknown = await client.callTool({ name: "build_base", arguments: { base: "nope" } });
  assertEquals(unknown.isError, true);
  assertStringIncludes(textOf(unknown), "nope");
  const built = await client.callTool({ name: "build_base", arguments: { base: "dev" } });
  assert(!built.isError, textOf(built));
  const doc = built.structuredContent as { bases: { name: string; action: string }[] };
  assertEquals(doc.bases.map((b) => [b.name, b.action]), [["dev", "built"]]);
  assertEquals((await listed()).map((b) => [b.name, b.status]), [["dev", "ready"]]);
  const again = await client.callTool({ name: "build_base", arguments: { base: "dev" } });
  assertEquals(
    (again.structuredContent as { bases: { action: string }[] }).bases[0].action,
    "ready",
  );
  const forked = await client.callTool({
    name: "spawn_sandbox",
    arguments: { branch: "from-dev", from: "dev" },
  });
  assert(!forked.isError, textOf(forked));
  assertEquals((forked.structuredContent as { action: string }).action, "created");
});
