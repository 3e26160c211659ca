/**
 * A client we did not write: the MCP Inspector's CLI (npm `@modelcontextprotocol/inspector`,
 * `--cli` mode, pinned) starts `deno run main.ts mcp` itself, lists the tools and calls
 * `list_sandboxes` (and a failing `sandbox_status`) against a file-backed memory world; and
 * over streamable HTTP against `tachikoma mcp --http`: with the token it works, with a wrong
 * one, none, or a foreign Origin it is refused.
 * The Inspector needs Node ≥ 22: when the machine's node is older, npm runs it with the pinned
 * npm `node` package. Packages are cached in `.cache/npm`. Skipped only when npm is missing.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { MAIN_TS, mcpWorld, TOOL_NAMES } from "../unit/mcp/helpers.ts";
import { startDaemon } from "../unit/mcp/http_helpers.ts";

const INSPECTOR = "@modelcontextprotocol/inspector@2.12.0";
const NODE = "node@22.23.3";
const REPO_ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

function which(command: string): boolean {
  try {
    const out = new Deno.Command("sh", {
      args: ["-c", `command -v ${command}`],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return out.code === 0;
  } catch {
    return false;
  }
}

function nodeMajor(): number {
  try {
    const out = new Deno.Command("node", { args: ["--version"], stdout: "piped" }).outputSync();
    return Number(/^v(\d+)/.exec(new TextDecoder().decode(out.stdout))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

const npmMissing = !which("npm");
if (npmMissing) console.error("skipping the MCP Inspector test: npm is not installed");

/** Runs the Inspector CLI with `args`; returns its exit code, stdout and stderr. */
async function runInspector(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const packages = [`--package=${INSPECTOR}`];
  if (nodeMajor() < 22) packages.unshift(`--package=${NODE}`);
  const out = await new Deno.Command("npm", {
    args: ["exec", "--yes", ...packages, "--", "mcp-inspector", "--cli", ...args],
    cwd: REPO_ROOT,
    env: {
      npm_config_cache: `${REPO_ROOT}/.cache/npm`,
      npm_config_update_notifier: "false",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs the Inspector CLI against `tachikoma mcp` on stdio (it starts the server itself). */
function inspector(
  env: Record<string, string>,
  cwd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const serverEnv = Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
  return runInspector([
    "--cwd",
    cwd,
    ...serverEnv,
    ...args,
    "--",
    Deno.execPath(),
    "run",
    "-A",
    "--frozen",
    "--quiet",
    MAIN_TS,
    "mcp",
  ]);
}

Deno.test({
  name: "MCP Inspector CLI lists the tools and calls list_sandboxes",
  ignore: npmMissing,
  async fn() {
    await using w = await mcpWorld();
    await w.seed("tachikoma-myapp-inspected", { branch: "inspected" });
    // The Inspector gives the server its own environment plus -e pairs; HOME and DENO_DIR
    // keep deno on this cache.
    const env = { ...w.env };

    const tools = await inspector(env, w.repo.root, ["--method", "tools/list"]);
    assertEquals(tools.code, 0, tools.stderr);
    const listed = JSON.parse(tools.stdout) as { tools: { name: string; inputSchema: unknown }[] };
    assertEquals(listed.tools.map((t) => t.name).sort(), [...TOOL_NAMES].sort());

    const call = await inspector(env, w.repo.root, [
      "--method",
      "tools/call",
      "--tool-name",
      "list_sandboxes",
      "--tool-arg",
      "all=true",
    ]);
    assertEquals(call.code, 0, call.stderr);
    const result = JSON.parse(call.stdout) as {
      isError?: boolean;
      structuredContent: { sandboxes: { name: string; status: string }[] };
    };
    assert(!result.isError);
    assertEquals(result.structuredContent.sandboxes.map((s) => [s.name, s.status]), [
      ["tachikoma-myapp-inspected", "running"],
    ]);

    const failing = await inspector(env, w.repo.root, [
      "--method",
      "tools/call",
      "--tool-name",
      "sandbox_status",
      "--tool-arg",
      "sandbox=nope",
    ]);
    assert(failing.code !== 0, "the Inspector reports a tool error with a non-zero exit");
    const error = JSON.parse(failing.stdout) as {
      isError: boolean;
      content: { text: string }[];
    };
    assertEquals(error.isError, true);
    assertStringIncludes(error.content[0].text, "no sandbox matches 'nope'");
  },
});

Deno.test({
  name:
    "MCP Inspector CLI over streamable HTTP: the token works; a wrong one, none, a foreign Origin do not",
  ignore: npmMissing,
  async fn() {
    await using w = await mcpWorld();
    await w.seed("tachikoma-myapp-over-http", { branch: "over-http" });
    await using d = await startDaemon(w);
    // Its own HOME: the Inspector keeps a catalog and OAuth state there.
    const env = { HOME: w.home };
    const http = (headers: string[], method: string[]) =>
      runInspector([
        "--transport",
        "http",
        "--server-url",
        d.url,
        "--stored-auth-only",
        ...headers.flatMap((h) => ["--header", h]),
        ...method,
      ], env);
    const auth = `Authorization: Bearer ${d.token}`;

    const tools = await http([auth], ["--method", "tools/list"]);
    assertEquals(tools.code, 0, tools.stderr);
    const listed = JSON.parse(tools.stdout) as { tools: { name: string }[] };
    assertEquals(listed.tools.map((t) => t.name).sort(), [...TOOL_NAMES].sort());

    const call = await http([auth], [
      "--method",
      "tools/call",
      "--tool-name",
      "list_sandboxes",
      "--tool-arg",
      "all=true",
    ]);
    assertEquals(call.code, 0, call.stderr);
    const result = JSON.parse(call.stdout) as {
      structuredContent: { sandboxes: { name: string; created_by: string }[] };
    };
    assertEquals(result.structuredContent.sandboxes.map((s) => [s.name, s.created_by]), [
      ["tachikoma-myapp-over-http", "cli"],
    ]);

    const wrong = `Authorization: Bearer ${d.token.slice(0, -2)}xx`;
    for (
      const [what, headers, says] of [
        ["a wrong token", [wrong], "auth_required"],
        ["no token", [], "auth_required"],
        ["a foreign Origin", [auth, "Origin: http://evil.example"], '"status":403'],
      ] as const
    ) {
      const refused = await http([...headers], ["--method", "tools/list"]);
      const said = refused.stdout + refused.stderr;
      assert(refused.code !== 0, `${what}: the Inspector fails`);
      assertStringIncludes(said, says, what);
      assert(!said.includes("list_sandboxes"), `${what}: no tools leak`);
    }
    const status = await fetch(new URL("/status", d.url), {
      headers: { authorization: `Bearer ${d.token}` },
    });
    const live = await status.json() as { requests: { unauthorized: number; forbidden: number } };
    assert(live.requests.unauthorized >= 2, JSON.stringify(live.requests));
    assert(live.requests.forbidden >= 1, JSON.stringify(live.requests));
  },
});
