/**
 * Sandbox and worktree naming.
 *
 * Names follow tachikoma's slug rules exactly (`tachikoma-<repo>-<branch>`, see
 * {@link slugify}), so sandboxes created by tachikoma keep their names. Unlike tachikoma,
 * collisions are detected: when two different branches (or two different repos with the same
 * directory name) map to the same name, the later one gets a short stable hash suffix instead of
 * silently sharing the earlier one's sandbox ({@link resolveSandboxName}).
 *
 * Everything here is synchronous and pure; hashing uses a small built-in SHA-256.
 *
 * @module
 */
import { ConflictError, RuntimeError } from "./errors.ts";

/** Maximum length of a sandbox name (a DNS label / hostname). */
export const MAX_NAME_LENGTH = 63;

/**
 * tachikoma's slug: Unicode-lowercase `input`, turn every char outside ASCII `[a-z0-9]` into
 * `-`, collapse runs of `-` and trim them at both ends, then cut to `max` bytes and trim
 * trailing `-` again. The result is ASCII (so bytes = chars) and may be empty.
 */
export function slugify(input: string, max: number = MAX_NAME_LENGTH): string {
  const lower = input.toLowerCase();
  let out = "";
  let dash = false;
  for (const ch of lower) {
    const c = ch.charCodeAt(0);
    const keep = ch.length === 1 && ((c >= 97 && c <= 122) || (c >= 48 && c <= 57));
    if (keep) {
      if (dash && out.length > 0) out += "-";
      out += ch;
      dash = false;
    } else {
      dash = true;
    }
  }
  if (out.length > max) out = trimTrailingDashes(out.slice(0, Math.max(0, max)));
  return out;
}

function trimTrailingDashes(s: string): string {
  let end = s.length;
  while (end > 0 && s[end - 1] === "-") end--;
  return s.slice(0, end);
}

/** tachikoma's VM name: `slugify("tachikoma-" + repo + "-" + branch)` (≤ 63 chars). */
export function sandboxBaseName(repo: string, branch: string): string {
  return slugify(`tachikoma-${repo}-${branch}`);
}

/** The branch's slug (≤ 63 chars), used as the guest hostname; empty when nothing is left. */
export function branchSlug(branch: string): string {
  return slugify(branch, MAX_NAME_LENGTH);
}

/**
 * The first `len` hex chars of the SHA-256 of `text` (UTF-8). Stable across runs, platforms and
 * versions; synchronous (a built-in SHA-256, no Web Crypto promise).
 */
export function shortHash(text: string, len = 6): string {
  return sha256Hex(text).slice(0, len);
}

/**
 * The branch label used for a detached HEAD: the short commit id (lower-cased), so the sandbox
 * is `tachikoma-<repo>-<shortcommit>` (tachikoma used the literal `HEAD`, which made every
 * detached checkout share one sandbox). Throws when `shortCommit` is not a hex commit id.
 */
export function detachedBranchName(shortCommit: string): string {
  const id = shortCommit.trim().toLowerCase();
  if (!/^[0-9a-f]{4,64}$/.test(id)) {
    throw new RuntimeError(
      "invalid_commit",
      `not a commit id: ${JSON.stringify(shortCommit)}`,
      { hint: "expected the output of `git rev-parse --short HEAD`" },
    );
  }
  return id;
}

/** The fields of a state record that naming looks at ({@link SandboxRecord} satisfies it). */
export interface NamedRecord {
  name: string;
  repo: string;
  branch: string;
  repo_root?: string;
}

/** Input of {@link resolveSandboxName}. */
export interface ResolveNameInput {
  /** Repo directory name (not slugified). */
  repo: string;
  /** Absolute repo root on the host, when known. */
  repoRoot?: string;
  /** Branch name, raw (or {@link detachedBranchName} for a detached HEAD). */
  branch: string;
  /** The records in the state file. */
  records: readonly NamedRecord[];
  /** Names in use by something other than a record (e.g. a VM not in state). Optional. */
  taken?: (name: string) => boolean;
}

/** Which sandbox a record is compared with: a repo (and its root, when known) and a branch. */
export interface SandboxKey {
  /** Repo directory name. */
  repo: string;
  /** Absolute repo root on the host, when known. */
  repoRoot?: string;
  /** Branch name, raw. */
  branch: string;
}

/** True when `record` is the sandbox of this repo + branch. */
export function isSameSandbox(record: NamedRecord, key: SandboxKey): boolean {
  const { repo, repoRoot, branch } = key;
  if (record.branch !== branch) return false;
  if (record.repo_root && repoRoot) return record.repo_root === repoRoot;
  return record.repo === repo;
}

/** `base` cut so that `base-suffix` fits in `max`, trailing dashes trimmed, plus the suffix. */
function withSuffix(base: string, suffix: string, max: number): string {
  const room = max - 1 - suffix.length;
  const head = trimTrailingDashes(base.slice(0, Math.max(0, room)));
  return head ? `${head}-${suffix}` : suffix;
}

/**
 * The sandbox name for `repo` + `branch`:
 * 1. the name of an existing record for the same repo and branch (same `repo_root` when both
 *    sides know it, else the same repo directory name) — so a sandbox is never renamed;
 * 2. else the base name {@link sandboxBaseName} when no record (and no `taken` name) uses it;
 * 3. else (another branch or repo already owns the base name — e.g. `feat/x` vs `feat-x`, or two
 *    long branches cut to the same 63 chars) `<base cut to fit>-<hash>` where hash is the first
 *    6 hex chars of SHA-256(`repoRoot ?? repo` + "\0" + branch), lengthened by 2 chars at a time
 *    in the (astronomically unlikely) case that name is taken too. Total ≤ 63 chars.
 */
export function resolveSandboxName(input: ResolveNameInput): string {
  const { repo, repoRoot, branch, records } = input;
  const own = records.find((r) => isSameSandbox(r, input));
  if (own) return own.name;
  const used = (name: string) =>
    records.some((r) => r.name === name) || (input.taken?.(name) ?? false);
  const base = sandboxBaseName(repo, branch);
  if (!used(base)) return base;
  const digest = sha256Hex(`${repoRoot ?? repo}\0${branch}`);
  for (let len = 6; len <= 24; len += 2) {
    const candidate = withSuffix(base, digest.slice(0, len), MAX_NAME_LENGTH);
    if (!used(candidate)) return candidate;
  }
  throw new ConflictError(`no free sandbox name for ${repo} ${JSON.stringify(branch)}`, {
    hint: "destroy unused sandboxes (tachikoma list) and retry",
  });
}

/** Options of {@link worktreeDirName}. */
export interface WorktreeDirOptions {
  /** Absolute repo root, mixed into the collision hash. */
  repoRoot?: string;
  /**
   * Returns true when `dirName` is already owned by a DIFFERENT worktree (or is a non-worktree
   * path) in the target parent directory. The caller decides (it knows `git worktree list`);
   * without it, collisions are the caller's problem.
   */
  taken?: (dirName: string) => boolean;
}

const MAX_COMPONENT_BYTES = 255;

/** Cuts `s` to at most `maxBytes` UTF-8 bytes without splitting a code point. */
function cutBytes(s: string, maxBytes: number): string {
  const enc = new TextEncoder();
  if (enc.encode(s).length <= maxBytes) return s;
  let out = "";
  let bytes = 0;
  for (const ch of s) {
    const n = enc.encode(ch).length;
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/**
 * The worktree directory name for `branch`: `<repoName>-<branchSlug(branch)>`, always a single
 * path component (tachikoma used the raw branch, so `feature/x` nested into `myapp-feature/x`).
 * A branch with an empty slug (e.g. only non-ASCII) uses a hash of the branch instead. When
 * `options.taken` says the name belongs to a different worktree, a stable hash suffix of
 * repoRoot + branch is appended (lengthened until free). Never longer than 255 bytes.
 */
export function worktreeDirName(
  repoName: string,
  branch: string,
  options: WorktreeDirOptions = {},
): string {
  // A repo dir name is already one component; be defensive about separators and NUL anyway.
  const repoPart = repoName.replace(/[/\\\0]/g, "-").replace(/^\.+$/, "repo") || "repo";
  const slug = branchSlug(branch) || shortHash(branch, 8);
  const base = `${cutBytes(repoPart, MAX_COMPONENT_BYTES - 1 - slug.length)}-${slug}`;
  if (!options.taken?.(base)) return base;
  const digest = sha256Hex(`${options.repoRoot ?? repoName}\0${branch}`);
  for (let len = 6; len <= 24; len += 2) {
    const suffix = digest.slice(0, len);
    const candidate = `${cutBytes(base, MAX_COMPONENT_BYTES - 1 - len)}-${suffix}`;
    if (!options.taken(candidate)) return candidate;
  }
  throw new ConflictError(`no free worktree directory name for ${JSON.stringify(branch)}`);
}

// ---------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), synchronous. Small inputs only (names); verified against Web Crypto in
// the unit tests.

const K = new Uint32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);

/** Hex SHA-256 of the UTF-8 encoding of `text` (synchronous). */
export function sha256Hex(text: string): string {
  const data = new TextEncoder().encode(text);
  const bitLen = data.length * 8;
  const padded = new Uint8Array(((data.length + 9 + 63) >> 6) << 6);
  padded.set(data);
  padded[data.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLen / 0x100000000));
  view.setUint32(padded.length - 4, bitLen >>> 0);
  const h = new Uint32Array([
    0x6a09e667,
    0xbb67ae85,
    0x3c6ef372,
    0xa54ff53a,
    0x510e527f,
    0x9b05688c,
    0x1f83d9ab,
    0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15], b = w[i - 2];
      const s0 = rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3);
      const s1 = rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[i] + w[i]) >>> 0;
      const S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  }
  let hex = "";
  for (const word of h) hex += word.toString(16).padStart(8, "0");
  return hex;
}
