/**
 * Building `tart run --dir` values (`[name:]path[:options]`, tart-contract.md §7.1) from
 * tachikoma's shares, refusing anything tart would misparse.
 *
 * Tart splits the value on `:` and treats the last field as options when, split on `,`, it holds
 * `ro` or `tag=…`. So a host path containing `:` cannot be expressed at all, a path whose
 * comma-separated pieces include `ro` or `tag=…` would be eaten as options when it is the last
 * field, relative paths resolve against tart's cwd and `~` is expanded. Every share is named, so
 * several shares can share the default tag `com.apple.virtio-fs.automount` and appear in the
 * guest as `<mountpoint>/<name>`.
 *
 * @module
 */
import { UsageError } from "../../lib/errors.ts";

/** The virtio-fs tag tart uses when `--dir` has no `tag=` option. */
export const DEFAULT_TAG = "com.apple.virtio-fs.automount";

/** Where tachikoma mounts the default tag in the guest. */
export const GUEST_MOUNT_ROOT = "/mnt/tachikoma";

/** One `--dir` share. */
export interface DirShare {
  /** Share name (a directory name under the mount point). */
  name: string;
  /** Absolute host path. */
  hostPath: string;
  readOnly: boolean;
}

/** Share names tart and the guest both handle: one path component, no `:` or `,`. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Checks one share against tart's `--dir` grammar; throws a UsageError naming the problem. */
export function validateDirShare(share: DirShare): void {
  const { name, hostPath } = share;
  if (!NAME_RE.test(name)) {
    throw new UsageError(
      `share name ${JSON.stringify(name)} cannot be passed to tart --dir: use letters, digits, ` +
        "'.', '_' and '-' (starting with a letter or digit)",
    );
  }
  if (!hostPath.startsWith("/")) {
    throw new UsageError(
      `cannot share ${JSON.stringify(hostPath)} with tart: the path must be absolute`,
    );
  }
  if (hostPath.includes(":")) {
    throw new UsageError(
      `cannot share ${JSON.stringify(hostPath)} with tart: the path contains ':', which tart's ` +
        "--dir syntax ([name:]path[:options]) cannot express",
      { hint: "rename the directory (or set worktree_dir to a path without ':')" },
    );
  }
  if (/[\n\r\0]/.test(hostPath)) {
    throw new UsageError(
      `cannot share ${JSON.stringify(hostPath)} with tart: the path contains a control character`,
    );
  }
  if (!share.readOnly) {
    // The path is then the last ':'-field: tart would take `ro` / `tag=…` pieces as options.
    const pieces = hostPath.split(",");
    if (pieces.some((p) => p === "ro" || p.startsWith("tag="))) {
      throw new UsageError(
        `cannot share ${JSON.stringify(hostPath)} with tart: tart would read the ",ro" / ",tag=" ` +
          "part of the path as --dir options",
        { hint: "rename the directory so no comma-separated part is 'ro' or starts with 'tag='" },
      );
    }
  }
}

/** The `--dir` value for one share: `name:path` or `name:path:ro`. */
export function formatDirSpec(share: DirShare): string {
  validateDirShare(share);
  return `${share.name}:${share.hostPath}${share.readOnly ? ":ro" : ""}`;
}

/**
 * The `--dir` arguments for a set of shares (`["--dir", spec, …]`). Duplicate names are refused
 * (tart would silently keep the last one).
 */
export function dirArgs(shares: readonly DirShare[]): string[] {
  const seen = new Set<string>();
  const args: string[] = [];
  for (const share of shares) {
    if (seen.has(share.name)) {
      throw new UsageError(`two shares are named ${JSON.stringify(share.name)}`);
    }
    seen.add(share.name);
    args.push("--dir", formatDirSpec(share));
  }
  return args;
}
