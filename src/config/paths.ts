/**
 * Where tachikoma keeps its files. One directory holds config.toml, state.json, state.lock,
 * proxy files, logs and known_hosts: `$TACHIKOMA_CONFIG_DIR`, else
 * `$XDG_CONFIG_HOME/tachikoma`, else `~/.config/tachikoma` (on every OS).
 *
 * @module
 */

/** Environment lookup (injectable for tests). */
export type EnvGetter = (name: string) => string | undefined;

const realEnv: EnvGetter = (name) => Deno.env.get(name);

/** The user's home directory. */
export function homeDir(env: EnvGetter = realEnv): string {
  const home = env("HOME") ?? env("USERPROFILE");
  if (!home) throw new Error("HOME is not set");
  return home;
}

/** The tachikoma config/state directory. */
export function configDir(env: EnvGetter = realEnv): string {
  const explicit = env("TACHIKOMA_CONFIG_DIR");
  if (explicit) return explicit;
  const xdg = env("XDG_CONFIG_HOME");
  if (xdg) return `${xdg}/tachikoma`;
  return `${homeDir(env)}/.config/tachikoma`;
}

/** The legacy macOS location tachikoma (Rust) used: `~/Library/Application Support/tachikoma`. */
export function legacyMacConfigDir(env: EnvGetter = realEnv): string {
  return `${homeDir(env)}/Library/Application Support/tachikoma`;
}

/** Files inside the config directory. */
export function paths(dir: string = configDir()): {
  dir: string;
  config: string;
  state: string;
  stateLock: string;
  locks: string;
  logs: string;
  knownHosts: string;
  proxyPid: string;
  proxyLock: string;
  proxyLog: string;
  profiles: string;
} {
  return {
    dir,
    config: `${dir}/config.toml`,
    state: `${dir}/state.json`,
    stateLock: `${dir}/state.lock`,
    locks: `${dir}/locks`,
    logs: `${dir}/logs`,
    knownHosts: `${dir}/known_hosts`,
    proxyPid: `${dir}/proxy.pid`,
    proxyLock: `${dir}/proxy.lock`,
    proxyLog: `${dir}/logs/proxy.log`,
    profiles: `${dir}/profiles`,
  };
}
