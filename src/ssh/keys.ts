/**
 * tachikoma's SSH identity: `~/.ssh/tachikoma` (ed25519, 0600) and `~/.ssh/tachikoma.pub`, the
 * same files tachikoma used, made with `ssh-keygen` when missing.
 *
 * Parallel-safe: concurrent spawns serialise on `<configdir>/locks/ssh-key.lock`, and a new key
 * is generated in a private temp directory and renamed into place (public half first), so no
 * process ever sees a half-written key or a private key without its public half.
 *
 * @module
 */
import { type CommandRunner, defaultRunner } from "../lib/process.ts";
import { errorMessage, RuntimeError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { homeDir, paths } from "../config/paths.ts";
import { withFileLock } from "../state/lock.ts";

/** The key pair tachikoma authenticates with. */
export interface SshKey {
  /** `~/.ssh/tachikoma`. */
  privatePath: string;
  /** `~/.ssh/tachikoma.pub`. */
  publicPath: string;
  /** The public key line (`ssh-ed25519 AAAA… tachikoma`), trimmed. */
  publicKey: string;
}

/** Options of {@link ensureKey}. */
export interface EnsureKeyOptions {
  runner?: CommandRunner;
  /** Home directory holding `.ssh` (default: `$HOME`). */
  home?: string;
  /** tachikoma's config dir; the lock lives in its `locks/` (default: {@link paths}). */
  configDir?: string;
}

/** Paths of the key pair for a home directory. */
export function keyPaths(home: string = homeDir()): { privatePath: string; publicPath: string } {
  return { privatePath: `${home}/.ssh/tachikoma`, publicPath: `${home}/.ssh/tachikoma.pub` };
}

const PUBLIC_KEY_RE =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( .*)?$/;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function keyError(message: string, cause?: unknown): RuntimeError {
  return new RuntimeError("ssh_key", message, {
    cause,
    hint: "check ~/.ssh (owner and permissions) and that ssh-keygen works: `tachikoma doctor`",
  });
}

/**
 * Returns tachikoma's key pair, creating it with `ssh-keygen -t ed25519` when missing, restoring
 * a lost public half from the private key and tightening a private key readable by others to
 * 0600 (ssh refuses such keys).
 */
export async function ensureKey(options: EnsureKeyOptions = {}): Promise<SshKey> {
  const runner = options.runner ?? defaultRunner;
  const home = options.home ?? homeDir();
  const { privatePath, publicPath } = keyPaths(home);
  const lockPath = `${paths(options.configDir).locks}/ssh-key.lock`;
  return await withFileLock(lockPath, async () => {
    const sshDir = `${home}/.ssh`;
    try {
      await Deno.mkdir(sshDir, { recursive: true, mode: 0o700 });
      if (!(await exists(privatePath))) await generate(runner, sshDir, { privatePath, publicPath });
      else await repair(runner, privatePath, publicPath);
    } catch (error) {
      if (error instanceof RuntimeError) throw error;
      throw keyError(`cannot prepare ${privatePath}: ${errorMessage(error)}`, error);
    }
    const publicKey = (await Deno.readTextFile(publicPath)).trim();
    if (!publicKey) throw keyError(`${publicPath} is empty`);
    if (!PUBLIC_KEY_RE.test(publicKey) || publicKey.includes("\n")) {
      throw keyError(`${publicPath} does not hold one OpenSSH public key`);
    }
    return { privatePath, publicPath, publicKey };
  });
}

async function generate(
  runner: CommandRunner,
  sshDir: string,
  key: { privatePath: string; publicPath: string },
): Promise<void> {
  const { privatePath, publicPath } = key;
  const temp = await Deno.makeTempDir({ dir: sshDir, prefix: ".tachikoma-keygen-" });
  try {
    const tempKey = `${temp}/key`;
    const result = await runner.run("ssh-keygen", [
      "-q",
      "-t",
      "ed25519",
      "-N",
      "",
      "-C",
      "tachikoma",
      "-f",
      tempKey,
    ], { timeoutMs: 30_000 });
    if (result.code !== 0) {
      throw keyError(`ssh-keygen failed (exit ${result.code}): ${result.stderr.trim()}`);
    }
    await Deno.chmod(tempKey, 0o600);
    await Deno.chmod(`${tempKey}.pub`, 0o644);
    await Deno.rename(`${tempKey}.pub`, publicPath);
    await Deno.rename(tempKey, privatePath);
    log.info(`created the SSH key ${privatePath}`);
  } finally {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
  }
}

async function repair(runner: CommandRunner, privatePath: string, publicPath: string) {
  const info = await Deno.stat(privatePath);
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    log.warn(`${privatePath} was readable by others; setting it to 0600`);
    await Deno.chmod(privatePath, 0o600);
  }
  if (await exists(publicPath)) return;
  const result = await runner.run("ssh-keygen", ["-y", "-f", privatePath], { timeoutMs: 30_000 });
  if (result.code !== 0 || !result.stdout.trim()) {
    throw keyError(
      `${publicPath} is missing and ssh-keygen could not derive it (exit ${result.code}): ${result.stderr.trim()}`,
    );
  }
  const temp = `${publicPath}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(temp, result.stdout.trim() + "\n", { mode: 0o644 });
  await Deno.rename(temp, publicPath);
  log.info(`restored ${publicPath} from the private key`);
}
