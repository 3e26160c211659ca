/**
 * The tachikoma block in `~/.ssh/config` (`ssh install|refresh|uninstall`): one `Host` stanza
 * per sandbox with an address, so `ssh <sandbox>` works with the plain OpenSSH client.
 *
 * Compatible markers with tachikoma (`# BEGIN tachikoma managed` / `# END tachikoma managed`);
 * unlike tachikoma, the stanzas carry `IdentityFile` (tachikoma forgot it), verify host keys
 * against tachikoma's pinned known_hosts (`StrictHostKeyChecking yes`, `HostKeyAlias`), and
 * nothing outside the block ever changes: line endings, a missing final newline and non-UTF-8
 * bytes survive. A new block goes at the top of the file — ssh uses the first value it finds, so
 * a `Host *` further down cannot override the sandboxes' User or IdentityFile — and it ends with
 * `Host *` so whatever followed still applies to every host. The file is replaced atomically
 * (symlinks followed, mode kept) after a copy to `config.bak`.
 *
 * @module
 */
import { errorMessage, RuntimeError } from "../lib/errors.ts";
import {
  applyBlock,
  binaryToBytes,
  type BlockMarkers,
  bytesToBinary,
  findBlocks,
  utf8ToBinary,
} from "./marked_block.ts";
import { sshOptionValue } from "./system.ts";

/** The marker lines (tachikoma's). */
export const SSH_CONFIG_MARKERS: BlockMarkers = {
  begin: "# BEGIN tachikoma managed",
  end: "# END tachikoma managed",
};

/** One sandbox in the block. */
export interface SshHostEntry {
  /** Sandbox name: the `Host` alias and the host key alias. */
  name: string;
  /** Its address. */
  hostName: string;
  user: string;
  port: number;
}

/** tachikoma's files the stanzas point at. */
export interface SshBlockFiles {
  identityFile: string;
  knownHostsFile: string;
}

/** An entry left out of the block, and why. */
export interface SkippedEntry {
  name: string;
  reason: string;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_RE = /^[0-9A-Fa-f:.]+$/;
const DNS_RE =
  /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,31}$/;

function entryProblem(e: SshHostEntry): string | null {
  if (!NAME_RE.test(e.name)) return "the name is not a valid ssh host alias";
  const h = e.hostName;
  if (!(IPV4_RE.test(h) || (h.includes(":") && IPV6_RE.test(h)) || DNS_RE.test(h))) {
    return `the address ${JSON.stringify(h)} is not an IP address or host name`;
  }
  if (!USER_RE.test(e.user)) return `the user ${JSON.stringify(e.user)} is not a valid user name`;
  if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535) return `bad port ${e.port}`;
  return null;
}

/**
 * The lines between the markers for `entries` (in order; invalid or duplicate entries are
 * skipped and reported, never written).
 */
export function sshBlockBody(
  entries: SshHostEntry[],
  files: SshBlockFiles,
): { body: string[]; hosts: string[]; skipped: SkippedEntry[] } {
  const identity = sshOptionValue(files.identityFile);
  const knownHosts = sshOptionValue(files.knownHostsFile);
  const body = ["# Sandboxes of tachikoma: `tachikoma ssh refresh` rewrites this block."];
  const hosts: string[] = [];
  const skipped: SkippedEntry[] = [];
  for (const e of entries) {
    const problem = hosts.includes(e.name) ? "listed twice" : entryProblem(e);
    if (problem) {
      skipped.push({ name: e.name, reason: problem });
      continue;
    }
    hosts.push(e.name);
    body.push(
      `Host ${e.name}`,
      `  HostName ${e.hostName}`,
      `  User ${e.user}`,
      `  Port ${e.port}`,
      `  IdentityFile ${identity}`,
      "  IdentitiesOnly yes",
      `  UserKnownHostsFile ${knownHosts}`,
      "  StrictHostKeyChecking yes",
      `  HostKeyAlias ${e.name}`,
      "  CheckHostIP no",
      "",
    );
  }
  if (hosts.length > 0) {
    body.push("# End of the sandboxes: the rest of this file applies to every host, as before.");
    body.push("Host *");
  }
  return { body, hosts, skipped };
}

/** Result of {@link writeSshConfigBlock}. */
export interface SshConfigWrite {
  /** The config file path as given. */
  path: string;
  /** False when the file already had exactly this content (nothing written). */
  changed: boolean;
  /** The backup written before the change, if any. */
  backup: string | null;
}

function configError(path: string, action: string, error: unknown): RuntimeError {
  return new RuntimeError("ssh_config", `cannot ${action} ${path}: ${errorMessage(error)}`, {
    cause: error,
    hint: "check the owner and permissions of ~/.ssh",
  });
}

/**
 * Sets (or with `body` null removes) the managed block in the ssh config at `path`. Everything
 * else in the file is kept byte for byte. A block with a BEGIN but no END marker makes this fail
 * without touching the file.
 */
export async function writeSshConfigBlock(
  path: string,
  body: string[] | null,
): Promise<SshConfigWrite> {
  let target = path;
  let before: Uint8Array | null = null;
  let mode = 0o600;
  try {
    const link = await Deno.lstat(path);
    if (link.isSymlink) target = await Deno.realPath(path);
    const info = await Deno.stat(target);
    if (info.mode !== null) mode = info.mode & 0o777;
    before = await Deno.readFile(target);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw configError(path, "read", error);
  }
  if (before === null && body === null) return { path, changed: false, backup: null };
  const text = bytesToBinary(before ?? new Uint8Array());
  const next = applyBlock(text, body === null ? null : body.map(utf8ToBinary), {
    markers: SSH_CONFIG_MARKERS,
    placement: "top",
    label: path,
  });
  if (before !== null && next === text) return { path, changed: false, backup: null };
  const dir = target.slice(0, target.lastIndexOf("/")) || "/";
  let backup: string | null = null;
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    if (before !== null) {
      backup = `${path}.bak`;
      await Deno.writeFile(backup, before, { mode });
      await Deno.chmod(backup, mode);
    }
  } catch (error) {
    throw configError(backup ?? dir, "write", error);
  }
  const temp = `${dir}/.${target.slice(dir.length + 1)}.tachikoma-${Deno.pid}-${
    Math.random().toString(16).slice(2, 10)
  }`;
  try {
    const file = await Deno.open(temp, { write: true, createNew: true, mode });
    try {
      const bytes = binaryToBytes(next);
      let off = 0;
      while (off < bytes.length) off += await file.write(bytes.subarray(off));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.chmod(temp, mode);
    await Deno.rename(temp, target);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw configError(path, "write", error);
  }
  return { path, changed: true, backup };
}

/** True when the file at `path` holds a tachikoma block. */
export async function hasSshConfigBlock(path: string): Promise<boolean> {
  try {
    const text = bytesToBinary(await Deno.readFile(path));
    return findBlocks(text, SSH_CONFIG_MARKERS, path).length > 0;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
