/**
 * Configuration: layered loading (`loadConfig`), defaults and the key table, the repo root,
 * and the config directory. Importing this module does not load zod or smol-toml; those are
 * imported by `load.ts` only when there is a config file or a `TACHIKOMA_*` variable to
 * validate (import `./schema.ts` or `./validate.ts` directly when you need them).
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
