/**
 * The egress policy of a sandbox's repository: its merged configuration (`egress`,
 * `egress_allow` from the user config, `.tachikoma.toml`, `.tachikoma.local.toml` and the
 * proxy's environment), loaded on first use and again as soon as one of those files changes
 * (size, mtime or inode; always while a change is younger than {@link RACY_MS}), so an edited
 * allowlist applies to the next request without restarting the proxy. A configuration that
 * cannot be loaded fails closed: that sandbox's egress is refused, with the reason, until it is
 * fixed.
 *
 * @module
 */
import { type Clock, systemClock } from "../lib/clock.ts";
import { errorMessage } from "../lib/errors.ts";
import { Logger } from "../lib/log.ts";
import { EgressPolicy } from "./egress.ts";
import { RACY_MS } from "./token_registry.ts";

/** Loads a repository's policy and names the files it depends on. */
export interface RepoPolicySource {
  /** The policy of the repository at `root` (throws when its configuration is invalid). */
  load(root: string): Promise<EgressPolicy>;
  /** The files whose change means the policy must be loaded again. */
  files(root: string): Promise<string[]>;
}

/**
 * The real source: the configuration as `tachikoma` would load it in `root`, with `env` (the
 * proxy's environment by default) for the config directory and `TACHIKOMA_*` overrides.
 */
export function configPolicySource(
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): RepoPolicySource {
  return {
    async load(root) {
      const { loadConfig } = await import("../config/load.ts");
      const loaded = await loadConfig({
        cwd: root,
        env,
        envNames: () => [],
        logger: quietLogger(),
      });
      return EgressPolicy.fromConfig(loaded.config);
    },
    async files(root) {
      const { configFiles } = await import("../config/load.ts");
      const f = configFiles({ cwd: root, env });
      return [f.legacyGlobal ?? f.global, f.repo, f.local].filter((p): p is string => p !== null);
    },
  };
}

function quietLogger(): Logger {
  // Config warnings (unknown keys…) belong to the user's commands, not to every proxy request.
  return new Logger({ level: "error", sink: () => {} });
}

function stampOf(paths: string[]): { stamp: string; newest: number } {
  const parts: string[] = [];
  let newest = -Infinity;
  for (const p of paths) {
    try {
      const info = Deno.statSync(p);
      const mtime = info.mtime?.getTime() ?? 0;
      newest = Math.max(newest, mtime);
      parts.push(`${p}:${info.ino ?? 0}:${info.size}:${mtime}`);
    } catch {
      parts.push(`${p}:absent`);
    }
  }
  return { stamp: parts.join("|"), newest };
}

interface Entry {
  policy: EgressPolicy;
  files: string[];
  stamp: string;
  newest: number;
}

/** Policies by repository root, reloaded when their configuration files change. */
export class RepoPolicies {
  readonly #source: RepoPolicySource;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #entries = new Map<string, Entry>();
  readonly #warned = new Map<string, string>();

  constructor(options: { source?: RepoPolicySource; clock?: Clock; logger: Logger }) {
    this.#source = options.source ?? configPolicySource();
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger;
  }

  /** The policy for the repository at `root`. */
  async get(root: string): Promise<EgressPolicy> {
    const cached = this.#entries.get(root);
    if (cached && this.#clock.now() - cached.newest >= RACY_MS) {
      const { stamp } = stampOf(cached.files);
      if (stamp === cached.stamp) return cached.policy;
    }
    let files: string[] = [];
    try {
      files = await this.#source.files(root);
    } catch {
      // no config dir (HOME unset): load() says why
    }
    const { stamp, newest } = stampOf(files);
    let policy: EgressPolicy;
    try {
      policy = await this.#source.load(root);
      this.#warned.delete(root);
    } catch (error) {
      const reason = `the configuration of ${root} is invalid (${errorMessage(error)})`;
      if (this.#warned.get(root) !== reason) {
        this.#warned.set(root, reason);
        this.#logger.warn(`egress refused for sandboxes of ${root}: ${reason}`);
      }
      policy = EgressPolicy.refuseAll(reason);
    }
    this.#entries.set(root, { policy, files, stamp, newest });
    return policy;
  }
}
