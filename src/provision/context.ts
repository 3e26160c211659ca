/**
 * What every provisioning step gets: the host side ({@link HostContext}: config, host files,
 * git identity, credentials, proxy environment — read once per run and cached) and the guest
 * ({@link Guest}). A step is `inputs` (host only, hashed for `--reprovision`) plus `run`.
 *
 * @module
 */
import type { ProvisionContext } from "./contract.ts";
import type { CommandRunner } from "../lib/process.ts";
import { errorMessage } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { ConfigSourceKind } from "../config/load.ts";
import type { KnownHosts } from "../ssh/known_hosts.ts";
import { git } from "../git/run.ts";
import type { GuestCredential } from "./credentials.ts";
import { isJsonObject, type JsonObject } from "./claude_settings.ts";
import type { Guest } from "./guest.ts";
import { ProvisionError } from "./errors.ts";

/** Dependencies of the provisioner (everything else comes from the {@link ProvisionContext}). */
export interface ProvisionerDeps {
  /** Runs host programs (git, ssh-keygen). */
  runner: CommandRunner;
  /** Host home directory. */
  home: string;
  /** Host environment lookup. */
  env: (name: string) => string | undefined;
  /**
   * The guest environment for the credential proxy (`ANTHROPIC_BASE_URL`, `HTTP(S)_PROXY`,
   * `NO_PROXY`… — no credential), required when `credential_proxy` is on. Core passes the
   * proxy module's `proxyGuestEnv(config, backendName)`.
   */
  proxyEnv?: (ctx: ProvisionContext) => Record<string, string> | Promise<Record<string, string>>;
  /** The host credential to inject when `credential_proxy` is off (the waterfall). */
  credential?: (ctx: ProvisionContext) => Promise<GuestCredential | null>;
  /** Where config values came from (`provision_scripts` from a committed repo config warns). */
  configSources?: Record<string, { kind: ConfigSourceKind; file?: string }>;
  /** URL of Claude Code's install script (tests point it at a lab-local server). */
  claudeInstallUrl: string;
  /** tachikoma's pinned host keys (default: `<stateDir>/known_hosts`). */
  knownHosts?: KnownHosts;
  /** Where warnings go (stderr). */
  logger: Logger;
}

/** A step: host inputs (hashed for `--reprovision`) and the guest work. */
export interface StepDef<I = unknown> {
  /** Stable name recorded in state (`last_step`). */
  readonly name: string;
  /** Progress label. */
  readonly label: string;
  /** The step reaches the network: it waits for the guest's (`ProvisionContext.network`). */
  readonly needsNetwork?: boolean;
  inputs(host: HostContext): Promise<I>;
  run(host: HostContext, guest: Guest, inputs: I): Promise<void>;
}

/** The host side of one provisioning run. */
export class HostContext {
  readonly ctx: ProvisionContext;
  readonly deps: ProvisionerDeps;
  readonly #cache = new Map<string, Promise<unknown>>();
  readonly #warned = new Set<string>();

  constructor(ctx: ProvisionContext, deps: ProvisionerDeps) {
    this.ctx = ctx;
    this.deps = deps;
  }

  /** Logs a warning once per run. */
  warn(message: string): void {
    if (this.#warned.has(message)) return;
    this.#warned.add(message);
    this.deps.logger.warn(message);
  }

  /** `fn()` computed once per run. */
  cached<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let p = this.#cache.get(key) as Promise<T> | undefined;
    if (!p) {
      p = fn();
      this.#cache.set(key, p);
    }
    return p;
  }

  /** The host repo root (the main checkout). */
  get repoRoot(): string {
    return this.ctx.record.repo_root ?? this.ctx.record.worktree_path;
  }

  /** A host JSON file: null when missing; a warning and null when unreadable or not an object. */
  readJson(path: string): Promise<JsonObject | null> {
    return this.cached(`json:${path}`, async () => {
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return null;
        this.warn(`cannot read ${path}: ${errorMessage(error)}; skipping it`);
        return null;
      }
      try {
        const value = JSON.parse(text);
        if (isJsonObject(value)) return value;
        this.warn(`${path} is not a JSON object; skipping it`);
      } catch (error) {
        this.warn(`${path} is not valid JSON (${errorMessage(error)}); skipping it`);
      }
      return null;
    });
  }

  /** Host `~/.claude/settings.json`. */
  claudeSettings(): Promise<JsonObject | null> {
    return this.readJson(`${this.deps.home}/.claude/settings.json`);
  }

  /** Host `~/.claude.json`. */
  claudeJson(): Promise<JsonObject | null> {
    return this.readJson(`${this.deps.home}/.claude.json`);
  }

  /** The host's git identity for this repo (`git config user.name` / `user.email`). */
  gitIdentity(): Promise<{ name: string | null; email: string | null }> {
    return this.cached("git-identity", async () => {
      const cwd = await exists(this.ctx.record.worktree_path)
        ? this.ctx.record.worktree_path
        : await exists(this.repoRoot)
        ? this.repoRoot
        : this.deps.home;
      const get = async (key: string) => {
        const r = await git(this.deps.runner, cwd, ["config", "--get", key]);
        const v = r.code === 0 ? r.stdout.replace(/\r?\n$/, "") : "";
        return v === "" ? null : v;
      };
      return { name: await get("user.name"), email: await get("user.email") };
    });
  }

  /** The guest proxy environment (proxy mode); throws when the caller supplied none. */
  proxyEnv(step: string): Promise<Record<string, string>> {
    return this.cached("proxy-env", async () => {
      if (!this.deps.proxyEnv) {
        throw new ProvisionError(
          step,
          "the guest needs the proxy (credential_proxy or a restricted egress) but no proxy environment was supplied to provisioning",
        );
      }
      return { ...(await this.deps.proxyEnv(this.ctx)) };
    });
  }

  /** The credential for direct mode (null when none or no waterfall was supplied). */
  credential(): Promise<GuestCredential | null> {
    return this.cached("credential", async () => {
      if (!this.deps.credential) {
        this.warn("credential_proxy is off but no credential source is available; none injected");
        return null;
      }
      const c = await this.deps.credential(this.ctx);
      if (!c) this.warn("no Claude credential found on the host; none injected into the sandbox");
      return c;
    });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
