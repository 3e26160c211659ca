/**
 * `tachikoma config trust`: trusting a repo config file's exact content, listing what is
 * trusted, revoking it, and keeping a file trusted across tachikoma's own edits
 * (`config set` / `config edit`).
 *
 * @module
 */
import { UsageError } from "../lib/errors.ts";
import { KEYS, type OsName } from "./defaults.ts";
import { gatedAmong, onePath } from "./gate.ts";
import { type ConfigFiles, configFiles, displayPath, readIfExists } from "./load.ts";
import type { EnvGetter } from "./paths.ts";
import { REPO_CONFIG_NAMES } from "./repo_files.ts";
import { shownValue } from "./display.ts";
import {
  readTrustStore,
  sha256Hex,
  type TrustEntry,
  trustKey,
  updateTrustStore,
} from "./trust_store.ts";
import { dirname, realPathOr, resolvePath } from "../lib/paths.ts";

/** Where and when: the inputs every trust operation shares. */
export interface TrustContext {
  cwd: string;
  env: EnvGetter;
  os?: OsName;
  /** The clock for `trusted_at` (default: now). */
  now?: () => Date;
}

/** A gated key a trusted file sets. */
export interface GatedValue {
  key: string;
  /** As written in the file (secrets masked). */
  value: unknown;
  /** Why the key is gated. */
  why: string;
}

/** One file `config trust` trusted. */
export interface TrustedFile {
  /** The file's real path (the store's key). */
  file: string;
  sha256: string;
  /** `new`: never trusted; `changed`: other content was trusted; `same`: already trusted. */
  previous: "new" | "changed" | "same";
  /** The gated keys the file sets: what trusting it lets take effect. */
  gated: GatedValue[];
}

/** One entry of `config trust --list`. */
export interface TrustListing extends TrustEntry {
  file: string;
  /** `trusted`: the file still has the trusted content; `changed`; `missing`. */
  status: "trusted" | "changed" | "missing";
}

/** One file `config trust --revoke` was asked about. */
export interface RevokedFile {
  file: string;
  /** False when nothing was trusted for it. */
  revoked: boolean;
}

function noRepoFiles(files: ConfigFiles, cwd: string): UsageError {
  if (files.repoProblem) {
    return new UsageError(
      `cannot tell which main checkout ${onePath(files.worktree ?? cwd)} belongs to ` +
        `(${files.repoProblem})`,
      { hint: "run it in the main checkout, or name the file" },
    );
  }
  return new UsageError("this directory is not in a git repository", {
    hint: "run it inside the repo, or name the file: tachikoma config trust <file>",
  });
}

/** The current repo's config files (main checkout), or a usage error outside a repo. */
function currentRepoFiles(ctx: TrustContext): string[] {
  const files = configFiles({ cwd: ctx.cwd, env: ctx.env, os: ctx.os });
  if (!files.repo || !files.local) throw noRepoFiles(files, ctx.cwd);
  return [files.repo, files.local];
}

/**
 * A file named on the command line, checked to be a repo config file of a main checkout:
 * a worktree's files (never read) and other files are refused.
 */
function namedRepoFile(ctx: TrustContext, name: string): string {
  const path = resolvePath(ctx.cwd, name);
  const base = path.slice(path.lastIndexOf("/") + 1);
  if (!(REPO_CONFIG_NAMES as readonly string[]).includes(base)) {
    throw new UsageError(
      `${onePath(path)} is not a repo config file (${REPO_CONFIG_NAMES.join(" or ")})`,
      { hint: "the user config needs no trust: it is yours" },
    );
  }
  const dir = realPathOr(dirname(path));
  const files = configFiles({ cwd: dir, env: ctx.env, os: ctx.os });
  if (!files.repo) throw noRepoFiles(files, dir);
  const root = dirname(files.repo);
  if (root !== dir) {
    throw new UsageError(
      `${onePath(path)} is not read by tachikoma: repo config comes only from the top of the ` +
        `main checkout (here ${onePath(root)})` +
        (files.worktree ? `, never from a worktree` : ""),
      { hint: `trust ${onePath(`${root}/${base}`)} instead` },
    );
  }
  return `${root}/${base}`;
}

async function gatedValues(text: string, where: string): Promise<GatedValue[]> {
  const { validateFileText } = await import("./validate.ts");
  const { values } = validateFileText(text, where);
  return gatedAmong(values.keys()).map((key) => ({
    key,
    value: shownValue(key, values.get(key)),
    why: KEYS[key].trust!,
  }));
}

/**
 * Trusts the exact current content of `names` (default: the current repo's config files that
 * exist). Each file is validated first; an invalid one is an error and nothing is trusted.
 */
export async function trustFiles(ctx: TrustContext, names: string[]): Promise<TrustedFile[]> {
  const home = ctx.env("HOME");
  const targets = names.length > 0
    ? names.map((n) => namedRepoFile(ctx, n))
    : currentRepoFiles(ctx).filter((f) => readIfExists(f, onePath(f)) !== null);
  if (targets.length === 0) {
    const [repo, local] = currentRepoFiles(ctx);
    throw new UsageError(
      `there is nothing to trust: neither ${onePath(displayPath(repo, home))} nor ` +
        `${onePath(displayPath(local, home))} exists`,
    );
  }
  const read: { key: string; sha256: string; gated: GatedValue[] }[] = [];
  for (const file of targets) {
    const bytes = readIfExists(file, onePath(file));
    if (bytes === null) {
      throw new UsageError(`${onePath(displayPath(file, home))} does not exist`);
    }
    const gated = await gatedValues(
      new TextDecoder().decode(bytes),
      onePath(displayPath(file, home)),
    );
    read.push({ key: trustKey(file), sha256: await sha256Hex(bytes), gated });
  }
  const at = (ctx.now?.() ?? new Date()).toISOString();
  return await updateTrustStore(readDir(ctx), (store) =>
    read.map(({ key, sha256, gated }) => {
      const old = store.files[key];
      store.files[key] = { sha256, trusted_at: old?.sha256 === sha256 ? old.trusted_at : at };
      const previous = !old ? "new" : old.sha256 === sha256 ? "same" : "changed";
      return { file: key, sha256, previous, gated } satisfies TrustedFile;
    }));
}

function readDir(ctx: TrustContext): string {
  return configFiles({ cwd: ctx.cwd, env: ctx.env, os: ctx.os }).dir;
}

/** Every trusted file, sorted by path, with whether it still has the trusted content. */
export async function listTrust(ctx: TrustContext): Promise<TrustListing[]> {
  const store = readTrustStore(readDir(ctx));
  const out: TrustListing[] = [];
  for (const file of Object.keys(store.files).sort()) {
    const entry = store.files[file];
    const bytes = readIfExists(file, onePath(file));
    const status = bytes === null
      ? "missing"
      : (await sha256Hex(bytes)) === entry.sha256
      ? "trusted"
      : "changed";
    out.push({ file, ...entry, status });
  }
  return out;
}

/**
 * Forgets the trust of `names` (default: the current repo's two config files). Names need not
 * exist any more: a stale entry can be revoked by its path.
 */
export async function revokeTrust(ctx: TrustContext, names: string[]): Promise<RevokedFile[]> {
  const targets = names.length > 0
    ? names.map((n) => resolvePath(ctx.cwd, n))
    : currentRepoFiles(ctx);
  return await updateTrustStore(readDir(ctx), (store) =>
    targets.map((path) => {
      const keys = [...new Set([trustKey(path), path])];
      const hit = keys.find((k) => Object.hasOwn(store.files, k));
      if (hit === undefined) return { file: trustKey(path), revoked: false };
      delete store.files[hit];
      return { file: hit, revoked: true };
    }));
}

/** A repo config file tachikoma rewrote, for {@link keepTrust}. */
export interface TrustedEdit {
  /** The file. */
  file: string;
  /** Its content before the edit; null when it did not exist. */
  before: Uint8Array | null;
  /** Its content now. */
  after: Uint8Array;
  /** The time recorded for a new trust entry (default: the current time). */
  now?: () => Date;
}

/**
 * After tachikoma itself rewrote a repo config file (`config set`, `config edit`): the new
 * content is trusted when the old content was, or when there was no old content (a new file,
 * or one with only blank lines and comments: the whole content is the user's edit). Returns
 * true when the file is trusted now, false when it stays untrusted.
 */
export async function keepTrust(dir: string, edit: TrustedEdit): Promise<boolean> {
  const { file, before, after, now = () => new Date() } = edit;
  const key = trustKey(file);
  const blank = before === null || !/^\s*[^#\s]/m.test(new TextDecoder().decode(before));
  const oldHash = blank ? null : await sha256Hex(before!);
  const newHash = await sha256Hex(after);
  return await updateTrustStore(dir, (store) => {
    const entry = store.files[key];
    if (oldHash !== null && entry?.sha256 !== oldHash) return entry?.sha256 === newHash;
    if (entry?.sha256 !== newHash) {
      store.files[key] = { sha256: newHash, trusted_at: now().toISOString() };
    }
    return true;
  });
}
