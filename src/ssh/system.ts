/**
 * `ssh_command = "system"`: `enter` runs the OpenSSH client instead of the built-in one, so the
 * user's `~/.ssh/config`, agent forwarding and multiplexing apply. The argv pins everything that
 * matters for safety: tachikoma's key only, tachikoma's known_hosts with strict checking and the
 * sandbox name as the host key alias.
 *
 * @module
 */
import { isEnvName, quoteArgv } from "../lib/shell.ts";
import { UnreachableError } from "../lib/errors.ts";
import type { SshTarget } from "./client.ts";
import { validateHostAlias } from "./known_hosts.ts";

/** Options of {@link systemSshArgv}. */
export interface SystemSshOptions {
  target: SshTarget;
  /** tachikoma's private key. */
  identityFile: string;
  /** tachikoma's known_hosts. */
  knownHostsFile: string;
  /** Remote command (default: the login shell). */
  argv?: string[];
  /** Force a PTY (`-t`); default: when no command is given. */
  tty?: boolean;
  /** The ssh executable (default `ssh`). */
  binary?: string;
  /**
   * Variables the client sends from its own environment (`SendEnv`): the `[env]` session
   * values, which the guest's sshd accepts by name (provisioning's `AcceptEnv`). Never in argv.
   */
  sendEnv?: string[];
}

/**
 * A value for an ssh `-o` option or config line: `%` doubled (ssh expands `%` tokens) and
 * double-quoted when it has spaces. Throws for values ssh cannot carry (quotes, newlines).
 */
export function sshOptionValue(value: string): string {
  if (/["\r\n\0]/.test(value) || value === "") {
    throw new UnreachableError(`cannot pass ${JSON.stringify(value)} to ssh (quote or newline)`);
  }
  const escaped = value.replaceAll("%", "%%");
  return /[\s#'\\]/.test(escaped) ? `"${escaped}"` : escaped;
}

/** The full argv (`ssh …`) that opens a session in the sandbox with the system client. */
export function systemSshArgv(options: SystemSshOptions): string[] {
  const { target } = options;
  validateHostAlias(target.alias);
  const tty = options.tty ?? !options.argv?.length;
  const argv = [
    options.binary ?? "ssh",
    // -o, not -i: parsed like a config line, so quoting and %-escaping behave the same.
    "-o",
    `IdentityFile=${sshOptionValue(options.identityFile)}`,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    `UserKnownHostsFile=${sshOptionValue(options.knownHostsFile)}`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `HostKeyAlias=${target.alias}`,
    "-o",
    "CheckHostIP=no",
    "-p",
    String(target.port),
    "-l",
    target.user,
  ];
  for (const name of options.sendEnv ?? []) {
    if (!isEnvName(name)) throw new UnreachableError(`cannot send ${JSON.stringify(name)} to ssh`);
    argv.push("-o", `SendEnv=${name}`);
  }
  if (tty) argv.push("-t");
  argv.push("--", target.host);
  if (options.argv?.length) argv.push(quoteArgv(options.argv));
  return argv;
}

/**
 * Runs the system ssh with the terminal inherited and `env` added to its environment (the values
 * `SendEnv` names); returns its exit code (255: ssh's own error).
 */
export async function runSystemSsh(
  argv: string[],
  env: Record<string, string> = {},
): Promise<number> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      env,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new UnreachableError(`'${argv[0]}' is not installed or not on PATH`, {
        hint: 'install OpenSSH or set ssh_command = "builtin"',
      });
    }
    throw error;
  }
  const status = await child.status;
  return status.code === 0 && status.signal ? 128 : status.code;
}
