/**
 * Changing one value of a TOML document while keeping everything else in the file byte for
 * byte: comments, blank lines, ordering, other sections (on the scanner of toml_scan.ts).
 *
 * @module
 */
import { samePath, scanToml } from "./toml_scan.ts";

/** A TOML basic string literal for `text` (escapes quotes, backslashes and control chars). */
export function tomlString(text: string): string {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (code < 0x20 || code === 0x7f) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return out + '"';
}

/** A TOML literal for a config value: string, integer, boolean, array or (inline) table. */
export function tomlValue(value: unknown): string {
  if (typeof value === "string") return tomlString(value);
  if (typeof value === "boolean") return String(value);
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(", ")}]`;
  if (value !== null && typeof value === "object" && !(value instanceof Date)) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return "{}";
    return `{ ${entries.map(([k, v]) => `${tomlKey(k)} = ${tomlValue(v)}`).join(", ")} }`;
  }
  throw new Error(`cannot write ${typeof value} as a config value`);
}

/** A key part as written in TOML: bare when possible, else quoted. */
function tomlKey(part: string): string {
  return /^[A-Za-z0-9_-]+$/.test(part) ? part : tomlString(part);
}

/**
 * Returns `text` with the value at `path` (one or two parts: `key` or `section.key`) set to
 * the TOML `literal`. An existing value is replaced in place (its comment kept). A new key
 * goes after the last key of its table; a missing `[section]` is appended at the end.
 */
export function setTomlValue(text: string, path: string[], literal: string): string {
  const nl = lineEnding(text);
  const scan = scanToml(text);
  const existing = scan.entries.find((e) => samePath(e.path, path));
  if (existing) {
    return text.slice(0, existing.valueStart) + literal + text.slice(existing.valueEnd);
  }
  const line = `${tomlKey(path[path.length - 1])} = ${literal}`;
  if (path.length === 1) {
    const rootEntries = scan.entries.filter((e) => e.table === -1 && !e.inline);
    if (rootEntries.length > 0) return insertAfter(text, rootEntries.at(-1)!.lineEnd, line);
    const firstTable = scan.tables[0];
    if (firstTable) {
      return text.slice(0, firstTable.start) + line + nl + nl + text.slice(firstTable.start);
    }
    return appendLine(text, line, false);
  }
  const [section] = path;
  // An inline table `section = { … }`: add inside the braces.
  const inlineOwner = scan.entries.find((e) =>
    !e.inline && samePath(e.path, [section]) && text[e.valueStart] === "{"
  );
  if (inlineOwner) {
    const close = inlineOwner.valueEnd - 1; // the `}`
    const inner = text.slice(inlineOwner.valueStart + 1, close);
    const body = inner.trim() === "" ? ` ${line} ` : `${inner.trimEnd()}, ${line} `;
    return text.slice(0, inlineOwner.valueStart + 1) + body + text.slice(close);
  }
  const tableIndex = scan.tables.findIndex((t) => !t.array && samePath(t.path, [section]));
  if (tableIndex !== -1) {
    const inTable = scan.entries.filter((e) => e.table === tableIndex && !e.inline);
    const after = inTable.length > 0 ? inTable.at(-1)!.lineEnd : scan.tables[tableIndex].headerEnd;
    return insertAfter(text, after, line);
  }
  // Dotted keys at the root (`incus.socket = …`): keep the new key next to them.
  const dotted = scan.entries.filter((e) =>
    e.table === -1 && !e.inline && e.path.length > 1 && e.path[0] === section
  );
  if (dotted.length > 0) {
    return insertAfter(text, dotted.at(-1)!.lineEnd, `${tomlKey(section)}.${line}`);
  }
  return appendLine(text, `[${tomlKey(section)}]${nl}${line}`, true);
}

/** The line terminator `text` uses: CRLF when it has one, else LF. */
function lineEnding(text: string): string {
  return text.includes("\r\n") ? "\r\n" : "\n";
}

function insertAfter(text: string, offset: number, line: string): string {
  const nl = lineEnding(text);
  const before = text.slice(0, offset);
  const sep = before === "" || before.endsWith("\n") ? "" : nl;
  return before + sep + line + nl + text.slice(offset);
}

function appendLine(text: string, block: string, blankBefore: boolean): string {
  const nl = lineEnding(text);
  if (text.trim() === "") return block + nl;
  let out = text.endsWith("\n") ? text : text + nl;
  if (blankBefore && !out.endsWith(nl + nl)) out += nl;
  return out + block + nl;
}
