/**
 * Bases: prepared systems new sandboxes are cloned from (`[bases.NAME]`, or with none configured
 * the implicit `default` base: the stock image of new sandboxes). A built base is a stopped
 * engine sandbox `tkb-<name>-<recipe hash>` holding the checkpoint `base`; the recipe hash
 * covers the image or the parent's hash, the setup script's text and the provisioning recipe, so
 * a base whose recipe or parent changed is `stale` (its old build is still there and usable) and
 * one never built (or whose build did not finish: no checkpoint) is `missing`.
 *
 * Building is in `base_build.ts`; this module says what the bases are and where they stand.
 *
 * @module
 */
import type { Backend, Checkpoint } from "../backends/backend.ts";
import type { Config } from "../config/schema.ts";
import { baseChain, type BaseEntry, baseOfBuild, baseSandboxName } from "../config/bases.ts";
export { baseSandboxName } from "../config/bases.ts";
import { ConfigError, NotFoundError, UnsupportedError, UsageError } from "../lib/errors.ts";
import { BASE_NAME_RE } from "../config/defaults.ts";
import { sha256Hex } from "../lib/naming.ts";
import { PROVISION_VERSION } from "../provision/version.ts";
import { imageFor } from "./lifecycle.ts";
import { recordedBaseSize } from "./base_size.ts";

/** The checkpoint a base build ends with (what forks clone). */
export const BASE_CHECKPOINT = "base";

/** The name of the implicit base when none is configured. */
export const DEFAULT_BASE = "default";

/** The bases of a config: the configured ones, or the implicit `default` (the stock image). */
export function configuredBases(config: Config, backend: string): Record<string, BaseEntry> {
  const bases = config.bases ?? {};
  if (Object.keys(bases).length > 0) return bases;
  return {
    [DEFAULT_BASE]: {
      image: imageFor(config, backend),
      description: "the stock image of new sandboxes, provisioned",
    },
  };
}

/** Throws a {@link UsageError} naming the value unless `name` is a valid base name. */
export function validateBaseName(name: string): void {
  if (BASE_NAME_RE.test(name)) return;
  throw new UsageError(
    `invalid base name ${JSON.stringify(name)}: lower-case letters, digits and -, at most 40`,
  );
}

/** Throws a {@link NotFoundError} listing the bases unless `name` is one. */
export function requireBase(bases: Record<string, BaseEntry>, name: string): BaseEntry {
  validateBaseName(name);
  const base = Object.hasOwn(bases, name) ? bases[name] : undefined;
  if (base) return base;
  throw new NotFoundError(`no base named ${JSON.stringify(name)}`, {
    hint: `configured bases: ${
      Object.keys(bases).sort().join(", ")
    } (see \`tachikoma image list\`)`,
  });
}

/** The text of a base's setup script (inline or read from its file), or null when it has none. */
export async function setupText(name: string, base: BaseEntry): Promise<string | null> {
  if (base.setup !== undefined) return base.setup;
  if (base.setup_script === undefined) return null;
  try {
    return await Deno.readTextFile(base.setup_script);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "no such file" : String(error);
    throw new ConfigError(`bases.${name}: setup_script ${base.setup_script}: ${why}`);
  }
}

/** The recipe hash of every base (a parent's hash is part of its children's). */
export async function recipeHashes(
  config: Config,
  bases: Record<string, BaseEntry>,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const hashOf = async (name: string): Promise<string> => {
    if (out[name]) return out[name];
    const base = bases[name];
    const parent = base.from !== undefined ? await hashOf(base.from) : null;
    out[name] = sha256Hex(JSON.stringify({
      v: 1,
      image: base.image ?? null,
      parent,
      setup: await setupText(name, base),
      provision: PROVISION_VERSION,
      user: config.ssh_user,
      claude: config.claude_install,
    }));
    return out[name];
  };
  for (const name of Object.keys(bases)) await hashOf(name);
  return out;
}

function buildsOf(name: string, sandboxes: readonly string[]): string[] {
  return sandboxes.filter((s) => baseOfBuild(s) === name);
}

/** Where one base stands. */
export interface BaseView {
  name: string;
  description: string | null;
  image: string | null;
  from: string | null;
  /** `ready`: built from the current recipe; `stale`: built, from an older recipe or parent. */
  status: "ready" | "stale" | "missing";
  /** The engine sandbox holding the build (null when missing). */
  sandbox: string | null;
  /** The recipe hash the current config gives. */
  recipe: string;
  size_bytes: number | null;
  /** RFC 3339 UTC of the build's checkpoint (null when missing). */
  built_at: string | null;
}

/** Throws an {@link UnsupportedError} when the engine cannot hold bases. */
export function requireBaseSupport(backend: Backend): void {
  if (backend.capabilities.clone && backend.capabilities.checkpoints) return;
  throw new UnsupportedError(
    `the ${backend.name} backend cannot hold bases (it needs clones and checkpoints)`,
    { hint: 'use the incus backend (`--backend incus` or `backend = "incus"`)' },
  );
}

/**
 * Every base's status, in chain order (parents before children). A build's size is the engine's
 * for its checkpoint, else the one measured at build time (`base_size.ts`, kept in `stateDir`).
 */
export async function baseViews(
  config: Config,
  backend: Backend,
  stateDir?: string,
): Promise<BaseView[]> {
  requireBaseSupport(backend);
  const bases = configuredBases(config, backend.name);
  const hashes = await recipeHashes(config, bases);
  const sandboxes = (await backend.list()).map((s) => s.name).filter((n) => n.startsWith("tkb-"));
  const views: BaseView[] = [];
  for (const name of chainOrder(bases)) {
    const base = bases[name];
    const current = baseSandboxName(name, hashes[name]);
    let best: { sandbox: string; cp: Checkpoint } | null = null;
    let ready = false;
    for (const sandbox of buildsOf(name, sandboxes)) {
      const cp = (await backend.listCheckpoints(sandbox).catch(() => []))
        .find((c) => c.name === BASE_CHECKPOINT);
      if (!cp) continue;
      if (sandbox === current) {
        best = { sandbox, cp };
        ready = true;
        break;
      }
      if (!best || cp.createdAt > best.cp.createdAt) best = { sandbox, cp };
    }
    views.push({
      name,
      description: base.description ?? null,
      image: base.image ?? null,
      from: base.from ?? null,
      status: ready ? "ready" : best ? "stale" : "missing",
      sandbox: best?.sandbox ?? null,
      recipe: hashes[name].slice(0, 10),
      size_bytes: best?.cp.sizeBytes ??
        (best && stateDir ? await recordedBaseSize(stateDir, best.sandbox) : null),
      built_at: best?.cp.createdAt ?? null,
    });
  }
  return views;
}

/** The bases' names, each after its parent. */
export function chainOrder(bases: Record<string, BaseEntry>): string[] {
  const out: string[] = [];
  for (const name of Object.keys(bases).sort()) {
    for (const link of baseChain(bases, name)) if (!out.includes(link)) out.push(link);
  }
  return out;
}

/** The engine sandboxes holding builds of base `name` (current or stale, finished or not). */
export async function baseBuilds(backend: Backend, name: string): Promise<string[]> {
  return buildsOf(name, (await backend.list()).map((s) => s.name));
}
