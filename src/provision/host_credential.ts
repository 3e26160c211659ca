/**
 * Direct mode's default credential source: the host waterfall (`src/credentials/`), mapped to
 * what the guest gets (spec §5.2). Claude's credentials file is copied as the file (so Claude in
 * the guest can refresh its token), every other OAuth token becomes `CLAUDE_CODE_OAUTH_TOKEN`,
 * API keys `ANTHROPIC_API_KEY`, Bedrock/Vertex their provider variables. Only used when
 * `credential_proxy = false`.
 *
 * @module
 */
import type { ProvisionContext } from "./contract.ts";
import { log } from "../lib/log.ts";
import type { GuestCredential } from "./credentials.ts";

/** Runs the host credential waterfall and maps its result for the guest. */
export async function waterfallCredential(ctx: ProvisionContext): Promise<GuestCredential | null> {
  const m = await import("../credentials/mod.ts");
  const world = m.hostWorld();
  const { credential } = await m.runWaterfall({
    credential_command: ctx.config.credential_command,
    api_key_command: ctx.config.api_key_command,
  }, world);
  if (!credential) return null;
  const label = credential.source;
  switch (credential.kind) {
    case "api_key":
      return { kind: "api_key", value: credential.value, label };
    case "oauth": {
      if (credential.source === "credentials_file") {
        const path = m.credentialsFilePath(world);
        if (path) {
          try {
            return { kind: "credentials_file", content: await world.readTextFile(path), label };
          } catch (error) {
            log.debug(`cannot re-read ${path} (${error}); injecting the token instead`);
          }
        }
      }
      return { kind: "oauth_token", value: credential.value, label };
    }
    case "passthrough":
      return { kind: "env", vars: credential.vars, label };
  }
}
