/**
 * Step 4, `profile`: a managed block at the end of the guest's `~/.profile`, replaced on every
 * provisioning (never appended twice), holding `TACHIKOMA=1`, the credential proxy environment
 * (proxy mode) or the host credential (direct mode), the MCP servers' environment variables
 * that `guest_secrets` lets in, the `[env]` values meant for the disk (never forwarded or
 * session-only ones), `~/.local/bin` on `PATH`, with `claude_flags` the `PATH` entry of the `claude` wrapper
 * (written here too, see claude_flags.ts), and finally `cd /mnt/tachikoma/code`.
 *
 * Every value is an `export NAME='value'` line from `exportLine` (POSIX single quotes, so
 * quotes, `$()`, backticks, newlines and unicode arrive byte-exact and execute nothing); names
 * are validated; the whole file travels base64 and is replaced atomically. Bytes of the profile
 * outside the block are kept exactly.
 *
 * @module
 */
import { registerSecret } from "../lib/redact.ts";
import { exportLine, isEnvName, quote } from "../lib/shell.ts";
import {
  applyBlock,
  binaryToBytes,
  type BlockMarkers,
  bytesToBinary,
  utf8ToBinary,
} from "../ssh/marked_block.ts";
import { mcpEnv } from "./claude_settings.ts";
import { diskEnv } from "../config/guest_env.ts";
import { secretOptions, secretsNote } from "./secrets_note.ts";
import { claudeWrapper, wrapperPath, wrapperPathLine } from "./claude_flags.ts";
import type { HostContext, StepDef } from "./context.ts";
import { directInjection } from "./credentials.ts";
import { ProvisionError } from "./errors.ts";
import { GUEST_CODE_DIR } from "./shares.ts";

/** The profile block's markers. */
export const PROFILE_MARKERS: BlockMarkers = {
  begin: "# BEGIN tachikoma managed",
  end: "# END tachikoma managed",
};

/** The block line putting `~/.local/bin` on `PATH` (once, however often it is read). */
export const LOCAL_BIN_LINE =
  'case ":$PATH:" in *":$HOME/.local/bin:"*) ;; *) PATH="$HOME/.local/bin:$PATH"; export PATH ;; esac';

/** Inputs of the profile step. */
export interface ProfileInputs {
  /** Exported variables, in block order. */
  vars: [string, string][];
  /** Direct mode with a credentials file: its content. */
  credentialsFile: string | null;
  proxy: boolean;
  /** What was left out of the guest (host secrets not in `guest_secrets`), or null. */
  note: string | null;
  /** `claude_flags`: with any, the `claude` wrapper is written and put first on PATH. */
  claudeFlags: string[];
}

/**
 * The lines between the markers. Throws when a name is invalid or a value contains a line that
 * would read as a block marker (it could not be found again on the next run).
 */
export function profileBody(vars: [string, string][], extraLines: string[] = []): string[] {
  const lines = ["# Written by tachikoma at every provisioning: edits inside this block are lost."];
  for (const [name, value] of vars) {
    if (!isEnvName(name)) {
      throw new ProvisionError(
        "profile",
        `invalid environment variable name ${JSON.stringify(name)}`,
      );
    }
    const line = exportLine(name, value);
    for (const piece of line.split("\n")) {
      const t = piece.replace(/^[ \t\r]+|[ \t\r]+$/g, "");
      if (t === PROFILE_MARKERS.begin || t === PROFILE_MARKERS.end) {
        throw new ProvisionError(
          "profile",
          `the value of ${name} contains a line '${t}', which tachikoma reserves`,
        );
      }
    }
    lines.push(line);
  }
  lines.push(LOCAL_BIN_LINE);
  lines.push(...extraLines);
  lines.push(`cd ${quote(GUEST_CODE_DIR)}`);
  return lines;
}

async function profileVars(host: HostContext): Promise<ProfileInputs> {
  const config = host.ctx.config;
  const proxy = config.credential_proxy;
  const vars: [string, string][] = [["TACHIKOMA", "1"]];
  let credentialsFile: string | null = null;
  // The proxy's variables: its credential placeholder (credential_proxy) and, when egress is
  // restricted, HTTP(S)_PROXY — the guest's only way out — with or without credential_proxy.
  if (proxy || config.egress !== "unrestricted") {
    const env = await host.proxyEnv("profile");
    for (const name of Object.keys(env).sort()) {
      if (!isEnvName(name)) {
        throw new ProvisionError("profile", `invalid proxy variable name ${JSON.stringify(name)}`);
      }
      vars.push([name, env[name]]);
    }
  }
  if (!proxy) {
    const injection = directInjection(await host.credential());
    for (const k of injection.skipped) host.warn(`skipping invalid env var name: ${k}`);
    vars.push(...injection.vars);
    credentialsFile = injection.credentialsFile;
  }
  // `[env]` values meant for the disk (forwarded and session-only ones never come here).
  const own = new Set(vars.map(([k]) => k));
  for (const [k, v] of diskEnv(config)) {
    if (own.has(k)) {
      host.warn(`[env] ${k} would override tachikoma's own variable; not exported`);
      continue;
    }
    vars.push([k, v]);
  }
  if (config.sync_mcp_servers) {
    // Only the values `guest_secrets` lets in (each a secret: registered for redaction).
    const mcp = mcpEnv([
      { json: await host.claudeSettings(), file: "~/.claude/settings.json" },
      { json: await host.claudeJson(), file: "~/.claude.json" },
    ], { ...secretOptions(host), projectPath: host.repoRoot });
    for (const k of mcp.invalid) {
      host.warn(`skipping invalid MCP env var name: ${JSON.stringify(k)}`);
    }
    const taken = new Set(vars.map(([k]) => k));
    for (const [k, v] of mcp.vars) {
      if (taken.has(k)) {
        host.warn(`MCP server variable ${k} would override tachikoma's own; not exported`);
        continue;
      }
      registerSecret(v);
      vars.push([k, v]);
    }
  }
  return {
    vars,
    credentialsFile,
    proxy,
    note: await secretsNote(host),
    claudeFlags: [...config.claude_flags],
  };
}

const DROP_CREDENTIALS =
  'f="$HOME/.claude/.credentials.json"; if [ -e "$f" ]; then rm -f -- "$f"; echo removed; fi';

/** Step 4. */
export const profileStep: StepDef<ProfileInputs> = {
  name: "profile",
  label: "Configuring the environment",
  inputs: profileVars,
  async run(host, guest, inputs) {
    if (inputs.note) host.warn(`${guest.sandbox}: ${inputs.note}`);
    const home = await guest.home();
    const path = `${home}/.profile`;
    const flags = inputs.claudeFlags;
    // The wrapper, the credentials file and the read of ~/.profile touch different files: they
    // run side by side (each a guest round trip), then ~/.profile is written if it changed.
    const wrapper = flags.length > 0
      ? guest.writeFile(wrapperPath(home), claudeWrapper(home, flags), { mode: 0o755 })
      : guest.shCheck('rm -f -- "$1"', [wrapperPath(home)], {
        what: "removing the claude wrapper",
      });
    const credentials = inputs.proxy
      ? guest.sh(DROP_CREDENTIALS, []).then((r) => {
        if (r.stdout.includes("removed")) {
          host.warn(
            `removed ~/.claude/.credentials.json from ${guest.sandbox}: the credential proxy is on`,
          );
        }
      })
      : inputs.credentialsFile !== null
      ? guest.writeFile(`${home}/.claude/.credentials.json`, inputs.credentialsFile, {
        mode: 0o600,
      })
      : undefined;
    const [current] = await Promise.all([guest.readFile(path), wrapper, credentials]);
    const extra = flags.length > 0 ? [wrapperPathLine(home)] : [];
    const body = profileBody(inputs.vars, extra).map(utf8ToBinary);
    const before = bytesToBinary(current ?? new Uint8Array());
    const after = applyBlock(before, body, {
      markers: PROFILE_MARKERS,
      placement: "bottom",
      label: `~/.profile in ${guest.sandbox}`,
    });
    if (after !== before) await guest.writeFile(path, binaryToBytes(after), { mode: 0o600 });
  },
};
