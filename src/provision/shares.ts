/**
 * Where the host's shares appear in the guest. The share list itself is core's
 * (`buildShares` in `src/core/shares.ts`, the same list `backend.start` gets); provisioning
 * computes it identically to call `backend.mountShares` and to find the shares in the guest.
 *
 * @module
 */
import { GUEST_CODE_DIR, GUEST_SHARE_ROOT, pathSlug } from "../core/shares.ts";

export { buildShares, GUEST_CODE_DIR, GUEST_SHARE_ROOT, pathSlug } from "../core/shares.ts";

/** The repo's `.git` in the guest. */
export const GUEST_DOTGIT_DIR = `${GUEST_SHARE_ROOT}/dotgit`;
/** The Claude project memory share in the guest. */
export const GUEST_MEMORY_DIR = `${GUEST_SHARE_ROOT}/claude-memory`;
/** Claude's project directory name for the guest code dir (`-mnt-tachikoma-code`). */
export const GUEST_PROJECT_SLUG = pathSlug(GUEST_CODE_DIR);

/** The share name of `~/.claude/<dir>` (`claude-<dir>`, lower-cased, `_` → `-`, as core names it). */
export function claudeShareName(dir: string): string {
  return `claude-${dir.toLowerCase().replaceAll("_", "-")}`;
}
