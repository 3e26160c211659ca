import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { DenoCommandRunner } from "../../../src/lib/process.ts";
import { redact } from "../../../src/lib/redact.ts";
import { runWaterfall } from "../../../src/credentials/waterfall.ts";
import { fakeWorld } from "./world.ts";

const CREDS = "/home/u/.claude/.credentials.json";
const NOW = 1_700_000_000_000;

function oauthFile(token: string, expiresAt?: number): string {
  return JSON.stringify({
    claudeAiOauth: { accessToken: token, refreshToken: "r-" + token, expiresAt, scopes: [] },
  });
}

Deno.test("waterfall: the Keychain wins on macOS, with an API key", async () => {
  const f = fakeWorld({
    os: "darwin",
    env: { CLAUDE_CODE_OAUTH_TOKEN: "env-oauth-token-1", ANTHROPIC_API_KEY: "env-api-key-1" },
    scripts: {
      "security find-generic-password -s Claude Code -w": { stdout: "keychain-api-key-1\n" },
    },
  });
  const r = await runWaterfall({}, f.world);
  assertEquals(r.credential, { kind: "api_key", source: "keychain", value: "keychain-api-key-1" });
  assertEquals(r.attempts.map((a) => a.outcome), ["hit"]);
});

Deno.test("waterfall: the Keychain's OAuth entry is used (on the host) when no API key is stored", async () => {
  const f = fakeWorld({
    os: "darwin",
    scripts: {
      "security find-generic-password -s Claude Code -w": {
        code: 44,
        stderr: "could not be found",
      },
      "security find-generic-password -s Claude Code-credentials -w": {
        stdout: oauthFile("keychain-oauth-token", NOW + 3600_000),
      },
    },
  });
  const r = await runWaterfall({}, f.world);
  assertEquals(r.credential?.kind, "oauth");
  assertEquals(r.credential?.source, "keychain");
  assertEquals((r.credential as { value: string }).value, "keychain-oauth-token");
});

Deno.test("waterfall: the Keychain is never asked on Linux", async () => {
  const f = fakeWorld({ env: { ANTHROPIC_API_KEY: "env-api-key-2" } });
  const r = await runWaterfall({}, f.world);
  assertEquals(r.credential?.source, "api_key_env");
  assertEquals(f.runner.calls.filter((c) => c.cmd === "security").length, 0);
  assertEquals(r.attempts[0], { source: "keychain", outcome: "skipped", reason: "not macOS" });
});

Deno.test("waterfall: CLAUDE_CODE_OAUTH_TOKEN beats commands, files and API keys", async () => {
  const f = fakeWorld({
    env: { CLAUDE_CODE_OAUTH_TOKEN: "  env-oauth-token-2\n", ANTHROPIC_API_KEY: "k-3456789" },
    files: { [CREDS]: oauthFile("file-token-xyz", NOW + 3600_000) },
  });
  const r = await runWaterfall({ credential_command: "print-token" }, f.world);
  assertEquals(r.credential, { kind: "oauth", source: "oauth_env", value: "env-oauth-token-2" });
  assertEquals(f.runner.calls.length, 0);
});

Deno.test("waterfall: credential_command output is trimmed; its prefix decides the kind", async () => {
  const f = fakeWorld({
    scripts: { "sh -c print-token": { stdout: "\n  cmd-oauth-token-1  \n" } },
  });
  const r = await runWaterfall({ credential_command: "print-token" }, f.world);
  assertEquals(r.credential, {
    kind: "oauth",
    source: "credential_command",
    value: "cmd-oauth-token-1",
  });

  const g = fakeWorld({
    scripts: { "sh -c print-key": { stdout: "sk-ant-api03-fromcommand\n" } },
  });
  const s = await runWaterfall({ credential_command: "print-key" }, g.world);
  assertEquals(s.credential?.kind, "api_key");
});

Deno.test("waterfall: a failing command logs why without the secret and falls through", async () => {
  const secret = "leaky-secret-from-failing-cmd";
  const f = fakeWorld({
    env: { ANTHROPIC_API_KEY: "env-api-key-fallback" },
    scripts: {
      "sh -c vault read": {
        code: 3,
        stdout: secret + "\n",
        stderr: `warning\nerror: token ${secret} is revoked\n`,
      },
    },
  });
  const r = await runWaterfall({ credential_command: "vault read" }, f.world);
  assertEquals(r.credential?.source, "api_key_env");
  const failed = r.attempts.find((a) => a.source === "credential_command")!;
  assertEquals(failed.outcome, "error");
  assertStringIncludes(failed.reason!, "exited with code 3");
  const log = f.lines.join("\n");
  assertStringIncludes(log, "credential_command failed: exited with code 3");
  assert(!log.includes(secret), `secret leaked into the log: ${log}`);
  assert(!JSON.stringify(r.attempts).includes(secret));
  assertEquals(redact(`x ${secret} y`), "x [REDACTED] y");
});

Deno.test("waterfall: commands run with a timeout; a timed-out command falls through", async () => {
  const f = fakeWorld({
    env: { ANTHROPIC_API_KEY: "env-api-key-after-timeout" },
    scripts: { "sh -c slow": { code: -1, timedOut: true } },
  });
  const r = await runWaterfall({ credential_command: "slow", commandTimeoutMs: 1500 }, f.world);
  assertEquals(r.credential?.source, "api_key_env");
  assertEquals(f.runner.calls[0].options.timeoutMs, 1500);
  assertStringIncludes(f.lines.join("\n"), "timed out after 2 s");
});

Deno.test("waterfall: a real command that hangs is killed at the timeout", async () => {
  const f = fakeWorld({ env: { ANTHROPIC_API_KEY: "env-api-key-real-timeout" } });
  f.world.runner = new DenoCommandRunner();
  const started = performance.now();
  const r = await runWaterfall(
    { credential_command: "sleep 31.7; echo never", commandTimeoutMs: 300 },
    f.world,
  );
  const ms = performance.now() - started;
  assertEquals(r.credential?.source, "api_key_env");
  assert(ms < 5000, `took ${ms} ms`);
  assertStringIncludes(f.lines.join("\n"), "timed out");
  // The grandchild (sleep) died with its process group.
  const ps = await new Deno.Command("ps", { args: ["-eo", "args"], stdout: "piped" }).output();
  assert(!new TextDecoder().decode(ps.stdout).includes("sleep 31.7"), "sleep survived");
});

Deno.test("waterfall: the credentials file gives an OAuth token until expiresAt", async () => {
  const f = fakeWorld({ files: { [CREDS]: oauthFile("file-oauth-token-1", NOW + 3600_000) } });
  const r = await runWaterfall({}, f.world);
  assertEquals(r.credential, {
    kind: "oauth",
    source: "credentials_file",
    value: "file-oauth-token-1",
    expiresAt: NOW + 3600_000,
  });
});

Deno.test("waterfall: an expired OAuth file is skipped (with a hint) and the next source wins", async () => {
  const f = fakeWorld({
    env: { ANTHROPIC_API_KEY: "env-api-key-after-expiry" },
    files: { [CREDS]: oauthFile("expired-oauth-token", NOW - 1000) },
  });
  const r = await runWaterfall({}, f.world);
  assertEquals(r.credential?.source, "api_key_env");
  const attempt = r.attempts.find((a) => a.source === "credentials_file")!;
  assertEquals(attempt.outcome, "miss");
  assertStringIncludes(attempt.reason!, "expired");
  assertStringIncludes(f.lines.join("\n"), "run `claude` on the host");
  assert(!f.lines.join("\n").includes("expired-oauth-token"));
});

Deno.test("waterfall: a token expiring within a minute counts as expired", async () => {
  const f = fakeWorld({ files: { [CREDS]: oauthFile("nearly-expired-token", NOW + 30_000) } });
  assertEquals((await runWaterfall({}, f.world)).credential, null);
});

Deno.test("waterfall: CLAUDE_CONFIG_DIR moves the credentials file; bad JSON is a miss", async () => {
  const f = fakeWorld({
    env: { CLAUDE_CONFIG_DIR: "/etc/claude-alt/" },
    files: { "/etc/claude-alt/.credentials.json": oauthFile("alt-dir-token-1") },
  });
  assertEquals((await runWaterfall({}, f.world)).credential?.source, "credentials_file");
  const g = fakeWorld({ files: { [CREDS]: "{not json" } });
  const r = await runWaterfall({}, g.world);
  assertEquals(r.credential, null);
  assertStringIncludes(
    r.attempts.find((a) => a.source === "credentials_file")!.reason!,
    "not valid JSON",
  );
});

Deno.test("waterfall: ANTHROPIC_API_KEY, then api_key_command", async () => {
  const f = fakeWorld({ scripts: { "sh -c get-key": { stdout: "cmd-api-key-1\n" } } });
  const r = await runWaterfall({ api_key_command: "get-key" }, f.world);
  assertEquals(r.credential, {
    kind: "api_key",
    source: "api_key_command",
    value: "cmd-api-key-1",
  });
});

Deno.test("waterfall: Bedrock and Vertex are passthrough; secrets registered", async () => {
  const f = fakeWorld({
    env: {
      CLAUDE_CODE_USE_BEDROCK: "1",
      AWS_REGION: "eu-west-1",
      AWS_SECRET_ACCESS_KEY: "aws-secret-value-123",
    },
  });
  const r = await runWaterfall({}, f.world);
  assertEquals(r.credential?.kind, "passthrough");
  assertEquals(r.credential?.source, "bedrock");
  assertEquals(redact("aws-secret-value-123"), "[REDACTED]");
  const g = fakeWorld({ env: { CLAUDE_CODE_USE_VERTEX: "true", CLOUD_ML_REGION: "us-east5" } });
  assertEquals((await runWaterfall({}, g.world)).credential?.source, "vertex");
  const h = fakeWorld({ env: { CLAUDE_CODE_USE_BEDROCK: "0" } });
  assertEquals((await runWaterfall({}, h.world)).credential, null);
});

Deno.test("waterfall: nothing anywhere → null, with every source's outcome", async () => {
  const f = fakeWorld();
  const r = await runWaterfall({}, f.world);
  assertEquals(r.credential, null);
  assertEquals(r.attempts.map((a) => a.source), [
    "keychain",
    "oauth_env",
    "credential_command",
    "credentials_file",
    "api_key_env",
    "api_key_command",
    "bedrock",
    "vertex",
  ]);
});

Deno.test("waterfall: every credential found is registered as a secret", async () => {
  const f = fakeWorld({ env: { CLAUDE_CODE_OAUTH_TOKEN: "registered-oauth-token-9" } });
  await runWaterfall({}, f.world);
  assertEquals(redact("Bearer registered-oauth-token-9"), "Bearer [REDACTED]");
});
