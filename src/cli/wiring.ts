/**
 * The application's wiring for one CLI command: the production services behind
 * {@link AppServices}. Everything heavy is imported on first use, so `--help` and light
 * commands load none of it.
 *
 * @module
 */
import type { AppServices } from "../commands/context.ts";
import type { Backend } from "../backends/backend.ts";
import type { ListScope } from "../core/inventory.ts";
import type { ListResult } from "../core/service_types.ts";
import { type BackendName, BACKENDS, defaultBackend } from "../config/defaults.ts";
import type { LoadedConfig } from "../config/load.ts";
import type { LifecycleDeps } from "../core/lifecycle.ts";
import type { SandboxService } from "../core/sandbox_service.ts";
import type { Reporter } from "../lib/progress.ts";

/** Inputs of {@link appServices}. */
export interface WiringOptions {
  /** The command's working directory. */
  cwd: string;
  /** The global `--backend` flag. */
  backend?: BackendName;
  /** The command's progress reporter. */
  progress: Reporter;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
  /** Loads (once) the merged configuration. */
  config(): Promise<LoadedConfig>;
}

/**
 * The module of each built-in engine (the one `src/backends/engines.ts` imports to open it),
 * loaded — not opened — while the backends' face loads: started after the face, it arrived
 * 25–150 ms later (timing marks, load 6), the last module `exec` waited for. Opening still goes
 * through the registry.
 */
const ENGINE_MODULES: Readonly<Record<BackendName, () => Promise<unknown>>> = {
  incus: () => import("../backends/incus/mod.ts"),
  tart: () => import("../backends/tart/mod.ts"),
  truenas: () => import("../backends/truenas/mod.ts"),
};

/** The production services of a command. */
export function appServices(options: WiringOptions): AppServices {
  let deps: Promise<LifecycleDeps> | undefined;
  const lifecycleDeps = () =>
    deps ??= Promise.all([options.config(), import("./open_deps.ts")]).then(([loaded, m]) =>
      m.openLifecycleDeps({ loaded, reporter: options.progress, signal: options.signal })
    );
  let service: Promise<SandboxService> | undefined;
  // Every module a command needs loads at once (one after the other, each dynamic import waits
  // for the last: ~10-20 ms a step on a busy machine), the engine's as soon as the
  // configuration names it. The engine the flag, the environment or the platform names is
  // loaded with the backends' face, without waiting for it or the configuration files (they
  // rarely name another one).
  let face: Promise<typeof import("../backends/mod.ts")> | undefined;
  const backends = () => {
    if (face) return face;
    face = import("../backends/mod.ts");
    const likely = likelyBackend(options.backend);
    if (likely) {
      void ENGINE_MODULES[likely]().catch(() => {});
      // what the registry preloads for that name (the same module, unless a test installed a
      // double in its place)
      void face.then((m) => m.preloadEngineNamed(likely)).catch(() => {});
    }
    void Promise.all([options.config(), face])
      .then(([loaded, m]) =>
        loaded.config.backend === likely ? undefined : m.preloadBackend(loaded.config)
      )
      .catch(() => {}); // the command reports a bad configuration itself
    return face;
  };
  // `list`'s lean path: only what a list reads — the state store, the engine, the inventory
  // (and, for the default scope, the repo around cwd) — not the lifecycle dependencies.
  const listSandboxes = async (scope: ListScope): Promise<ListResult> => {
    const scoped = scope.repo === undefined && !scope.all;
    const [loaded, m, inventory, state, here] = await Promise.all([
      options.config(),
      backends(),
      import("../core/inventory.ts"),
      import("../state/store.ts"),
      scoped ? import("./open_repo.ts") : undefined,
    ]);
    const stateDir = loaded.files.dir;
    const store = new state.StateStore(stateDir);
    let opened: Promise<Backend> | undefined;
    return await inventory.listSandboxes({
      records: async () => (await store.read()).vms,
      backend: () => opened ??= m.openBackend(loaded.config, { stateDir }),
      configuredBackend: loaded.config.backend,
      repo: () => here ? here.repoAround(store, options.cwd) : Promise.resolve(null),
    }, scope);
  };
  const lists = new Map<string, Promise<ListResult>>();
  return {
    lifecycleDeps,
    service() {
      if (service) return service;
      void backends();
      service = Promise.all([lifecycleDeps(), import("../core/sandbox_service.ts")])
        .then(([d, m]) => new m.SandboxService(d, options.cwd));
      return service;
    },
    listSandboxes(scope) {
      // One list per scope and command: `list` starts it while its own module loads.
      const key = JSON.stringify([scope.repo, scope.all]);
      let listed = lists.get(key);
      if (!listed) lists.set(key, listed = listSandboxes(scope));
      return listed;
    },
    async openBackend(config) {
      const [loaded, m] = await Promise.all([options.config(), import("../backends/mod.ts")]);
      return await m.openBackend(config, { stateDir: loaded.files.dir });
    },
    async mcpContext() {
      const m = await import("./mcp_context.ts");
      return m.productionContext({ cwd: options.cwd, backend: options.backend });
    },
  };
}

/**
 * The engine a command most likely opens, known before the configuration files are read: the
 * `--backend` flag, else `TACHIKOMA_BACKEND`, else the platform's default (undefined when the
 * variable holds no engine name: the configuration then reports it).
 */
export function likelyBackend(
  flag: BackendName | undefined,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): BackendName | undefined {
  if (flag) return flag;
  const named = env("TACHIKOMA_BACKEND")?.trim();
  if (!named) return defaultBackend();
  return (BACKENDS as readonly string[]).includes(named) ? named as BackendName : undefined;
}
