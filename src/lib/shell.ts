/**
 * The one path by which host values reach a guest shell: POSIX single quoting for arguments,
 * base64 for content. Nothing else in tachikoma builds shell text from values.
 *
 * @module
 */

/** Quotes one value for a POSIX shell: `'…'`, each `'` as `'\''`. Always quotes. */
export function quote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** Quotes an argv into one POSIX shell command line. */
export function quoteArgv(argv: string[]): string {
  return argv.map(quote).join(" ");
}

/** Standard base64 (padded) of text or bytes. */
export function toBase64(data: string | Uint8Array): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Decodes standard base64 to bytes. */
export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Environment variable names tachikoma will export: `[A-Za-z_][A-Za-z0-9_]*`. */
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** True when `name` is a valid environment variable name. */
export function isEnvName(name: string): boolean {
  return ENV_NAME_RE.test(name);
}

/**
 * A shell line `export NAME='value'` (POSIX single-quoted, byte-exact, newlines included).
 * Lines like this are written into guest files only through base64 transport or file push,
 * never by echoing them through a shell. Throws on an invalid name.
 */
export function exportLine(name: string, value: string): string {
  if (!isEnvName(name)) {
    throw new Error(`invalid environment variable name: ${JSON.stringify(name)}`);
  }
  return `export ${name}=${quote(value)}`;
}

/**
 * The script that runs an argv in the sandbox's login environment: `~/.profile` (tachikoma's
 * managed block: PATH with `~/.local/bin`, the proxy variables, `TACHIKOMA=1`) is read with its
 * output discarded, the working directory the command was given is restored (the block ends
 * with a `cd`), then the argv is exec'd exactly as given (never joined into a line).
 */
export const LOGIN_SCRIPT = 'd=$PWD; if [ -r "$HOME/.profile" ]; then ' +
  '. "$HOME/.profile" </dev/null >/dev/null 2>&1; fi; cd -- "$d" || exit 125; exec "$@"';

/** `argv` wrapped to run in the login environment (see {@link LOGIN_SCRIPT}). */
export function loginArgv(argv: string[]): string[] {
  return ["sh", "-c", LOGIN_SCRIPT, "tachikoma", ...argv];
}
