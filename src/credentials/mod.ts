/**
 * Host credentials for Claude: the waterfall (Keychain → `CLAUDE_CODE_OAUTH_TOKEN` →
 * `credential_command` → Claude's credentials file → `ANTHROPIC_API_KEY` → `api_key_command`
 * → Bedrock/Vertex) and the TTL cache the proxy keeps in front of it. Every value found is
 * registered with `registerSecret()` before anything can log it.
 *
 * @module
 */
export {
  type ApiKeyCredential,
  type Credential,
  type CredentialSettings,
  type CredentialSourceId,
  type CredentialWorld,
  kindFromPrefix,
  type OAuthCredential,
  type PassthroughCredential,
  SOURCE_LABELS,
  SOURCE_ORDER,
  type SourceAttempt,
  type WaterfallResult,
} from "./types.ts";
export { describeAttempts, hostWorld, runWaterfall } from "./waterfall.ts";
export {
  type CacheStatus,
  CredentialCache,
  type CredentialCacheOptions,
  DEFAULT_MISS_RETRY_MS,
} from "./cache.ts";
export { DEFAULT_COMMAND_TIMEOUT_MS } from "./sources/command.ts";
export { credentialsFilePath, parseClaudeCredentials } from "./sources/file.ts";
