/**
 * Secret redaction. Every secret tachikoma learns (credentials, API keys) is registered here;
 * everything written to logs or errors passes through {@link redact}.
 *
 * @module
 */

const secrets = new Set<string>();
const MASK = "[REDACTED]";
/** Patterns that look like credentials even when not registered. */
const PATTERNS: RegExp[] = [
  /\bsk-ant-[A-Za-z0-9_-]{8,}/g,
  /\b(x-api-key|authorization)(\s*[:=]\s*)(Bearer\s+)?[^\s,;"']+/gi,
];

/** Registers a secret so it never appears in logs or errors. Short values are ignored. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 6) secrets.add(value);
}

/** Returns `text` with every registered secret and credential-looking token masked. */
export function redact(text: string): string {
  let out = text;
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join(MASK);
  }
  for (const re of PATTERNS) {
    out = out.replace(re, (m, ...groups) => {
      if (typeof groups[0] === "string" && typeof groups[1] === "string") {
        return `${groups[0]}${groups[1]}${MASK}`;
      }
      return m.length > 0 ? MASK : m;
    });
  }
  return out;
}

/**
 * `text` as a log line or an error may show it: {@link redact}ed, and every control character but
 * newline and tab shown as `?`, so text a guest wrote (its stderr in a warning or an error) can
 * never drive the terminal (escape sequences, title changes, bells).
 */
export function redactForTerminal(text: string): string {
  // deno-lint-ignore no-control-regex
  return redact(text).replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, "?");
}

/** Forgets every registered secret (tests only). */
export function clearSecrets(): void {
  secrets.clear();
}
