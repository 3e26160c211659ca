import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import {
  guestMcpServers,
  guestSettings,
  mcpEnv,
  patchClaudeJson,
  stableJson,
} from "../../../src/provision/claude_settings.ts";
import {
  GuestSecretAllowList,
  leftOutNote,
  optInEntry,
  secretLooking,
  type SecretSlot,
  urlWithoutCredentials,
} from "../../../src/provision/guest_secrets.ts";
import { claudeShareName } from "../../../src/provision/shares.ts";
import { buildShares } from "../../../src/provision/shares.ts";
import { directInjection } from "../../../src/provision/credentials.ts";
import { resolveScriptPath } from "../../../src/provision/scripts.ts";
import { LOCAL_BIN_LINE, profileBody } from "../../../src/provision/profile.ts";

const none = new GuestSecretAllowList();
const at = (file: string) => (slot: SecretSlot) => ({ slot, file });

Deno.test("guestSettings strips host hooks, statusLine, ~/Library/ denies; proxy drops credentials", () => {
  const host = {
    hooks: { Stop: [] },
    statusLine: { command: "x" },
    permissions: { deny: ["Read(~/Library/Keychains/**)", 3, "Bash(rm:*)"], allow: ["Read"] },
    apiKeyHelper: "/bin/key",
    env: { ANTHROPIC_API_KEY: "k", ANTHROPIC_AUTH_TOKEN: "t", ANTHROPIC_BASE_URL: "u", OTHER: "o" },
    mcpServers: { s: { command: "s", env: { CLAUDE_CODE_OAUTH_TOKEN: "o", FOO: "f" } } },
  };
  const proxy = guestSettings(host, { syncMcpServers: true, proxy: true, allow: none });
  assertEquals(proxy.value, {
    permissions: { deny: [3, "Bash(rm:*)"], allow: ["Read"] },
    env: { OTHER: "o" },
    mcpServers: { s: { command: "s", env: {} } },
  });
  const file = at("~/.claude/settings.json");
  assertEquals(proxy.leftOut, [file({ kind: "mcp_env", server: "s", name: "FOO" })]);
  const direct = guestSettings(host, { syncMcpServers: false, proxy: false, allow: none });
  assertEquals(direct.value.apiKeyHelper, "/bin/key");
  assertEquals(direct.value.mcpServers, undefined);
  // Direct mode: the Anthropic credential is what the user chose to copy.
  assertEquals(direct.value.env, host.env);
  assertEquals(direct.leftOut, []);
  assertEquals(host.hooks, { Stop: [] }, "the input is not modified");
});

Deno.test("guestSettings: MCP env, headers and URL credentials and secret-looking env stay out unless allowed", () => {
  const host = {
    env: {
      NPM_TOKEN: "npm_abcdefghijklmnopqrstuvwxyz0123456789",
      GITHUB_PAT: "plain-looking",
      CLAUDE_CODE_MAX_OUTPUT_TOKENS: "32000",
      MAX_THINKING_TOKENS: "8000",
      DISABLE_TELEMETRY: "1",
      PROXY: "https://me:hunter2@proxy.example:8080",
      NOTE: "ghp_0123456789abcdefghijABCDEFGHIJ",
      EMPTY_KEY: "",
      LOG_LEVEL: "debug",
    },
    mcpServers: {
      github: { command: "gh-mcp", args: ["--stdio"], env: { GITHUB_TOKEN: "t1", LOG: "v" } },
      linear: {
        type: "http",
        url: "https://u:p@mcp.linear.example/sse?api_key=k1&team=x",
        headers: { Authorization: "Bearer k2", Accept: "text/event-stream" },
      },
      "odd name": { env: { A_TOKEN: "t3" } },
    },
  };
  const file = at("~/.claude/settings.json");
  const out = guestSettings(host, { syncMcpServers: true, proxy: true, allow: none });
  assertEquals(out.value.env, {
    CLAUDE_CODE_MAX_OUTPUT_TOKENS: "32000",
    MAX_THINKING_TOKENS: "8000",
    DISABLE_TELEMETRY: "1",
    EMPTY_KEY: "",
    LOG_LEVEL: "debug",
  });
  assertEquals(out.value.mcpServers, {
    github: { command: "gh-mcp", args: ["--stdio"], env: {} },
    linear: { type: "http", url: "https://mcp.linear.example/sse?team=x", headers: {} },
    "odd name": { env: {} },
  });
  assertEquals(out.leftOut, [
    file({ kind: "mcp_env", server: "github", name: "GITHUB_TOKEN" }),
    file({ kind: "mcp_env", server: "github", name: "LOG" }),
    file({ kind: "mcp_header", server: "linear", name: "Authorization" }),
    file({ kind: "mcp_header", server: "linear", name: "Accept" }),
    file({ kind: "mcp_url", server: "linear" }),
    file({ kind: "mcp_env", server: "odd name", name: "A_TOKEN" }),
    file({ kind: "env", name: "NPM_TOKEN" }),
    file({ kind: "env", name: "GITHUB_PAT" }),
    file({ kind: "env", name: "PROXY" }),
    file({ kind: "env", name: "NOTE" }),
  ]);
  assert(!JSON.stringify(out.value).match(/t1|k1|k2|t3|hunter2|npm_|ghp_|plain-looking/));

  // Opted in: exactly those values, header names case-insensitively, `*` for any one part.
  const allow = new GuestSecretAllowList([
    "mcp.github.env.GITHUB_TOKEN",
    "mcp.linear.headers.authorization",
    "mcp.*.env.A_TOKEN",
    "env.NPM_TOKEN",
  ]);
  const some = guestSettings(host, { syncMcpServers: true, proxy: true, allow });
  const servers = some.value.mcpServers as Record<string, { env?: unknown; headers?: unknown }>;
  assertEquals(servers.github.env, { GITHUB_TOKEN: "t1" });
  assertEquals(servers.linear.headers, { Authorization: "Bearer k2" });
  assertEquals(servers["odd name"].env, { A_TOKEN: "t3" });
  assertEquals((some.value.env as Record<string, string>).NPM_TOKEN, host.env.NPM_TOKEN);
  assertEquals(some.leftOut.map((l) => optInEntry(l.slot)), [
    "mcp.github.env.LOG",
    "mcp.linear.headers.Accept",
    "mcp.linear.url",
    "env.GITHUB_PAT",
    "env.PROXY",
    "env.NOTE",
  ]);
  // Proxy mode: an Anthropic credential never enters, whatever guest_secrets says.
  const anthropic = guestMcpServers({ s: { env: { ANTHROPIC_API_KEY: "sk-ant-x" } } }, {
    proxy: true,
    allow: new GuestSecretAllowList(["mcp.*.env.*"]),
    file: "~/.claude.json",
  });
  assertEquals(anthropic.value, { s: { env: {} } });
});

Deno.test("secretLooking: names by word, plain values exempt, credential shapes whatever the name", () => {
  for (const name of ["API_KEY", "apiKey", "GH_TOKEN", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY"]) {
    assert(secretLooking(name, "abc123"), name);
  }
  for (const name of ["SENTRY_DSN", "SESSION", "PRIVATE_THING", "x-auth", "OPENAI_APIKEY"]) {
    assert(secretLooking(name, "abc123"), name);
  }
  for (const name of ["PATH", "AUTHOR", "MAX_TOKENS", "TOKENIZER", "LOG_LEVEL", "HOME"]) {
    assert(!secretLooking(name, "abc123"), name);
  }
  for (const value of ["", "42", "-1", "true", "OFF"]) assert(!secretLooking("API_KEY", value));
  for (
    const value of [
      "-----BEGIN OPENSSH PRIVATE KEY-----\nabc",
      "postgres://app:s3cret@db:5432/x",
      "xoxb-1234567890-abcdef",
      "AKIAABCDEFGHIJKLMNOP",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig",
    ]
  ) assert(secretLooking("NOTE", value), value);
  assertEquals(urlWithoutCredentials("https://h.example/x?q=1"), null);
  assertEquals(urlWithoutCredentials("not a url"), null);
  assertEquals(
    urlWithoutCredentials("https://h.example/x?access_token=t&q=1"),
    "https://h.example/x?q=1",
  );
});

Deno.test("mcpEnv: only allowed values, strings only, last wins, invalid names reported, proxy skips Anthropic keys", () => {
  const settings = {
    mcpServers: {
      b: { env: { X: "from-b", N: 1, "bad-name": "v", ANTHROPIC_API_KEY: "k" } },
      a: { env: { X: "from-a", Y: "y" } },
    },
  };
  const claudeJson = {
    mcpServers: { u: { env: { Z: "z" } } },
    projects: { "/repo": { mcpServers: { p: { env: { X: "from-project" } } } } },
  };
  const sources = [
    { json: settings, file: "~/.claude/settings.json" },
    { json: null, file: "none" },
    { json: claudeJson, file: "~/.claude.json" },
  ];
  const all = new GuestSecretAllowList(["mcp.*.env.*"]);
  const got = mcpEnv(sources, { proxy: true, projectPath: "/repo", allow: all });
  assertEquals(got.vars, [["X", "from-project"], ["Y", "y"], ["Z", "z"]]);
  assertEquals(got.invalid, ["bad-name"]);
  assertEquals(got.skippedForProxy, ["ANTHROPIC_API_KEY"]);
  assertEquals(got.leftOut, []);
  assertEquals(mcpEnv(sources.slice(0, 1), { proxy: false, allow: all }).vars, [
    ["ANTHROPIC_API_KEY", "k"],
    ["X", "from-b"],
    ["Y", "y"],
  ]);
  const nothing = mcpEnv(sources, { proxy: true, projectPath: "/repo", allow: none });
  assertEquals(nothing.vars, []);
  assertEquals(nothing.leftOut.map((l) => `${l.file} ${optInEntry(l.slot)}`), [
    "~/.claude/settings.json mcp.a.env.X",
    "~/.claude/settings.json mcp.a.env.Y",
    "~/.claude/settings.json mcp.b.env.X",
    "~/.claude/settings.json mcp.b.env.bad-name",
    "~/.claude.json mcp.u.env.Z",
    "~/.claude.json mcp.p.env.X",
  ]);
  const one = mcpEnv(sources, {
    proxy: true,
    allow: new GuestSecretAllowList(["mcp.u.env.Z"]),
  });
  assertEquals(one.vars, [["Z", "z"]]);
});

Deno.test("leftOutNote: names only, deduplicated, capped, with a quoted opt-in example", () => {
  assertEquals(leftOutNote([]), null);
  const note = leftOutNote([
    { slot: { kind: "mcp_env", server: "github", name: "GITHUB_TOKEN" }, file: "a" },
    { slot: { kind: "mcp_env", server: "github", name: "GITHUB_TOKEN" }, file: "b" },
    { slot: { kind: "env", name: "NPM_TOKEN" }, file: "a" },
  ]);
  assertEquals(
    note,
    'host secrets left out of the sandbox: MCP server "github" env GITHUB_TOKEN, settings.json ' +
      "env NPM_TOKEN; to let one in, add it to guest_secrets (e.g. tachikoma config set " +
      "guest_secrets 'mcp.github.env.GITHUB_TOKEN')",
  );
  const many = leftOutNote(
    Array.from({ length: 11 }, (_, i) => ({
      slot: { kind: "env" as const, name: `K${i}_TOKEN` },
      file: "a",
    })),
  )!;
  assertStringIncludes(many, ", and 3 more;");
  assertEquals(
    optInEntry({ kind: "mcp_header", server: "odd name", name: "X-Key" }),
    "mcp.*.headers.X-Key",
  );
});

Deno.test("stableJson sorts keys at every level", () => {
  assertEquals(
    stableJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } }),
    '{\n  "a": {\n    "c": null,\n    "d": [\n      {\n        "y": 2,\n        "z": 1\n      }\n    ]\n  },\n  "b": 1\n}\n',
  );
});

Deno.test("patchClaudeJson is idempotent and merges MCP servers", () => {
  const once = patchClaudeJson({ numStartups: 0, mcpServers: { mine: {} } }, {
    mcpServers: { host: { command: "h" } },
    approveApiKey: "a-very-long-placeholder-key-123",
  });
  assertEquals(once, {
    numStartups: 1,
    mcpServers: { mine: {}, host: { command: "h" } },
    hasCompletedOnboarding: true,
    customApiKeyResponses: { approved: ["-placeholder-key-123"], rejected: [] },
  });
  assertEquals(
    patchClaudeJson(once, {
      mcpServers: { host: { command: "h" } },
      approveApiKey: "a-very-long-placeholder-key-123",
    }),
    once,
  );
});

Deno.test("claudeShareName matches the names core's buildShares gives", async () => {
  const dirs = ["rules", "My_Skills", "agents-2"];
  const shares = await buildShares({
    worktreePath: "/w",
    gitCommonDir: "/r/.git",
    worktreeGitDir: "/r/.git/worktrees/w",
    repoRoot: "/r",
    home: "/h",
    claudeDirs: dirs,
    isDir: () => Promise.resolve(true),
  });
  for (const d of dirs) {
    const s = shares.find((x) => x.hostPath === `/h/.claude/${d}`);
    assertEquals(s?.name, claudeShareName(d));
    assertEquals(s?.readOnly, true);
  }
});

Deno.test("directInjection maps each credential kind (spec §5.2)", () => {
  assertEquals(directInjection({ kind: "api_key", value: "sk-1234567", label: "" }).vars, [[
    "ANTHROPIC_API_KEY",
    "sk-1234567",
  ]]);
  assertEquals(directInjection({ kind: "oauth_token", value: "tok-1234567", label: "" }).vars, [[
    "CLAUDE_CODE_OAUTH_TOKEN",
    "tok-1234567",
  ]]);
  const env = directInjection({
    kind: "env",
    vars: { AWS_REGION: "r", lower: "x", CLAUDE_CODE_USE_BEDROCK: "1" },
    label: "",
  });
  assertEquals(env.vars, [["AWS_REGION", "r"], ["CLAUDE_CODE_USE_BEDROCK", "1"]]);
  assertEquals(env.skipped, ["lower"]);
  assertEquals(
    directInjection({ kind: "credentials_file", content: "{}", label: "" }).credentialsFile,
    "{}",
  );
  assertEquals(directInjection(null).vars, []);
});

Deno.test("provision_scripts resolve against the repo root, ~/ against home", () => {
  assertEquals(resolveScriptPath("tools/a.sh", "/repo/", "/home/u"), "/repo/tools/a.sh");
  assertEquals(resolveScriptPath("/abs/a.sh", "/repo", "/home/u"), "/abs/a.sh");
  assertEquals(resolveScriptPath("~/a.sh", "/repo", "/home/u"), "/home/u/a.sh");
});

Deno.test("profileBody quotes every value and ends with cd", () => {
  assertEquals(profileBody([["A", "it's"], ["B", "$(x)\n`y`"]]), [
    "# Written by tachikoma at every provisioning: edits inside this block are lost.",
    "export A='it'\\''s'",
    "export B='$(x)\n`y`'",
    LOCAL_BIN_LINE,
    "cd '/mnt/tachikoma/code'",
  ]);
  assertThrows(() => profileBody([["BAD-NAME", "x"]]), Error, "invalid environment variable name");
});
