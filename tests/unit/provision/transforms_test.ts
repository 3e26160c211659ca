import { assertEquals, assertThrows } from "@std/assert";
import {
  guestSettings,
  mcpEnv,
  patchClaudeJson,
  stableJson,
} from "../../../src/provision/claude_settings.ts";
import { claudeShareName } from "../../../src/provision/shares.ts";
import { buildShares } from "../../../src/provision/shares.ts";
import { directInjection } from "../../../src/provision/credentials.ts";
import { resolveScriptPath } from "../../../src/provision/scripts.ts";
import { profileBody } from "../../../src/provision/profile.ts";

Deno.test("guestSettings strips host hooks, statusLine, ~/Library/ denies; proxy drops credentials", () => {
  const host = {
    hooks: { Stop: [] },
    statusLine: { command: "x" },
    permissions: { deny: ["Read(~/Library/Keychains/**)", 3, "Bash(rm:*)"], allow: ["Read"] },
    apiKeyHelper: "/bin/key",
    env: { ANTHROPIC_API_KEY: "k", ANTHROPIC_AUTH_TOKEN: "t", ANTHROPIC_BASE_URL: "u", OTHER: "o" },
    mcpServers: { s: { env: { CLAUDE_CODE_OAUTH_TOKEN: "o", FOO: "f" } } },
  };
  assertEquals(guestSettings(host, { syncMcpServers: true, proxy: true }), {
    permissions: { deny: [3, "Bash(rm:*)"], allow: ["Read"] },
    env: { OTHER: "o" },
    mcpServers: { s: { env: { FOO: "f" } } },
  });
  const direct = guestSettings(host, { syncMcpServers: false, proxy: false });
  assertEquals(direct.apiKeyHelper, "/bin/key");
  assertEquals(direct.mcpServers, undefined);
  assertEquals(host.hooks, { Stop: [] }, "the input is not modified");
});

Deno.test("stableJson sorts keys at every level", () => {
  assertEquals(
    stableJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } }),
    '{\n  "a": {\n    "c": null,\n    "d": [\n      {\n        "y": 2,\n        "z": 1\n      }\n    ]\n  },\n  "b": 1\n}\n',
  );
});

Deno.test("mcpEnv: strings only, last wins, invalid names reported, proxy skips Anthropic keys", () => {
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
  assertEquals(mcpEnv([settings, null, claudeJson], { proxy: true, projectPath: "/repo" }), {
    vars: [["X", "from-project"], ["Y", "y"], ["Z", "z"]],
    invalid: ["bad-name"],
    skippedForProxy: ["ANTHROPIC_API_KEY"],
  });
  assertEquals(mcpEnv([settings], { proxy: false }).vars, [["ANTHROPIC_API_KEY", "k"], [
    "X",
    "from-b",
  ], ["Y", "y"]]);
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
    "cd '/mnt/tachikoma/code'",
  ]);
  assertThrows(() => profileBody([["BAD-NAME", "x"]]), Error, "invalid environment variable name");
});
