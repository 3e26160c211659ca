/**
 * `tachikoma mcp --http` as a real process (`deno run memory_main.ts`, memory engine in
 * host-exec mode, loopback port), driven by the SDK's own `Client` over
 * `StreamableHTTPClientTransport` and by raw `fetch`: the token on every request (none or a
 * wrong one → 401 with no detail), Host and Origin checks (403), the tools with their
 * annotations, two clients at once, resumption with `Last-Event-ID`, session end, the token
 * file (0600 in 0700, never in the log), and what the daemon records.
 */
import { assert, assertEquals, assertMatch, assertNotEquals, assertRejects } from "@std/assert";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";
import { mcpWorld, textOf, TOOL_NAMES } from "./helpers.ts";
import { bearer, httpClient, startDaemon } from "./http_helpers.ts";

type Doc = Record<string, unknown>;

const FEATURE = "tachikoma-myapp-feature-x";

/** A raw JSON-RPC POST; returns the response (SSE or JSON). */
function post(url: string, headers: Record<string, string>, body: unknown): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: LATEST_PROTOCOL_VERSION,
    capabilities: {},
    clientInfo: { name: "raw", version: "1" },
  },
};

/** A raw HTTP/1.1 request (fetch cannot set Host); returns the status code. */
async function rawStatus(port: number, host: string, token: string): Promise<number> {
  const body = JSON.stringify(INITIALIZE);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const request = [
      "POST /mcp HTTP/1.1",
      `Host: ${host}`,
      `Authorization: Bearer ${token}`,
      "Content-Type: application/json",
      "Accept: application/json, text/event-stream",
      `Content-Length: ${new TextEncoder().encode(body).length}`,
      "Connection: close",
      "",
      body,
    ].join("\r\n");
    await conn.write(new TextEncoder().encode(request));
    const buf = new Uint8Array(256);
    const n = await conn.read(buf);
    const line = new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n")[0];
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(line)?.[1] ?? 0);
  } finally {
    conn.close();
  }
}

/** The SSE events of a finished response body: `{id, data}`. */
async function events(response: Response): Promise<{ id?: string; data: string }[]> {
  const text = await response.text();
  return text.split("\n\n").filter((b) => b.trim() !== "" && !b.startsWith(":")).map((block) => {
    const id = /^id: (.*)$/m.exec(block)?.[1];
    const data = [...block.matchAll(/^data: ?(.*)$/gm)].map((m) => m[1]).join("\n");
    return { id, data };
  });
}

Deno.test("http: the token on every request; 401 without it, 403 for a foreign Host or Origin", async () => {
  await using w = await mcpWorld();
  await using d = await startDaemon(w);
  assertMatch(d.url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  const port = new URL(d.url).port;
  const wrong = d.token.slice(0, -1) + (d.token.endsWith("A") ? "B" : "A");

  for (
    const [what, headers] of [
      ["no token", {}],
      ["a wrong token", bearer(wrong)],
      ["a shorter token", bearer(d.token.slice(0, 10))],
      ["the token as Basic", { authorization: `Basic ${btoa(`x:${d.token}`)}` }],
    ] as const
  ) {
    const r = await post(d.url, headers, INITIALIZE);
    assertEquals(r.status, 401, what);
    assertEquals(await r.text(), "", `${what}: no detail`);
    assertEquals(r.headers.get("www-authenticate"), "Bearer");
    // Every path, every method: nothing answers without the token.
    for (const path of ["/status", "/nope", "/.well-known/oauth-protected-resource"]) {
      const g = await fetch(new URL(path, d.url), { headers });
      await g.body?.cancel();
      assertEquals(g.status, 401, `${what} ${path}`);
    }
  }
  const sdk = await assertRejects(() => httpClient(d.url, bearer(wrong)));
  assertEquals((sdk as { code?: number }).code, 401, String(sdk));

  // DNS rebinding: a page whose name resolves to 127.0.0.1 sends its own Host / Origin.
  for (
    const [what, headers] of [
      ["foreign Origin", { origin: "http://evil.example" }],
      ["Origin on another port", { origin: `http://127.0.0.1:${Number(port) + 1}` }],
      ["Origin null", { origin: "null" }],
      ["https Origin", { origin: `https://127.0.0.1:${port}` }],
    ] as const
  ) {
    const r = await post(d.url, { ...bearer(d.token), ...headers }, INITIALIZE);
    assertEquals(r.status, 403, what);
    assertEquals(await r.text(), "", `${what}: no detail`);
  }
  const foreign = await assertRejects(() =>
    httpClient(d.url, { ...bearer(d.token), origin: "http://evil.example" })
  );
  assertEquals((foreign as { code?: number }).code, 403, String(foreign));

  // The daemon's own origin and loopback names are fine.
  const own = await post(d.url, { ...bearer(d.token), origin: `http://127.0.0.1:${port}` }, {
    ...INITIALIZE,
  });
  assertEquals(own.status, 200, "the daemon's own origin");
  await own.body?.cancel();
  for (const host of [`evil.example:${port}`, "evil.example", `127.0.0.1.nip.io:${port}`]) {
    assertEquals(await rawStatus(Number(port), host, d.token), 403, `rebound Host ${host}`);
  }
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
    assertEquals(await rawStatus(Number(port), host, d.token), 200, `Host ${host}`);
  }
  assertEquals(await rawStatus(Number(port), `evil.example:${port}`, "x"), 403, "Host first");

  const status = await fetch(new URL("/status", d.url), { headers: bearer(d.token) });
  const live = await status.json() as { requests: Doc; pid: number };
  assertEquals(live.pid, d.pid);
  assert((live.requests.unauthorized as number) >= 16);
  assert((live.requests.forbidden as number) >= 8);

  assertEquals(await d.stop(), 0);
  const log = await Deno.readTextFile(`${w.configDir}/logs/mcp.log`);
  assert(!log.includes(d.token) && !d.stderr().includes(d.token), "the token is never logged");
  assert(!log.includes(wrong), "a presented token is never logged");
});

Deno.test("http: the tools over the SDK client, annotations, delete_file, session end", async () => {
  await using w = await mcpWorld();
  const code = await Deno.makeTempDir({ prefix: "tk-mcp-http-code-" });
  await w.seed(FEATURE, { branch: "feature/x", codeDir: code });
  await using d = await startDaemon(w);
  await using client = await httpClient(d.url, bearer(d.token));
  const { tools } = await client.listTools() as { tools: Tool[] };
  assertEquals(tools.map((t) => t.name).sort(), [...TOOL_NAMES].sort());
  for (const t of tools) {
    const a = t.annotations ?? {};
    for (const hint of ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"]) {
      assertEquals(typeof (a as Doc)[hint], "boolean", `${t.name}.${hint}`);
    }
    if (a.readOnlyHint) assertEquals(a.destructiveHint, false, t.name);
  }
  const byName = new Map(tools.map((t) => [t.name, t.annotations!]));
  assertEquals(byName.get("list_sandboxes")!.readOnlyHint, true);
  assertEquals(byName.get("delete_file")!.destructiveHint, true);
  assertEquals(byName.get("destroy_sandbox")!.destructiveHint, true);
  assertEquals(byName.get("exec_in_sandbox")!.openWorldHint, true);
  assertEquals(byName.get("pull_sandbox")!.readOnlyHint, false);
  assertEquals(byName.get("pull_sandbox")!.destructiveHint, false);

  const call = async (name: string, args: Doc) => {
    const r = await client.callTool({ name, arguments: args });
    assert(!r.isError, `${name}: ${textOf(r)}\n${d.stderr()}`);
    return r.structuredContent as Doc;
  };
  const listed = await call("list_sandboxes", { all: true });
  const view = (listed.sandboxes as Doc[])[0];
  assertEquals([view.name, view.status, view.created_by, view.reaped], [
    FEATURE,
    "running",
    "cli",
    null,
  ]);
  await call("write_file", { sandbox: FEATURE, path: "it's $(here).txt", content: "x" });
  assertEquals(await Deno.readTextFile(`${code}/it's $(here).txt`), "x");
  assertEquals(await call("delete_file", { sandbox: FEATURE, path: "it's $(here).txt" }), {
    path: "it's $(here).txt",
    deleted: true,
    type: "file",
  });
  await assertRejects(() => Deno.stat(`${code}/it's $(here).txt`), Deno.errors.NotFound);
  const again = await client.callTool({
    name: "delete_file",
    arguments: { sandbox: FEATURE, path: "it's $(here).txt" },
  });
  assertEquals(again.isError, true);
  assertMatch(textOf(again), /no such file/);
  const exec = await call("exec_in_sandbox", { sandbox: FEATURE, shell: "echo hi; exit 3" });
  assertEquals([exec.exit_code, exec.stdout], [3, "hi\n"]);

  // DELETE ends the session; the id is then unknown (404: the client starts a new one).
  const sid = (client.transport as unknown as { sessionId?: string }).sessionId ?? "";
  assert(sid !== "");
  const del = await fetch(d.url, {
    method: "DELETE",
    headers: { ...bearer(d.token), "mcp-session-id": sid },
  });
  assertEquals(del.status, 200);
  const after = await post(d.url, { ...bearer(d.token), "mcp-session-id": sid }, {
    jsonrpc: "2.0",
    id: 2,
    method: "tools/list",
  });
  assertEquals(after.status, 404);
  await after.body?.cancel();
  await Deno.remove(code, { recursive: true });
});

Deno.test("http: two clients at once, each its own session, concurrent calls", async () => {
  await using w = await mcpWorld();
  const code = await Deno.makeTempDir({ prefix: "tk-mcp-http-code-" });
  await w.seed(FEATURE, { branch: "feature/x", codeDir: code });
  await using d = await startDaemon(w);
  await using a = await httpClient(d.url, bearer(d.token), { name: "agent-a" });
  await using b = await httpClient(d.url, bearer(d.token), { name: "agent-b" });
  const sid = (c: unknown) => (c as { transport: { sessionId?: string } }).transport.sessionId;
  assertNotEquals(sid(a), sid(b));

  // A slow command in one session does not hold the other.
  const slow = a.callTool({
    name: "exec_in_sandbox",
    arguments: { sandbox: FEATURE, shell: "while [ ! -e go ]; do sleep 0.05; done; echo a" },
  });
  const calls = await Promise.all(
    Array.from(
      { length: 10 },
      (_, i) => (i % 2 ? a : b).callTool({ name: "list_sandboxes", arguments: { all: true } }),
    ),
  );
  for (const r of calls) {
    assertEquals((r.structuredContent as Doc).sandboxes instanceof Array, true);
  }
  const status = await fetch(new URL("/status", d.url), { headers: bearer(d.token) });
  const live = await status.json() as { sessions: number; calls_running: number; in_use: string[] };
  assertEquals(live.sessions, 2);
  assertEquals(live.calls_running, 1, "the slow command runs while the others were answered");
  assertEquals(live.in_use, [FEATURE], "the reaper would leave it alone");
  await b.callTool({
    name: "write_file",
    arguments: { sandbox: FEATURE, path: "go", content: "" },
  });
  const done = await slow;
  assertEquals((done.structuredContent as Doc).stdout, "a\n");
  await Deno.remove(code, { recursive: true });
});

Deno.test("http: a lost stream is resumed with Last-Event-ID (only within its own session)", async () => {
  await using w = await mcpWorld();
  await using d = await startDaemon(w);
  const auth = bearer(d.token);
  const init = await post(d.url, auth, INITIALIZE);
  const sid = init.headers.get("mcp-session-id")!;
  await events(init);
  const session = {
    ...auth,
    "mcp-session-id": sid,
    "mcp-protocol-version": LATEST_PROTOCOL_VERSION,
  };
  const note = await post(d.url, session, {
    jsonrpc: "2.0",
    method: "notifications/initialized",
  });
  assertEquals(note.status, 202);
  const listed = await events(
    await post(d.url, session, {
      jsonrpc: "2.0",
      id: 7,
      method: "tools/call",
      params: { name: "list_sandboxes", arguments: { all: true } },
    }),
  );
  // A priming event (an id, no message) then the result, both with ids.
  assert(listed.length >= 2, JSON.stringify(listed));
  const priming = listed[0];
  assert(priming.data.trim() === "", "priming event first");
  const primingId = priming.id ?? "";
  assert(primingId !== "", "with an id");
  const result = listed.at(-1)!;
  assertEquals(JSON.parse(result.data).id, 7);

  // The client lost the stream after the priming event: it asks for what followed.
  const resumed = await fetch(d.url, {
    headers: { ...session, accept: "text/event-stream", "last-event-id": primingId },
  });
  assertEquals(resumed.status, 200);
  const reader = resumed.body!.getReader();
  let text = "";
  while (!text.includes('"id":7')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  await reader.cancel();
  assertMatch(text, /"id":7/);
  assertMatch(text, /list_sandboxes|sandboxes/);

  // Another session cannot replay this one's events.
  const other = await post(d.url, auth, INITIALIZE);
  const otherSid = other.headers.get("mcp-session-id")!;
  await events(other);
  const stolen = await fetch(d.url, {
    headers: {
      ...auth,
      "mcp-session-id": otherSid,
      "mcp-protocol-version": LATEST_PROTOCOL_VERSION,
      accept: "text/event-stream",
      "last-event-id": primingId,
    },
  });
  assertEquals(stolen.status, 400);
  await stolen.body?.cancel();
});
