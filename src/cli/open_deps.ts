/**
 * The production {@link LifecycleDeps} from a loaded configuration: the state store in the
 * config dir, the configured backend (opened lazily, on first use), the real clock, git runner
 * and SSH banner probe, and the guest provisioner (imported only when a spawn needs it; its
 * recipe version comes from `src/provision/version.ts`, a module with no imports). Kept apart from the service so
 * `spawn` loads only what it uses.
 *
 * @module
 */
import type { LoadedConfig } from "../config/load.ts";
import { homeDir } from "../config/paths.ts";
import { StateStore } from "../state/store.ts";
import { systemClock } from "../lib/clock.ts";
import type { LifecycleDeps } from "../core/lifecycle.ts";
import { once } from "../core/lifecycle.ts";
import { defaultRunner } from "../lib/process.ts";
import type { Reporter } from "../lib/progress.ts";
import { tcpBannerProbe } from "../lib/probe.ts";
import { proxyLink } from "../core/proxy_link.ts";
import { PROVISION_VERSION } from "../provision/version.ts";

/** Inputs of {@link openLifecycleDeps}. */
export interface OpenDepsOptions {
  loaded: LoadedConfig;
  reporter: Reporter;
  signal?: AbortSignal;
}

/** The dependencies the CLI commands use. */
export function openLifecycleDeps(options: OpenDepsOptions): LifecycleDeps {
  const { config, files } = options.loaded;
  const stateDir = files.dir;
  const proxy = proxyLink(config, stateDir, options.signal);
  return {
    backend: once(async () => {
      const m = await import("../backends/mod.ts");
      return await m.openBackend(config, { stateDir });
    }),
    store: new StateStore(stateDir),
    config,
    stateDir,
    clock: systemClock,
    reporter: options.reporter,
    provisioner: once(async () => {
      const [m, registry] = await Promise.all([
        import("../provision/mod.ts"),
        import("../provision/registry.ts"),
      ]);
      const create = registry.installedProvisioner() ?? m.createProvisioner;
      return create({
        configSources: options.loaded.sources,
        proxyEnv: (ctx) => proxy.guestEnv(ctx),
      });
    }),
    provisionerVersion: PROVISION_VERSION,
    runner: defaultRunner,
    probe: tcpBannerProbe,
    proxy,
    home: homeDir(),
    signal: options.signal,
  };
}
