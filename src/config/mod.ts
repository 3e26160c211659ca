/**
 * Configuration: layered loading (`loadConfig`), defaults and the key table, the repo root,
 * and the config directory. Importing this module does not load zod or smol-toml: `load.ts`
 * imports smol-toml only to read a config file, and zod only when a value fails the hand-written
 * checks of `fast_check.ts` or is unknown (import `./schema.ts` or `./validate.ts` directly when
 * you need them).
 *
 * @module
 */
export {
  type ConfigFiles,
  configFiles,
  type ConfigSource,
  type ConfigSourceKind,
  displayPath,
  loadConfig,
  type LoadedConfig,
  type LoadOptions,
} from "./load.ts";
export {
  type BackendName,
  BACKENDS,
  defaultBackend,
  getKey,
  KEY_NAMES,
  KEYS,
  type KeySpec,
  type KeyType,
  SECTIONS,
} from "./defaults.ts";
export { defaultConfig } from "./default_config.ts";
export { ENV_VARS, envVarName } from "./env.ts";
export { findRepo, type RepoLocation } from "./repo_root.ts";
export { configDir, type EnvGetter, homeDir, paths } from "./paths.ts";
export type { Config } from "./schema.ts";
