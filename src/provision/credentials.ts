/**
 * What the guest gets for credentials. With `credential_proxy = true` (the default) it gets the
 * proxy environment only — a base URL and HTTP(S)_PROXY, no credential — and a
 * `~/.claude/.credentials.json` is never copied in (one left from direct mode is removed).
 * With `credential_proxy = false` the host credential found by the waterfall is injected
 * (tachikoma's direct mode, spec §5.2).
 *
 * @module
 */
import { isEnvName } from "../lib/shell.ts";
import { registerSecret } from "../lib/redact.ts";

/** The host credential to inject in direct mode (the waterfall's result, spec §5.1). */
export type GuestCredential =
  /** Keychain, `ANTHROPIC_API_KEY`, `api_key_command` → `ANTHROPIC_API_KEY`. */
  | { kind: "api_key"; value: string; label: string }
  /** `CLAUDE_CODE_OAUTH_TOKEN`, `credential_command` → `CLAUDE_CODE_OAUTH_TOKEN`. */
  | { kind: "oauth_token"; value: string; label: string }
  /** `~/.claude/.credentials.json` → the same file in the guest (0600). */
  | { kind: "credentials_file"; content: string; label: string }
  /** Bedrock / Vertex / custom base URL variables → exported as they are. */
  | { kind: "env"; vars: Record<string, string>; label: string };

/** Names that carry Anthropic credentials or redirect Claude's API traffic. */
export const ANTHROPIC_KEYS: readonly string[] = [
  "ANTHROPIC_API_KEY",
  "CLAUDE_CODE_OAUTH_TOKEN",
  "ANTHROPIC_BASE_URL",
];

/** Provider variables (spec §5.2: `[A-Z_][A-Z0-9_]*`, uppercase only). */
const PROVIDER_NAME_RE = /^[A-Z_][A-Z0-9_]*$/;

/** The guest side of a direct-mode credential. */
export interface DirectInjection {
  /** Variables for the profile block. */
  vars: [string, string][];
  /** Content for `~/.claude/.credentials.json`, or null. */
  credentialsFile: string | null;
  /** Skipped variable names (invalid). */
  skipped: string[];
}

/** Maps a credential to profile variables / a credentials file; registers every secret. */
export function directInjection(credential: GuestCredential | null): DirectInjection {
  const out: DirectInjection = { vars: [], credentialsFile: null, skipped: [] };
  if (!credential) return out;
  switch (credential.kind) {
    case "api_key":
      registerSecret(credential.value);
      out.vars.push(["ANTHROPIC_API_KEY", credential.value]);
      break;
    case "oauth_token":
      registerSecret(credential.value);
      out.vars.push(["CLAUDE_CODE_OAUTH_TOKEN", credential.value]);
      break;
    case "credentials_file":
      registerSecret(credential.content.trim());
      for (
        const m of credential.content.matchAll(/"(?:accessToken|refreshToken)"\s*:\s*"([^"]+)"/g)
      ) {
        registerSecret(m[1]);
      }
      out.credentialsFile = credential.content;
      break;
    case "env":
      for (const [k, v] of Object.entries(credential.vars).sort(([a], [b]) => a < b ? -1 : 1)) {
        if (!PROVIDER_NAME_RE.test(k) || !isEnvName(k)) {
          out.skipped.push(k);
          continue;
        }
        if (/KEY|SECRET|TOKEN|CREDENTIALS/.test(k)) registerSecret(v);
        out.vars.push([k, v]);
      }
      break;
  }
  return out;
}
