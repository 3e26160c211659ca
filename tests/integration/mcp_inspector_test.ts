/**
 * A client we did not write: the MCP Inspector's CLI (npm `@modelcontextprotocol/inspector`,
 * `--cli` mode, pinned) starts `deno run main.ts mcp` itself, lists the tools and calls
 * `list_sandboxes` (and a failing `sandbox_status`) against a file-backed memory world.
 * The Inspector needs Node ≥ 22: when the machine's node is older, npm runs it with the pinned
 * npm `node` package. Packages are cached in `.cache/npm`. Skipped only when npm is missing.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { MAIN_TS, mcpWorld, TOOL_NAMES } from "../unit/mcp/helpers.ts";

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

/** Runs the Inspector CLI against `tachikoma mcp`; returns its exit code, stdout and stderr. */
async function inspector(
  env: Record<string, string>,
  cwd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const packages = [`--package=${INSPECTOR}`];
  if (nodeMajor() < 22) packages.unshift(`--package=${NODE}`);
  const serverEnv = Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
  const out = await new Deno.Command("npm", {
    args: [
      "exec",
      "--yes",
      ...packages,
      "--",
      "mcp-inspector",
      "--cli",
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
    ],
    cwd: REPO_ROOT,
    env: { npm_config_cache: `${REPO_ROOT}/.cache/npm`, npm_config_update_notifier: "false" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
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
