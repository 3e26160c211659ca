/**
 * Step 6, `gh_auth` (opt-in, `sync_gh_auth = true`, a gated key): the host's GitHub CLI login
 * (`hosts.yml`, with the OAuth token of every host in it) copied to the guest user's
 * `~/.config/gh/hosts.yml` (0600), and said so on stderr: which file, which hosts and users.
 * When `gh` is missing in the guest it is installed from GitHub's apt repository (through the
 * proxy environment); a failed install is a warning, not a failure. (A token kept in the
 * system keyring instead of `hosts.yml` is not copied.)
 *
 * @module
 */
import { registerSecret } from "../lib/redact.ts";
import type { HostContext, StepDef } from "./context.ts";

/** Inputs of the gh_auth step. */
export interface GhAuthInputs {
  enabled: boolean;
  /** Host hosts.yml content (null: none found). */
  hostsYml: string | null;
  /** Where it was looked for. */
  source: string;
}

/**
 * The hosts of a `hosts.yml` (its top-level keys) with the user of each, when it names one:
 * `github.com (user octocat)`. Tokens are never part of it.
 */
export function ghHosts(hostsYml: string): string[] {
  const out: string[] = [];
  let current: { host: string; user: string | null } | null = null;
  const flush = () => {
    if (current) out.push(current.user ? `${current.host} (user ${current.user})` : current.host);
  };
  for (const line of hostsYml.split(/\r?\n/)) {
    const top = /^([^\s#][^:]*):\s*$/.exec(line);
    if (top) {
      flush();
      current = { host: top[1].replace(/^["']|["']$/g, ""), user: null };
      continue;
    }
    const user = /^\s+user:\s*["']?([^"'\s#]+)/.exec(line);
    if (user && current && current.user === null) current.user = user[1];
  }
  flush();
  return out;
}

const INSTALL_GH = [
  "set -eu",
  "command -v gh >/dev/null 2>&1 && exit 0",
  'command -v apt-get >/dev/null 2>&1 || { echo "no apt-get in the sandbox" >&2; exit 3; }',
  "export DEBIAN_FRONTEND=noninteractive",
  "command -v curl >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq curl; }",
  "k=/usr/share/keyrings/githubcli-archive-keyring.gpg",
  'curl -fsSL https://cli.github.com/packages/githubcli-archive-keyring.gpg -o "$k"',
  'chmod 644 "$k"',
  'echo "deb [arch=$(dpkg --print-architecture) signed-by=$k] https://cli.github.com/packages stable main" > /etc/apt/sources.list.d/github-cli.list',
  "apt-get update -qq",
  "apt-get install -y -qq gh",
].join("\n");

/** The host's gh config dir (`$GH_CONFIG_DIR`, else `$XDG_CONFIG_HOME/gh`, else `~/.config/gh`). */
export function ghConfigDir(env: (name: string) => string | undefined, home: string): string {
  const explicit = env("GH_CONFIG_DIR");
  if (explicit) return explicit;
  const xdg = env("XDG_CONFIG_HOME");
  return xdg ? `${xdg}/gh` : `${home}/.config/gh`;
}

async function ghInputs(host: HostContext): Promise<GhAuthInputs> {
  const source = `${ghConfigDir(host.deps.env, host.deps.home)}/hosts.yml`;
  if (!host.ctx.config.sync_gh_auth) return { enabled: false, hostsYml: null, source };
  let hostsYml: string | null = null;
  try {
    hostsYml = await Deno.readTextFile(source);
    for (const m of hostsYml.matchAll(/oauth_token:\s*["']?([^\s"']+)/g)) registerSecret(m[1]);
  } catch {
    hostsYml = null;
  }
  return { enabled: true, hostsYml, source };
}

/** Step 6. */
export const ghAuthStep: StepDef<GhAuthInputs> = {
  name: "gh_auth",
  label: "Syncing GitHub CLI auth",
  needsNetwork: true,
  inputs: ghInputs,
  async run(host, guest, inputs) {
    if (!inputs.enabled) return;
    if (inputs.hostsYml === null) {
      host.warn(`sync_gh_auth is on but ${inputs.source} cannot be read; skipped`);
      return;
    }
    const env = host.ctx.config.credential_proxy ? await host.proxyEnv("gh_auth") : {};
    const r = await guest.sh(INSTALL_GH, [], { as: "root", env, timeoutMs: 10 * 60_000 });
    if (r.code !== 0) {
      const why = r.stderr.trim().split("\n").slice(-2).join(" / ");
      host.warn(`could not install gh in ${guest.sandbox} (${why}); the login is copied anyway`);
    }
    const home = await guest.home();
    const hosts = ghHosts(inputs.hostsYml);
    host.deps.logger.info(
      `sync_gh_auth: copying ${inputs.source} into ${guest.sandbox}:~/.config/gh/hosts.yml — ` +
        `the GitHub CLI login${hosts.length > 0 ? ` for ${hosts.join(", ")}` : ""}; its ` +
        "token can act as you from inside the sandbox",
    );
    await guest.writeFile(`${home}/.config/gh/hosts.yml`, inputs.hostsYml, { mode: 0o600 });
  },
};
