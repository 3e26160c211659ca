/**
 * Cloud-provider passthrough: the host runs Claude through AWS Bedrock
 * (`CLAUDE_CODE_USE_BEDROCK`) or Google Vertex (`CLAUDE_CODE_USE_VERTEX`). The proxy cannot
 * turn these into Anthropic API calls (it answers 503 saying so); direct injection may copy
 * `vars`. Secret-looking values are registered.
 *
 * @module
 */
import { registerSecret } from "../../lib/redact.ts";
import type { CredentialWorld, SourceOutcome } from "../types.ts";

const BEDROCK_VARS = [
  "CLAUDE_CODE_USE_BEDROCK",
  "AWS_REGION",
  "AWS_PROFILE",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_BEARER_TOKEN_BEDROCK",
];
const VERTEX_VARS = [
  "CLAUDE_CODE_USE_VERTEX",
  "CLOUD_ML_REGION",
  "ANTHROPIC_VERTEX_PROJECT_ID",
  "GOOGLE_APPLICATION_CREDENTIALS",
];
const SECRET_VARS = new Set([
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_BEARER_TOKEN_BEDROCK",
]);

/** True for a set flag variable (`1`, `true`…; not empty, `0` or `false`). */
function flagSet(value: string | undefined): boolean {
  if (value === undefined) return false;
  const v = value.trim().toLowerCase();
  return v !== "" && v !== "0" && v !== "false" && v !== "no";
}

function collect(world: CredentialWorld, names: string[]): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const name of names) {
    const value = world.env(name);
    if (value === undefined) continue;
    if (SECRET_VARS.has(name)) registerSecret(value);
    vars[name] = value;
  }
  return vars;
}

/** `CLAUDE_CODE_USE_BEDROCK`. */
export function bedrockSource(world: CredentialWorld): SourceOutcome {
  if (!flagSet(world.env("CLAUDE_CODE_USE_BEDROCK"))) {
    return { outcome: "miss", reason: "CLAUDE_CODE_USE_BEDROCK not set" };
  }
  return {
    outcome: "hit",
    credential: { kind: "passthrough", source: "bedrock", vars: collect(world, BEDROCK_VARS) },
  };
}

/** `CLAUDE_CODE_USE_VERTEX`. */
export function vertexSource(world: CredentialWorld): SourceOutcome {
  if (!flagSet(world.env("CLAUDE_CODE_USE_VERTEX"))) {
    return { outcome: "miss", reason: "CLAUDE_CODE_USE_VERTEX not set" };
  }
  return {
    outcome: "hit",
    credential: { kind: "passthrough", source: "vertex", vars: collect(world, VERTEX_VARS) },
  };
}
