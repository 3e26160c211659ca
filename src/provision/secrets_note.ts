/**
 * The note provisioning prints once per run when host secrets were left out of the guest: the
 * same text from the profile step (MCP servers' env for `~/.profile`) and the claude step
 * (settings.json, `~/.claude.json`), so a run that does both prints it once.
 *
 * @module
 */
import { guestMcpServers, guestSettings, isJsonObject, mcpEnv } from "./claude_settings.ts";
import type { HostContext } from "./context.ts";
import { GuestSecretAllowList, type LeftOut, leftOutNote } from "./guest_secrets.ts";

/** The user's `guest_secrets` and the credential mode, for the filters. */
export function secretOptions(host: HostContext): { allow: GuestSecretAllowList; proxy: boolean } {
  return {
    allow: new GuestSecretAllowList(host.ctx.config.guest_secrets ?? []),
    proxy: host.ctx.config.credential_proxy,
  };
}

/** Everything a run leaves out of the guest, and the note about it (null: nothing). */
export async function secretsNote(host: HostContext): Promise<string | null> {
  const options = secretOptions(host);
  const sync = host.ctx.config.sync_mcp_servers;
  const settings = await host.claudeSettings();
  const claudeJson = await host.claudeJson();
  const leftOut: LeftOut[] = [];
  if (settings) {
    leftOut.push(...guestSettings(settings, { ...options, syncMcpServers: sync }).leftOut);
  }
  if (sync && claudeJson && isJsonObject(claudeJson.mcpServers)) {
    leftOut.push(
      ...guestMcpServers(claudeJson.mcpServers, { ...options, file: "~/.claude.json" }).leftOut,
    );
  }
  if (sync) {
    leftOut.push(
      ...mcpEnv([{ json: settings, file: "~/.claude/settings.json" }, {
        json: claudeJson,
        file: "~/.claude.json",
      }], { ...options, projectPath: host.repoRoot }).leftOut,
    );
  }
  return leftOutNote(leftOut);
}
