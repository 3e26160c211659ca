/**
 * A small structural scanner for TOML documents, used to find the line of a key (for error
 * messages) and, by toml_edit.ts, to change one value while keeping everything else in the file
 * byte for byte. The scanner expects a document that a real TOML parser (smol-toml) has already
 * accepted; it is not a validator.
 *
 * @module
 */

/** A `key = value` found in the document. */
export interface TomlEntry {
  /** Full key path, including the enclosing table header and dotted parts. */
  path: string[];
  /** 1-based line of the key. */
  line: number;
  /** Offset of the value's first character. */
  valueStart: number;
  /** Offset just past the value. */
  valueEnd: number;
  /** Offset just past the entry's line (after any comment and the newline). */
  lineEnd: number;
  /** Index into {@link TomlScan.tables} of the enclosing header (-1: the root table). */
  table: number;
  /** True for a key inside an inline table `{ … }`. */
  inline: boolean;
}

/** A `[table]` or `[[array.of.tables]]` header. */
export interface TomlTable {
  path: string[];
  /** 1-based line of the header. */
  line: number;
  /** Offset of the header's `[`. */
  start: number;
  /** Offset just past the header line. */
  headerEnd: number;
  array: boolean;
}

/** Result of {@link scanToml}. */
export interface TomlScan {
  entries: TomlEntry[];
  tables: TomlTable[];
}

const BARE_KEY = /[A-Za-z0-9_-]/;

class Scanner {
  pos = 0;
  entries: TomlEntry[] = [];
  tables: TomlTable[] = [];
  #newlines: number[] = [];
  constructor(readonly text: string) {
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) {
      this.#newlines.push(i);
    }
  }

  /** 1-based line of an offset: one more than the newlines before it. */
  lineOf(offset: number): number {
    let lo = 0;
    let hi = this.#newlines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#newlines[mid] < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  }

  peek(n = 0): string {
    return this.text[this.pos + n] ?? "";
  }

  startsWith(s: string): boolean {
    return this.text.startsWith(s, this.pos);
  }

  /** Spaces and tabs. */
  skipBlank(): void {
    while (this.peek() === " " || this.peek() === "\t") this.pos++;
  }

  /** Rest of a line: blanks, an optional comment and the newline. */
  skipLineEnd(): void {
    this.skipBlank();
    if (this.peek() === "#") {
      while (this.pos < this.text.length && this.peek() !== "\n") this.pos++;
    }
    if (this.peek() === "\r") this.pos++;
    if (this.peek() === "\n") this.pos++;
  }

  /** Blanks, newlines and comments (inside arrays and between statements). */
  skipSpace(): void {
    for (;;) {
      const c = this.peek();
      if (c === " " || c === "\t" || c === "\r" || c === "\n") this.pos++;
      else if (c === "#") {
        while (this.pos < this.text.length && this.peek() !== "\n") this.pos++;
      } else return;
    }
  }

  basicString(): string {
    this.pos++; // "
    let out = "";
    while (this.pos < this.text.length && this.peek() !== '"' && this.peek() !== "\n") {
      if (this.peek() === "\\") {
        const e = this.peek(1);
        const simple: Record<string, string> = {
          b: "\b",
          t: "\t",
          n: "\n",
          f: "\f",
          r: "\r",
          e: "\x1b",
          '"': '"',
          "\\": "\\",
        };
        if (e in simple) {
          out += simple[e];
          this.pos += 2;
        } else if (e === "u" || e === "U" || e === "x") {
          const len = e === "u" ? 4 : e === "U" ? 8 : 2;
          out += String.fromCodePoint(
            parseInt(this.text.slice(this.pos + 2, this.pos + 2 + len), 16),
          );
          this.pos += 2 + len;
        } else {
          out += e;
          this.pos += 2;
        }
      } else {
        out += this.peek();
        this.pos++;
      }
    }
    this.close('"'); // an unterminated string ends at its line's end
    return out;
  }

  literalString(): string {
    let stop = this.pos + 1;
    while (stop < this.text.length && this.text[stop] !== "'" && this.text[stop] !== "\n") stop++;
    const out = this.text.slice(this.pos + 1, stop);
    this.pos = stop;
    this.close("'");
    return out;
  }

  /** Consumes `ch` when it is next (a closing quote or bracket that malformed input may lack). */
  close(ch: string): void {
    if (this.peek() === ch) this.pos++;
  }

  multiline(delim: string): void {
    this.pos += 3;
    for (;;) {
      if (this.pos >= this.text.length) return;
      if (delim === '"""' && this.peek() === "\\") {
        this.pos += 2;
        continue;
      }
      if (this.startsWith(delim)) {
        this.pos += 3;
        // Up to two more quote characters belong to the content.
        for (let i = 0; i < 2 && this.peek() === delim[0]; i++) this.pos++;
        return;
      }
      this.pos++;
    }
  }

  /** A dotted key: bare and quoted parts separated by `.`. */
  key(): string[] {
    const parts: string[] = [];
    for (;;) {
      this.skipBlank();
      const c = this.peek();
      if (c === '"') parts.push(this.basicString());
      else if (c === "'") parts.push(this.literalString());
      else {
        const start = this.pos;
        while (BARE_KEY.test(this.peek())) this.pos++;
        parts.push(this.text.slice(start, this.pos));
        if (this.pos === start) this.pos++; // never loop on unexpected input
      }
      this.skipBlank();
      if (this.peek() !== ".") return parts;
      this.pos++;
    }
  }

  value(path: string[], table: number): void {
    const c = this.peek();
    if (this.startsWith('"""') || this.startsWith("'''")) {
      this.multiline(this.text.slice(this.pos, this.pos + 3));
    } else if (c === '"') this.basicString();
    else if (c === "'") this.literalString();
    else if (c === "[") {
      this.pos++;
      for (;;) {
        this.skipSpace();
        if (this.peek() === "]" || this.pos >= this.text.length) break;
        const before = this.pos;
        this.value(path, table);
        this.skipSpace();
        if (this.peek() === ",") this.pos++;
        if (this.pos === before) break; // malformed: never loop forever
      }
      this.close("]");
    } else if (c === "{") {
      this.pos++;
      for (;;) {
        this.skipSpace();
        if (this.peek() === "}" || this.pos >= this.text.length) break;
        const before = this.pos;
        this.keyValue(path, table, true);
        this.skipSpace();
        if (this.peek() === ",") this.pos++;
        if (this.pos === before) break;
      }
      this.close("}");
    } else {
      // Numbers, booleans, dates (a space may separate a date from its time).
      const start = this.pos;
      while (this.pos < this.text.length && !/[\s,\]}#]/.test(this.peek())) this.pos++;
      const token = this.text.slice(start, this.pos);
      if (/^\d{4}-\d{2}-\d{2}$/.test(token) && this.peek() === " " && /\d/.test(this.peek(1))) {
        this.pos++;
        while (this.pos < this.text.length && !/[\s,\]}#]/.test(this.peek())) this.pos++;
      }
    }
  }

  keyValue(prefix: string[], table: number, inline: boolean): void {
    const keyStart = this.pos;
    const path = [...prefix, ...this.key()];
    this.skipBlank();
    if (this.peek() === "=") this.pos++;
    this.skipBlank();
    const valueStart = this.pos;
    this.value(path, table);
    const entry: TomlEntry = {
      path,
      line: this.lineOf(keyStart),
      valueStart,
      valueEnd: this.pos,
      lineEnd: this.pos,
      table,
      inline,
    };
    this.entries.push(entry);
    if (!inline) {
      this.skipLineEnd();
      entry.lineEnd = this.pos;
    }
  }

  document(): TomlScan {
    let prefix: string[] = [];
    let table = -1;
    for (;;) {
      this.skipSpace();
      if (this.pos >= this.text.length) break;
      if (this.peek() === "[") {
        const start = this.pos;
        const array = this.peek(1) === "[";
        this.pos += array ? 2 : 1;
        prefix = this.key();
        this.skipBlank();
        this.close("]");
        if (array) this.close("]");
        this.skipLineEnd();
        this.tables.push({
          path: prefix,
          line: this.lineOf(start),
          start,
          headerEnd: this.pos,
          array,
        });
        table = this.tables.length - 1;
      } else {
        this.keyValue(prefix, table, false);
      }
    }
    return { entries: this.entries, tables: this.tables };
  }
}

/** Scans a (valid) TOML document into its entries and table headers. */
export function scanToml(text: string): TomlScan {
  return new Scanner(text).document();
}

/** True when two key paths are equal part by part. */
export function samePath(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}

/**
 * The 1-based line where `path` is set (`["incus", "socket"]`), or where its table header is,
 * or undefined.
 */
export function findKeyLine(text: string, path: string[]): number | undefined {
  const scan = scanToml(text);
  const entry = scan.entries.find((e) => samePath(e.path, path));
  if (entry) return entry.line;
  const table = scan.tables.find((t) => samePath(t.path, path));
  return table?.line;
}
