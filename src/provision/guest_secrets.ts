/**
 * Which host values may enter a guest: what counts as a secret in Claude's settings, and the
 * user's opt-in list (`guest_secrets`).
 *
 * Left out of every guest unless `guest_secrets` names them:
 *
 * - every `env` value and every `headers` value of every MCP server (tachikoma cannot tell a
 *   server's token from its log level, so all of them);
 * - credentials in an MCP server's `url`: a `user:password@` part and query parameters whose
 *   name looks secret (below);
 * - a settings.json `env` value that looks secret: its name has a word (split at `_`, `-`, `.`
 *   and camelCase) `KEY`, `APIKEY`, `TOKEN`, `SECRET`, `PASSWORD`, `PASSWD`, `PASS`,
 *   `PASSPHRASE`, `CREDENTIAL(S)`, `CREDS`, `AUTH`, `AUTHORIZATION`, `COOKIE`, `SESSION`, `PAT`,
 *   `DSN`, `PRIVATE`, or a word ending in `KEY`/`TOKEN`/`SECRET`/`PASSWORD` — unless the value is
 *   empty, a number or a boolean; or whatever its name, its value has the shape of a
 *   credential: a PEM private key, a URL with a password, or a well-known token prefix
 *   (`ghp_`, `github_pat_`, `glpat-`, `xoxb-`, `sk-`, `AKIA…`, `AIza…`, `npm_`, `pypi-`, a JWT).
 *
 * `guest_secrets` entries: `env.<NAME>`, `mcp.<server>.env.<NAME>`,
 * `mcp.<server>.headers.<Header>` (case-insensitive), `mcp.<server>.url`; `*` stands for any one
 * server, name or header.
 *
 * @module
 */
import { quote } from "../lib/shell.ts";

/** One place a host secret can sit in Claude's settings. */
export type SecretSlot =
  | { kind: "env"; name: string }
  | { kind: "mcp_env"; server: string; name: string }
  | { kind: "mcp_header"; server: string; name: string }
  | { kind: "mcp_url"; server: string };

/** A value left out of the guest. */
export interface LeftOut {
  slot: SecretSlot;
  /** The host file it is in (`~/.claude/settings.json`, `~/.claude.json`). */
  file: string;
}

const SECRET_WORDS = new Set([
  "KEY",
  "APIKEY",
  "TOKEN",
  "SECRET",
  "PASSWORD",
  "PASSWD",
  "PASS",
  "PASSPHRASE",
  "CREDENTIAL",
  "CREDENTIALS",
  "CREDS",
  "AUTH",
  "AUTHORIZATION",
  "COOKIE",
  "SESSION",
  "PAT",
  "DSN",
  "PRIVATE",
]);
const SECRET_SUFFIX = /(?:KEY|TOKEN|SECRET|PASSWORD)$/;
const PLAIN_VALUE = /^(?:[+-]?\d+(?:\.\d+)?|true|false|yes|no|on|off|)$/i;
const SECRET_VALUE = new RegExp(
  [
    String.raw`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----`,
    String.raw`^[a-z][a-z0-9+.-]*://[^\s/@:]*:[^\s/@]+@`,
    String
      .raw`\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,})`,
    String.raw`\b(?:xox[abprs]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16})`,
    String.raw`\b(?:AIza[0-9A-Za-z_-]{35}|npm_[A-Za-z0-9]{36}|pypi-[A-Za-z0-9_-]{50,})`,
    String.raw`\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.`,
  ].join("|"),
  "i",
);

/** The words of a variable or parameter name, upper-cased (`apiKey` → API, KEY). */
function words(name: string): string[] {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase().split(/[^A-Z0-9]+/)
    .filter((w) => w !== "");
}

/** True when a name looks like it holds a secret (see the module documentation). */
export function secretName(name: string): boolean {
  return words(name).some((w) => SECRET_WORDS.has(w) || (w.length > 5 && SECRET_SUFFIX.test(w)));
}

/** True when a value has the shape of a credential, whatever its name. */
export function secretValue(value: string): boolean {
  return SECRET_VALUE.test(value);
}

/** True when a settings.json `env` entry looks secret (see the module documentation). */
export function secretLooking(name: string, value: string): boolean {
  if (secretValue(value)) return true;
  return secretName(name) && !PLAIN_VALUE.test(value.trim());
}

/**
 * A URL without its credentials (`user:password@`, query parameters with a secret-looking
 * name), or null when it has none (or is not a URL).
 */
export function urlWithoutCredentials(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  let changed = false;
  if (u.username !== "" || u.password !== "") {
    u.username = "";
    u.password = "";
    changed = true;
  }
  for (const name of [...u.searchParams.keys()]) {
    if (secretName(name)) {
      u.searchParams.delete(name);
      changed = true;
    }
  }
  return changed ? u.toString() : null;
}

/** A parsed `guest_secrets` entry (`null` parts are `*`). */
type Pattern =
  | { kind: "env"; name: string | null }
  | { kind: "mcp_env" | "mcp_header"; server: string | null; name: string | null }
  | { kind: "mcp_url"; server: string | null };

function parsePattern(entry: string): Pattern | null {
  const star = (s: string) => s === "*" ? null : s;
  if (entry.startsWith("env.")) return { kind: "env", name: star(entry.slice(4)) };
  const m = /^mcp\.([^.]+)\.(?:(env|headers)\.(.+)|(url))$/.exec(entry);
  if (!m) return null;
  if (m[4]) return { kind: "mcp_url", server: star(m[1]) };
  return {
    kind: m[2] === "env" ? "mcp_env" : "mcp_header",
    server: star(m[1]),
    name: star(m[3]),
  };
}

/** The user's `guest_secrets`: which host secrets may enter guests. */
export class GuestSecretAllowList {
  readonly #patterns: Pattern[];

  /** Entries that do not parse are ignored (the config schema refuses them first). */
  constructor(entries: readonly string[] = []) {
    this.#patterns = entries.map(parsePattern).filter((p): p is Pattern => p !== null);
  }

  /** True when the user let the value at `slot` into guests. */
  allows(slot: SecretSlot): boolean {
    return this.#patterns.some((p) => {
      if (p.kind !== slot.kind) return false;
      if (p.kind === "env") return p.name === null || p.name === (slot as { name: string }).name;
      const s = slot as { server: string; name?: string };
      if (p.server !== null && p.server !== s.server) return false;
      if (p.kind === "mcp_url") return true;
      if (p.name === null) return true;
      return p.kind === "mcp_header"
        ? p.name.toLowerCase() === s.name!.toLowerCase()
        : p.name === s.name;
    });
  }
}

/** The `guest_secrets` entry that lets `slot` in (`*` for a server name it cannot spell). */
export function optInEntry(slot: SecretSlot): string {
  if (slot.kind === "env") return `env.${slot.name}`;
  const server = /^[A-Za-z0-9_-]+$/.test(slot.server) ? slot.server : "*";
  switch (slot.kind) {
    case "mcp_env":
      return `mcp.${server}.env.${slot.name}`;
    case "mcp_header":
      return `mcp.${server}.headers.${slot.name}`;
    case "mcp_url":
      return `mcp.${server}.url`;
  }
}

/** How a slot is named for users. */
export function slotLabel(slot: SecretSlot): string {
  if (slot.kind === "env") return `settings.json env ${slot.name}`;
  const server = `MCP server ${JSON.stringify(slot.server)}`;
  switch (slot.kind) {
    case "mcp_env":
      return `${server} env ${slot.name}`;
    case "mcp_header":
      return `${server} header ${slot.name}`;
    case "mcp_url":
      return `${server} url credentials`;
  }
}

const NOTE_LIMIT = 8;

/**
 * The one-line note about what was left out (names only, never values), with how to opt in;
 * null when nothing was.
 */
export function leftOutNote(leftOut: readonly LeftOut[]): string | null {
  const labels = [...new Set(leftOut.map((l) => slotLabel(l.slot)))].sort();
  if (labels.length === 0) return null;
  const shown = labels.slice(0, NOTE_LIMIT).join(", ") +
    (labels.length > NOTE_LIMIT ? `, and ${labels.length - NOTE_LIMIT} more` : "");
  const example = optInEntry(leftOut[0].slot);
  return `host secrets left out of the sandbox: ${shown}; to let one in, add it to ` +
    `guest_secrets (e.g. tachikoma config set guest_secrets ${quote(example)})`;
}
