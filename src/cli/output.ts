/**
 * Result output. stdout carries results only: in `--json` mode exactly one JSON document per
 * command (snake_case keys, see docs/json.md); otherwise human text. Errors go to stderr, as
 * `{"error":{"code","message","hint"}}` in `--json` mode.
 *
 * @module
 */
import { type TachikomaError } from "../lib/errors.ts";
import { redact, redactForTerminal } from "../lib/redact.ts";
import type { ResultOutput } from "../commands/context.ts";

const encoder = new TextEncoder();

/** How results are printed. */
export interface OutputOptions {
  json: boolean;
  color: boolean;
  quiet: boolean;
  /** Where results go (default: stdout). */
  write?: (text: string) => void;
  /** Where errors go (default: stderr). */
  writeErr?: (text: string) => void;
}

/** Prints results and errors in the selected mode. */
export class Output implements ResultOutput {
  readonly json: boolean;
  readonly color: boolean;
  readonly quiet: boolean;
  #write: (text: string) => void;
  #writeErr: (text: string) => void;

  constructor(options: OutputOptions) {
    this.json = options.json;
    this.color = options.color;
    this.quiet = options.quiet;
    this.#write = options.write ?? ((t) => writeAll(Deno.stdout, t));
    this.#writeErr = options.writeErr ?? ((t) => writeAll(Deno.stderr, t));
  }

  /**
   * Prints a command's result: `data` as JSON in `--json` mode, else the text `human` returns
   * (nothing when it returns undefined or the empty string).
   */
  result(data: unknown, human: () => string | undefined): void {
    if (this.json) {
      this.#write(JSON.stringify(data, null, 2) + "\n");
      return;
    }
    const text = human();
    if (text) this.#write(text.endsWith("\n") ? text : text + "\n");
  }

  /** Prints raw text to stdout (e.g. `cd` printing a path). */
  raw(text: string): void {
    this.#write(text);
  }

  /** Prints an error to stderr in the selected mode. */
  error(error: TachikomaError | { code: string; message: string; hint?: string }): void {
    // JSON escapes control characters itself; the human form neutralises them.
    const clean = this.json ? redact : redactForTerminal;
    const message = clean(error.message);
    const hint = error.hint ? clean(error.hint) : undefined;
    if (this.json) {
      const body: Record<string, string> = { code: error.code, message };
      if (hint) body.hint = hint;
      this.#writeErr(JSON.stringify({ error: body }) + "\n");
      return;
    }
    const prefix = this.paint("31", "tachikoma:");
    let text = `${prefix} ${message}\n`;
    if (hint) text += `${this.paint("2", "hint:")} ${hint}\n`;
    this.#writeErr(text);
  }

  /** Wraps text in an ANSI color when colors are on. */
  paint(code: string, text: string): string {
    return this.color ? `\x1b[${code}m${text}\x1b[0m` : text;
  }
}

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
}
