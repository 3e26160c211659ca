/**
 * Step 0, `bootstrap`: turns a stock image (the public `debian/12`: no sshd, no sudo, no user)
 * into a guest the other steps can work in — the sandbox user (uid/gid 1000, named `ssh_user`),
 * passwordless sudo, openssh-server, git, curl, ca-certificates, a default locale, sshd enabled —
 * through the engine's API as root, so no SSH is needed for it. Engines whose exec goes through
 * SSH (tart) already have all of this in their images: the step does nothing there.
 *
 * One exec on a ready guest (the script checks before it changes anything, see
 * `bootstrap_script.ts`); idempotent, and an interrupted package install resumes. With
 * restricted egress the packages come through the host proxy (`HTTP(S)_PROXY` for apt).
 *
 * A failure (no apt, a package that does not install, a mirror out of reach) is one line naming
 * what and why; the guest has no usable base system, so core stops it and records it failed.
 *
 * @module
 */
import { log } from "../lib/log.ts";
import { redact } from "../lib/redact.ts";
import type { HostContext, StepDef } from "./context.ts";
import { ProvisionError } from "./errors.ts";
import {
  BOOTSTRAP_SCRIPT,
  DID_PREFIX,
  ERROR_PREFIX,
  EXIT_EXPLAINED,
  GUEST_LOG,
} from "./bootstrap_script.ts";

/** What the bootstrap installs when missing (with `--no-install-recommends`). */
export const BOOTSTRAP_PACKAGES: readonly string[] = [
  "openssh-server",
  "sudo",
  "git",
  "curl",
  "ca-certificates",
];

/**
 * The bootstrap's recipe for `user`: 12 hex digits that change when the script, the packages or
 * the user change (the key of prepared images made by it).
 */
export async function bootstrapRecipe(user: string): Promise<string> {
  const text = JSON.stringify([BOOTSTRAP_SCRIPT, BOOTSTRAP_PACKAGES, user]);
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  return [...digest.subarray(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The variables of the proxy environment apt needs: the proxy only (never the credential-proxy
 * ones, and no `NO_PROXY`: every package download goes through the proxy's egress policy, a
 * mirror on the host's bridge address included).
 */
const APT_PROXY_VARS = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"];

/** Budget of one bootstrap run (a package install on a slow mirror). */
const BOOTSTRAP_TIMEOUT_MS = 20 * 60_000;

/** Inputs of the bootstrap step. */
export interface BootstrapInputs {
  user: string;
  packages: readonly string[];
  /** False on engines whose images come ready (exec over SSH): nothing to do. */
  needed: boolean;
}

/** What a bootstrap run did, from the script's `tachikoma-bootstrap-did:` line. */
export function parseDid(stdout: string): string[] {
  const line = stdout.split("\n").find((l) => l.startsWith(DID_PREFIX));
  return line ? line.slice(DID_PREFIX.length).trim().split(/\s+/).filter(Boolean) : [];
}

/** The script's one-line reason of a failure, or null. */
export function explainedFailure(stderr: string): string | null {
  const line = stderr.split("\n").find((l) => l.startsWith(ERROR_PREFIX));
  return line ? line.slice(ERROR_PREFIX.length).trim() : null;
}

/**
 * The environment of a package download in the guest (bootstrap, tmux): the proxy variables
 * when egress is restricted (the host firewall then leaves the guest nothing but the proxy),
 * none otherwise. `proxy` says whether downloads go through the proxy (for hints).
 */
export async function packageProxyEnv(
  host: HostContext,
  step: string,
): Promise<{ env: Record<string, string>; proxy: boolean }> {
  if (host.ctx.config.egress === "unrestricted") return { env: {}, proxy: false };
  const all = await host.proxyEnv(step);
  const env: Record<string, string> = {};
  for (const k of APT_PROXY_VARS) if (all[k] !== undefined) env[k] = all[k];
  return { env, proxy: env.HTTP_PROXY !== undefined };
}

function hintFor(reason: string, proxy: boolean, sandbox: string): string {
  const retry =
    `then \`tachikoma spawn\` bootstraps it again (or \`tachikoma destroy ${sandbox}\`)`;
  if (
    /apt-get update|Failed to fetch|Unable to locate|Could not resolve|Temporary failure/.test(
      reason,
    )
  ) {
    return proxy
      ? "packages come through tachikoma's proxy (egress is restricted): allow the image's apt " +
        `mirror (\`tachikoma network allow ${sandbox} <host>\`; egress_allow for new ` +
        `sandboxes), or check its apt sources; ${retry}`
      : `check the image's apt sources and its network; ${retry}`;
  }
  if (/no apt-get|unsupported distribution/.test(reason)) {
    return 'use a Debian or Ubuntu image (base_image, e.g. "images:debian/12") or one that ' +
      `already has the sandbox user, sudo and sshd; ${retry}`;
  }
  return `see ${GUEST_LOG} in the guest; ${retry}`;
}

/** Step 0. */
export const bootstrapStep: StepDef<BootstrapInputs> = {
  name: "bootstrap",
  label: "Preparing the system",
  inputs(host) {
    return Promise.resolve({
      user: host.ctx.config.ssh_user,
      packages: BOOTSTRAP_PACKAGES,
      needed: !host.ctx.backend.capabilities.execOverSsh,
    });
  },
  async run(host, guest, inputs) {
    if (!inputs.needed) return;
    const { env, proxy } = await packageProxyEnv(host, "bootstrap");
    // guest.run, not guest.sh: the user's home is looked up only once the user exists.
    const r = await guest.run(
      ["sh", "-c", BOOTSTRAP_SCRIPT, "tachikoma", inputs.user, inputs.packages.join(" ")],
      { as: "root", env, timeoutMs: BOOTSTRAP_TIMEOUT_MS },
    );
    if (r.code === 0) {
      const did = parseDid(r.stdout);
      log.debug(`bootstrap of ${guest.sandbox}: ${did.length ? did.join(", ") : "nothing to do"}`);
      return;
    }
    const reason = r.code === EXIT_EXPLAINED ? explainedFailure(r.stderr) : null;
    if (r.stderr.trim()) log.debug(`bootstrap of ${guest.sandbox}: ${redact(r.stderr.trim())}`);
    const detail = reason ??
      `the bootstrap script exited ${r.code}: ${
        redact(r.stderr.trim().split("\n").pop() ?? "no output")
      }`;
    throw new ProvisionError("bootstrap", detail.replace(/\s*\n\s*/g, " "), {
      hint: hintFor(detail, proxy, guest.sandbox),
      unusable: true,
    });
  },
};
