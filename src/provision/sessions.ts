/**
 * Step 8, `sessions`: the terminal multiplexer behind persistent sessions (`enter`, `sessions`),
 * tmux, installed from the guest's own packages — apt-get, dnf, yum, apk, zypper or pacman,
 * whichever the guest has — when it is missing (`tmux_install = "package"`, the default). It runs
 * after the user's scripts, so a script can point the package manager at a mirror first. With
 * When egress is restricted the download goes through the proxy (as the bootstrap's does). With
 * `tmux_install = "skip"` nothing is installed: `enter` then opens a plain shell with a notice
 * when the guest has no tmux. Idempotent: a guest that has tmux is left alone.
 *
 * @module
 */
import type { StepDef } from "./context.ts";
import { ProvisionError } from "./errors.ts";
import { packageProxyEnv } from "./bootstrap.ts";

/** Inputs of the sessions step. */
export interface SessionsInputs {
  install: "package" | "skip";
}

/** Installs tmux with the first package manager found; prints `present` when it was there. */
const INSTALL_TMUX = [
  "set -u",
  "if command -v tmux >/dev/null 2>&1; then echo present; exit 0; fi",
  "log=/var/log/tachikoma-tmux.log",
  ': > "$log"',
  "if command -v apt-get >/dev/null 2>&1; then",
  "  export DEBIAN_FRONTEND=noninteractive",
  '  apt-get -q -y -o Dpkg::Use-Pty=0 --no-install-recommends install tmux >> "$log" 2>&1 ||',
  '    { apt-get -q -o Dpkg::Use-Pty=0 update >> "$log" 2>&1 &&',
  '      apt-get -q -y -o Dpkg::Use-Pty=0 --no-install-recommends install tmux >> "$log" 2>&1; }',
  'elif command -v dnf >/dev/null 2>&1; then dnf -y install tmux >> "$log" 2>&1',
  'elif command -v yum >/dev/null 2>&1; then yum -y install tmux >> "$log" 2>&1',
  'elif command -v apk >/dev/null 2>&1; then apk add --no-cache tmux >> "$log" 2>&1',
  'elif command -v zypper >/dev/null 2>&1; then zypper -n install tmux >> "$log" 2>&1',
  'elif command -v pacman >/dev/null 2>&1; then pacman -S --noconfirm tmux >> "$log" 2>&1',
  "else echo 'no known package manager (apt-get, dnf, yum, apk, zypper, pacman)' >&2; exit 3",
  "fi",
  "s=$?",
  "if [ $s -ne 0 ] || ! command -v tmux >/dev/null 2>&1; then",
  '  grep -E \'^(E|Err):\' "$log" | tail -n 3 >&2 || tail -n 3 "$log" >&2',
  "  exit 4",
  "fi",
  "echo installed",
].join("\n");

/** Step 8. */
export const sessionsStep: StepDef<SessionsInputs> = {
  name: "sessions",
  label: "Installing tmux (persistent sessions)",
  needsNetwork: true,
  inputs(host) {
    return Promise.resolve({ install: host.ctx.config.tmux_install });
  },
  async run(host, guest, inputs) {
    if (inputs.install === "skip") return;
    const { env } = await packageProxyEnv(host, "sessions");
    const r = await guest.sh(INSTALL_TMUX, [], { as: "root", env });
    if (r.code !== 0) {
      const why = r.stderr.trim().split("\n").filter(Boolean).join("; ") || `exit ${r.code}`;
      throw new ProvisionError(
        "sessions",
        `cannot install tmux from the guest's packages: ${why}`,
        { stderr: r.stderr },
      );
    }
  },
};
