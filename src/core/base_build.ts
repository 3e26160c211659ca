/**
 * `image build [<base>]` and `image rm <base>`. A build, for each base of the chain root first
 * whose current recipe is not built yet (or the target itself with `force`): a sandbox
 * `tkb-<name>-<hash>` is created from the stock image (`image`) or cloned from the parent's
 * build (`from`); it is started without shares, a stock image gets the base provisioning steps
 * (bootstrap, profile, Claude Code; a `from` base has them from its parent), the setup script
 * runs as root (its output in `<state dir>/logs/base-<name>.log`), its size is measured
 * (`base_size.ts`), the sandbox is stopped and checkpointed `base`: only then does the base count as built. Any failure deletes the sandbox
 * of that build, so nothing half-made stays; older builds of the base go once the new one is
 * done. Builds (and `image rm`) hold one lock, `<state dir>/locks/bases.lock`, shared by the CLI
 * and the MCP daemon.
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import type { BaseEntry } from "../config/bases.ts";
import { baseChain } from "../config/bases.ts";
import { withFileLock } from "../lib/file_lock.ts";
import { errorMessage, RuntimeError } from "../lib/errors.ts";
import { redact } from "../lib/redact.ts";
import type { SandboxRecord } from "../state/schema.ts";
import { BASE_STEPS } from "../provision/contract.ts";
import {
  BASE_CHECKPOINT,
  baseBuilds,
  baseSandboxName,
  type BaseView,
  baseViews,
  configuredBases,
  recipeHashes,
  requireBase,
  requireBaseSupport,
  setupText,
  validateBaseName,
} from "./bases.ts";
import { chooseImage } from "./images.ts";
import { iso, type LifecycleDeps, stopTimeoutMs } from "./lifecycle.ts";
import { revokeProxyToken } from "./proxy_link.ts";
import { bootWait } from "./spawn_start.ts";
import { step } from "./step.ts";
import { forgetBaseSize, measureRootBytes, recordBaseSize } from "./base_size.ts";

/** Input of {@link buildBases}. */
export interface BuildRequest {
  /** The base to build (with its ancestors); absent: every base. */
  name?: string;
  /** Build the named base again even when it is ready. */
  force?: boolean;
}

/** One base after `image build`. */
export interface BaseBuilt extends BaseView {
  /** `built` by this run, or `ready` already. */
  action: "built" | "ready";
  /** Wall time of this base's build in ms (0 when it was ready). */
  elapsed_ms: number;
}

/** The path of the lock every base build and removal holds. */
export function basesLockPath(stateDir: string): string {
  return `${stateDir}/locks/bases.lock`;
}

/** The log of base `name`'s setup script. */
export function baseLogPath(stateDir: string, name: string): string {
  return `${stateDir}/logs/base-${name}.log`;
}

/** Builds `request.name` (its missing ancestors first) or every base. */
export async function buildBases(
  deps: LifecycleDeps,
  request: BuildRequest = {},
): Promise<{ backend: string; bases: BaseBuilt[] }> {
  const backend = await deps.backend();
  requireBaseSupport(backend);
  const bases = configuredBases(deps.config, backend.name);
  if (request.name !== undefined) requireBase(bases, request.name);
  return await withFileLock(basesLockPath(deps.stateDir), async () => {
    const hashes = await recipeHashes(deps.config, bases);
    const targets = request.name !== undefined ? [request.name] : Object.keys(bases).sort();
    const done = new Map<string, BaseBuilt>();
    for (const target of targets) {
      for (const link of baseChain(bases, target)) {
        if (done.has(link)) continue;
        const view = (await baseViews(deps.config, backend, deps.stateDir)).find((v) =>
          v.name === link
        )!;
        const again = request.force === true && link === target;
        if (view.status === "ready" && !again) {
          done.set(link, { ...view, action: "ready", elapsed_ms: 0 });
          continue;
        }
        const started = deps.clock.now();
        await buildOne(deps, backend, { name: link, base: bases[link], hashes, bases });
        const built = (await baseViews(deps.config, backend, deps.stateDir)).find((v) =>
          v.name === link
        )!;
        done.set(link, { ...built, action: "built", elapsed_ms: deps.clock.now() - started });
      }
    }
    return { backend: backend.name, bases: [...done.values()] };
  }, {
    signal: deps.signal,
    clock: deps.clock,
    waitMessage: "waiting for another base build (tachikoma image build) to finish",
  });
}

interface OneBuild {
  name: string;
  base: BaseEntry;
  hashes: Record<string, string>;
  bases: Record<string, BaseEntry>;
}

async function buildOne(deps: LifecycleDeps, backend: Backend, one: OneBuild): Promise<void> {
  const { config } = deps;
  const sandbox = baseSandboxName(one.name, one.hashes[one.name]);
  const script = await setupText(one.name, one.base);
  // A build of this recipe that did not finish: start over.
  await backend.delete(sandbox);
  try {
    if (one.base.image !== undefined) {
      const image = one.base.image;
      const choice = await chooseImage({
        ...deps,
        config: { ...config, base_image: image, incus: { ...config.incus, image } },
      }, backend);
      await step(deps, `base ${one.name}: creating ${sandbox}`, () =>
        backend.create(sandbox, {
          image: choice.image,
          label: choice.label,
          cpus: config.vm_cpus,
          memoryMb: config.vm_memory,
          diskGb: backend.name === "tart" ? config.tart.disk_size_gb : undefined,
        }));
    } else {
      const parent = baseSandboxName(one.base.from!, one.hashes[one.base.from!]);
      await step(
        deps,
        `base ${one.name}: cloning base ${one.base.from}`,
        () => backend.clone(sandbox, { sandbox: parent, checkpoint: BASE_CHECKPOINT }),
      );
    }
    await step(deps, `base ${one.name}: starting`, () => backend.start(sandbox, { shares: [] }));
    const deadline = deps.clock.now() + config.boot_timeout_secs * 1000;
    await step(
      deps,
      "waiting for boot",
      () => bootWait(deps, { backend, name: sandbox, deadline }),
    );
    if (one.base.image !== undefined) await provisionBase(deps, backend, sandbox);
    if (script !== null) await runSetup(deps, backend, { name: one.name, sandbox, script });
    const bytes = await measureRootBytes(backend, sandbox);
    if (bytes !== null) await recordBaseSize(deps.stateDir, sandbox, bytes);
    await step(
      deps,
      `base ${one.name}: stopping`,
      () => backend.stop(sandbox, { timeoutMs: stopTimeoutMs(config, backend.name) }),
    );
    await step(
      deps,
      `base ${one.name}: checkpoint`,
      () => backend.createCheckpoint(sandbox, BASE_CHECKPOINT),
    );
  } catch (error) {
    // Nothing half-made: the build's sandbox goes (older builds stay).
    await backend.delete(sandbox).catch(() => {});
    await forgetBaseSize(deps.stateDir, sandbox);
    throw error;
  } finally {
    await revokeProxyToken(deps.stateDir, sandbox).catch(() => {});
  }
  for (const old of await baseBuilds(backend, one.name)) {
    if (old === sandbox) continue;
    await backend.delete(old).catch(() => {});
    await forgetBaseSize(deps.stateDir, old);
  }
}

/** The base provisioning steps (the system, the profile for Claude's install, Claude Code, tmux). */
async function provisionBase(deps: LifecycleDeps, backend: Backend, sandbox: string) {
  if (deps.proxy) {
    const proxy = deps.proxy;
    await step(deps, "credential proxy", () => proxy.ensure(backend));
  }
  const provisioner = await deps.provisioner();
  const only = provisioner.steps.filter((s) => BASE_STEPS.includes(s) || s === "profile");
  const stamp = iso(deps.clock.now());
  const record: SandboxRecord = {
    name: sandbox,
    repo: sandbox,
    branch: sandbox,
    worktree_path: deps.home,
    created_at: stamp,
    last_used: stamp,
    status: "running",
    ip: null,
  };
  try {
    await provisioner.run({
      backend,
      sandbox,
      record,
      config: deps.config,
      stateDir: deps.stateDir,
      reporter: deps.reporter,
      signal: deps.signal,
    }, { after: null, only, onStepDone: () => Promise.resolve() });
  } catch (error) {
    throw new RuntimeError(
      "base_build_failed",
      `provisioning ${sandbox} failed: ${errorMessage(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** Runs the setup script as root, its output appended to the base's log. */
async function runSetup(
  deps: LifecycleDeps,
  backend: Backend,
  run: { name: string; sandbox: string; script: string },
): Promise<void> {
  const log = baseLogPath(deps.stateDir, run.name);
  await Deno.mkdir(`${deps.stateDir}/logs`, { recursive: true, mode: 0o700 });
  const file = await Deno.open(log, { create: true, write: true, truncate: true, mode: 0o600 });
  const path = "/root/.tachikoma-base-setup.sh";
  try {
    const result = await step(deps, `base ${run.name}: setup script (log: ${log})`, async () => {
      const data = new TextEncoder().encode(run.script);
      await backend.pushFile(run.sandbox, { path, data, mode: 0o700, owner: "root" });
      return await backend.exec(run.sandbox, {
        argv: ["/bin/sh", "-c", 'bash "$0"; s=$?; rm -f "$0"; exit $s', path],
        user: "root",
        signal: deps.signal,
        onStdout: (chunk) => file.writeSync(chunk),
        onStderr: (chunk) => file.writeSync(chunk),
      });
    });
    if (result.code !== 0) {
      const last = shownLine(new TextDecoder().decode(result.stderr));
      throw new RuntimeError(
        "base_setup_failed",
        `base ${run.name}: the setup script exited ${result.code}${last ? `: ${last}` : ""}`,
        { hint: `its output is in ${log}; nothing of this build was kept` },
      );
    }
  } finally {
    file.close();
  }
}

/**
 * The guest's last stderr line as it may be shown in an error: the guest writes it, so control
 * characters (terminal escapes) are dropped, it is cut to 200 characters and redacted.
 */
export function shownLine(stderr: string): string {
  // deno-lint-ignore no-control-regex
  const lines = stderr.replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, "").split(/[\r\n]+/)
    .map((l) => l.trim()).filter((l) => l !== "");
  // deno-lint-ignore no-control-regex
  const line = (lines.pop() ?? "").replace(/[\x00-\x1f\x7f-\x9f]/g, "");
  return redact(line.length > 200 ? line.slice(0, 200) + "…" : line);
}

/** `image rm <base>`: deletes every build of the base (current and stale). */
export async function removeBase(
  deps: LifecycleDeps,
  name: string,
): Promise<{ name: string; removed: string[] }> {
  validateBaseName(name);
  const backend = await deps.backend();
  requireBaseSupport(backend);
  return await withFileLock(basesLockPath(deps.stateDir), async () => {
    const builds = await baseBuilds(backend, name);
    if (builds.length === 0) {
      // Not built: a configured base is fine to "remove"; an unknown name is not.
      requireBase(configuredBases(deps.config, backend.name), name);
    }
    for (const sandbox of builds) {
      await backend.delete(sandbox);
      await forgetBaseSize(deps.stateDir, sandbox);
    }
    return { name, removed: builds };
  }, { signal: deps.signal, clock: deps.clock });
}
