/**
 * The interactive shell of `spawn` and `enter` — a persistent tmux session in the guest
 * (`sessions.ts`) or a plain login shell: the backend's PTY session bridged to this
 * terminal (`attach.ts`), or — with `ssh_command = "system"` — the OpenSSH client with
 * tachikoma's key and pinned host keys, the terminal inherited, the `[env]` session values sent
 * with `SendEnv` (never in its argv). With `--json` stdout must stay
 * one document, so the built-in session is used and its output goes to stderr.
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import type { SandboxRecord } from "../state/schema.ts";
import { paths } from "../config/paths.ts";
import type { LifecycleDeps } from "./lifecycle.ts";
import { attachArgv } from "./sessions.ts";
import { sessionEnv } from "../config/guest_env.ts";

/** Options of {@link interactiveShell}. */
export interface InteractiveOptions {
  /** `--json`: the session's output goes to stderr. */
  json: boolean;
  signal?: AbortSignal;
  /**
   * The persistent session to attach to (tmux in the guest, created on first use); null or
   * absent: a plain login shell that ends with the connection.
   */
  session?: string | null;
}

/**
 * Opens a shell in the sandbox and returns its exit status (0–255). With the OpenSSH client on an
 * engine whose boot does not wait for sshd (incus), it first waits (`boot_timeout_secs`) until
 * sshd answers: a sandbox just started may not run it yet.
 */
export async function interactiveShell(
  deps: Pick<LifecycleDeps, "config" | "home" | "stateDir" | "clock" | "probe" | "signal">,
  sandbox: { backend: Backend; record: SandboxRecord },
  options: InteractiveOptions,
): Promise<number> {
  const { backend, record } = sandbox;
  const { exitStatus } = await import("./attach.ts");
  const session = options.session ?? null;
  if (deps.config.ssh_command === "system" && !options.json) {
    if (!backend.capabilities.execOverSsh) {
      const { waitForSsh } = await import("./boot.ts");
      await waitForSsh({
        backend,
        name: record.name,
        clock: deps.clock,
        probe: deps.probe,
        deadline: deps.clock.now() + deps.config.boot_timeout_secs * 1000,
        timeoutSecs: deps.config.boot_timeout_secs,
        signal: options.signal ?? deps.signal,
      });
    }
    const ssh = await import("../ssh/mod.ts");
    const values = sessionEnv(deps.config);
    const argv = ssh.systemSshArgv({
      target: ssh.sandboxTarget(await backend.sshEndpoint(record.name), record, deps.config),
      identityFile: ssh.keyPaths(deps.home).privatePath,
      knownHostsFile: paths(deps.stateDir).knownHosts,
      argv: session ? attachArgv(session) : undefined,
      tty: true,
      sendEnv: Object.keys(values),
    });
    return exitStatus(await ssh.runSystemSsh(argv, values));
  }
  const { attach, processTerminal, terminalEnv } = await import("./attach.ts");
  const code = await attach(
    (size) =>
      backend.shell(record.name, {
        size,
        env: { ...sessionEnv(deps.config), ...terminalEnv() },
        user: "user",
        argv: session ? attachArgv(session) : undefined,
      }),
    processTerminal(options.json ? "stderr" : "stdout"),
    { signal: options.signal, sandbox: record.name },
  );
  return exitStatus(code);
}

/**
 * Forgets the sandbox's pinned SSH host keys (it is being created anew or destroyed), so the
 * next sandbox with this name gets its keys pinned fresh. Best effort.
 */
export async function forgetHostKeys(stateDir: string, name: string): Promise<void> {
  try {
    const ssh = await import("../ssh/mod.ts");
    await ssh.forgetHostKeys(stateDir, name);
  } catch {
    // No known_hosts yet, or unreadable: nothing pinned to forget.
  }
}
