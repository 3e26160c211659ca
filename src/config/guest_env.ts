/**
 * The `[env]` section, split by where each value may live: values written into the guest's
 * profile (`K = "v"`, `K = { value = "v" }`), and session values given to each command and
 * session through the engine's exec environment and never written to the guest's disk
 * (`K = { forward = true }` copied from the host's environment at run time, skipped when unset;
 * `K = { value = "v", session_only = true }`). Forwarded values are registered as secrets
 * (redacted from logs and errors).
 *
 * @module
 */
import type { Config } from "./schema.ts";
import { registerSecret } from "../lib/redact.ts";

/** The `[env]` values written into the guest's profile, sorted by name. */
export function diskEnv(config: Pick<Config, "env">): [string, string][] {
  const out: [string, string][] = [];
  for (const [name, entry] of Object.entries(config.env ?? {})) {
    if (typeof entry === "string") out.push([name, entry]);
    else if (!entry.forward && !entry.session_only && entry.value !== undefined) {
      out.push([name, entry.value]);
    }
  }
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The `[env]` values for one command or session: forwarded host variables (when set on the
 * host) and session-only values. Never written to the guest's disk.
 */
export function sessionEnv(
  config: Pick<Config, "env">,
  hostEnv: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, entry] of Object.entries(config.env ?? {})) {
    if (typeof entry === "string") continue;
    if (entry.forward) {
      const value = hostEnv(name);
      if (value === undefined) continue;
      registerSecret(value);
      out[name] = value;
    } else if (entry.session_only && entry.value !== undefined) {
      out[name] = entry.value;
    }
  }
  return out;
}

/**
 * The names of the `[env]` values that exist only per command or session (forwarded, or
 * `session_only`), sorted: what an SSH session may carry (`SendEnv`/`AcceptEnv`).
 */
export function sessionEnvNames(config: Pick<Config, "env">): string[] {
  return Object.entries(config.env ?? {})
    .filter(([, entry]) => typeof entry !== "string" && (entry.forward || entry.session_only))
    .map(([name]) => name)
    .sort();
}
