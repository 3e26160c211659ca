/**
 * Step 5, `claude`: Claude Code installed (`claude_install`: "script" runs the official installer
 * with pipefail through the profile environment — so it uses the proxy —, "npm" installs the
 * package under `~/.local`, "skip" does nothing; an existing working `claude` is kept), no billed
 * warm-up call, `~/.claude.json` marked onboarded (JSON patched on the host), the host's
 * `share_claude_dirs` linked read-only into `~/.claude/`, the project memory linked where Claude
 * in `/mnt/tachikoma/code` looks for it, and the host's settings.json copied in cleaned (host
 * secrets left out unless `guest_secrets` lets them in; see `guest_secrets.ts`).
 *
 * @module
 */
import { SHARE_DIR_RE } from "../config/defaults.ts";
import { errorMessage } from "../lib/errors.ts";
import {
  guestMcpServers,
  guestSettings,
  isJsonObject,
  type JsonObject,
  patchClaudeJson,
  stableJson,
} from "./claude_settings.ts";
import type { HostContext, StepDef } from "./context.ts";
import { secretOptions, secretsNote } from "./secrets_note.ts";
import { GuestCommandError, ProvisionError } from "./errors.ts";
import type { Guest } from "./guest.ts";
import {
  claudeShareName,
  GUEST_MEMORY_DIR,
  GUEST_PROJECT_SLUG,
  GUEST_SHARE_ROOT,
} from "./shares.ts";

/** Claude Code's official install script. */
export const CLAUDE_INSTALL_URL = "https://claude.ai/install.sh";

/** Inputs of the claude step. */
export interface ClaudeInputs {
  install: "script" | "npm" | "skip";
  url: string;
  shareDirs: string[];
  /** The guest settings.json text, or null when the host has none. */
  settings: string | null;
  /** The host's user MCP servers for the guest's ~/.claude.json (null: leave as is). */
  mcpServers: JsonObject | null;
  /** Proxy-mode placeholder key to pre-approve. */
  approveApiKey: string | null;
  /** What was left out of the guest (host secrets not in `guest_secrets`), or null. */
  note: string | null;
}

const PROFILE_ENV = 'set +eu; [ -f "$HOME/.profile" ] && . "$HOME/.profile" >/dev/null 2>&1';

const HAS_CLAUDE = [
  PROFILE_ENV,
  'if [ -x "$HOME/.local/bin/claude" ] && "$HOME/.local/bin/claude" --version >/dev/null 2>&1; then exit 0; fi',
  "command -v claude >/dev/null 2>&1 && claude --version >/dev/null 2>&1 && exit 0",
  "exit 1",
].join("\n");

const INSTALL_SCRIPT = [
  PROFILE_ENV,
  "set -euo pipefail",
  'curl -fsSL "$1" | bash',
].join("\n");

const INSTALL_NPM = [
  PROFILE_ENV,
  "set -euo pipefail",
  'command -v npm >/dev/null 2>&1 || { echo "npm is not installed in the sandbox" >&2; exit 127; }',
  'npm install -g --prefix "$HOME/.local" @anthropic-ai/claude-code',
].join("\n");

const LINK_DIRS = [
  "set -eu",
  'mkdir -p -- "$HOME/.claude"',
  "# Arguments come in pairs: <dir under ~/.claude> <share name>.",
  'for l in "$HOME"/.claude/*; do',
  '  [ -L "$l" ] || continue',
  '  t=$(readlink -- "$l") || continue',
  '  case "$t" in "$ROOT"/claude-*) ;; *) continue ;; esac',
  "  keep=0",
  "  i=0",
  '  for a in "$@"; do',
  "    i=$((i + 1))",
  '    if [ $((i % 2)) = 1 ] && [ "$l" = "$HOME/.claude/$a" ]; then keep=1; fi',
  "  done",
  '  [ "$keep" = 1 ] || rm -f -- "$l"',
  "done",
  "while [ $# -ge 2 ]; do",
  '  d="$1"; src="$ROOT/$2"; dst="$HOME/.claude/$1"; shift 2',
  '  [ -d "$src" ] || continue',
  '  if [ -L "$dst" ] || [ ! -e "$dst" ]; then ln -sfn -- "$src" "$dst"; else echo "exists:$d"; fi',
  "done",
  'p="$HOME/.claude/projects/$SLUG"',
  'if [ -d "$MEMORY" ]; then',
  '  mkdir -p -- "$p"',
  '  if [ -L "$p/memory" ] || [ ! -e "$p/memory" ]; then ln -sfn -- "$MEMORY" "$p/memory"; else echo "exists:memory"; fi',
  "fi",
].join("\n");

async function claudeInputs(host: HostContext): Promise<ClaudeInputs> {
  const config = host.ctx.config;
  const proxy = config.credential_proxy;
  for (const d of config.share_claude_dirs) {
    if (!SHARE_DIR_RE.test(d)) {
      throw new ProvisionError(
        "claude",
        `invalid share_claude_dirs entry ${JSON.stringify(d)}: only letters, digits, - and _`,
      );
    }
  }
  const secrets = secretOptions(host);
  const hostSettings = await host.claudeSettings();
  const settings = hostSettings
    ? stableJson(
      guestSettings(hostSettings, { ...secrets, syncMcpServers: config.sync_mcp_servers }).value,
    )
    : null;
  let mcpServers: JsonObject | null = null;
  const claudeJson = await host.claudeJson();
  if (config.sync_mcp_servers && claudeJson && isJsonObject(claudeJson.mcpServers)) {
    mcpServers =
      guestMcpServers(claudeJson.mcpServers, { ...secrets, file: "~/.claude.json" }).value;
  }
  const approveApiKey = proxy ? (await host.proxyEnv("claude")).ANTHROPIC_API_KEY ?? null : null;
  return {
    install: config.claude_install,
    url: host.deps.claudeInstallUrl,
    shareDirs: [...config.share_claude_dirs],
    settings,
    mcpServers,
    approveApiKey,
    note: await secretsNote(host),
  };
}

async function install(guest: Guest, inputs: ClaudeInputs): Promise<void> {
  if (inputs.install === "skip") return;
  if ((await guest.sh(HAS_CLAUDE, [])).code === 0) return;
  const script = inputs.install === "script" ? INSTALL_SCRIPT : INSTALL_NPM;
  const args = inputs.install === "script" ? [inputs.url] : [];
  await guest.check(["bash", "-c", script, "tachikoma", ...args], "installing Claude Code", {
    timeoutMs: 15 * 60_000,
  });
  const check = await guest.sh(HAS_CLAUDE, []);
  if (check.code !== 0) {
    throw new GuestCommandError(
      "installing Claude Code (the installer finished but `claude --version` does not run)",
      check.code,
      check.stderr,
    );
  }
}

async function patchOnboarding(host: HostContext, guest: Guest, inputs: ClaudeInputs) {
  const path = `${await guest.home()}/.claude.json`;
  const bytes = await guest.readFile(path);
  let current: JsonObject = {};
  const before = bytes ? new TextDecoder().decode(bytes) : null;
  if (before !== null && before.trim() !== "") {
    try {
      const parsed = JSON.parse(before);
      if (!isJsonObject(parsed)) throw new Error("not a JSON object");
      current = parsed;
    } catch (error) {
      host.warn(
        `~/.claude.json in ${guest.sandbox} is not valid JSON (${errorMessage(error)}); left as is`,
      );
      return;
    }
  }
  const patched = patchClaudeJson(current, {
    mcpServers: inputs.mcpServers,
    approveApiKey: inputs.approveApiKey,
  });
  const text = JSON.stringify(patched, null, 2) + "\n";
  if (text !== before) await guest.writeFile(path, text, { mode: 0o600 });
}

/** Step 5. */
export const claudeStep: StepDef<ClaudeInputs> = {
  name: "claude",
  label: "Setting up Claude Code",
  needsNetwork: true,
  inputs: claudeInputs,
  async run(host, guest, inputs) {
    if (inputs.note) host.warn(`${guest.sandbox}: ${inputs.note}`);
    await install(guest, inputs);
    await patchOnboarding(host, guest, inputs);
    const pairs = inputs.shareDirs.flatMap((d) => [d, claudeShareName(d)]);
    const r = await guest.shCheck(LINK_DIRS, pairs, {
      what: "linking the shared Claude dirs",
      env: { ROOT: GUEST_SHARE_ROOT, MEMORY: GUEST_MEMORY_DIR, SLUG: GUEST_PROJECT_SLUG },
    });
    for (const m of r.stdout.matchAll(/^exists:(.+)$/gm)) {
      host.warn(
        `~/.claude/${m[1]} in ${guest.sandbox} is a real directory; not linking the host's`,
      );
    }
    if (inputs.settings !== null) {
      const path = `${await guest.home()}/.claude/settings.json`;
      const current = await guest.readFile(path);
      if (current === null || new TextDecoder().decode(current) !== inputs.settings) {
        await guest.writeFile(path, inputs.settings, { mode: 0o600 });
      }
    }
  },
};
