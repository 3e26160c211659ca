/**
 * Logging to stderr. stdout is reserved for results (`--json` documents, MCP frames).
 * The level is raised by `-v` and lowered by `-q`; every line is redacted and its control
 * characters neutralised (`redactForTerminal`).
 *
 * @module
 */
import { redactForTerminal } from "./redact.ts";

/** Log levels, most severe first. */
export type LogLevel = "error" | "warn" | "info" | "debug";
const ORDER: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** Where log lines go. Defaults to stderr. */
export type LogSink = (line: string) => void;

const encoder = new TextEncoder();
const stderrSink: LogSink = (line) => {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
};

/** A leveled, redacting logger writing to stderr. */
export class Logger {
  level: LogLevel;
  color: boolean;
  #sink: LogSink;
  #listeners = new Set<(level: LogLevel, line: string) => void>();

  constructor(options: { level?: LogLevel; color?: boolean; sink?: LogSink } = {}) {
    this.level = options.level ?? "info";
    this.color = options.color ?? false;
    this.#sink = options.sink ?? stderrSink;
  }

  /**
   * Sends lines to `sink` from now on (undefined: back to stderr). A long-running process
   * (the MCP daemon) uses it to timestamp its lines and copy them to its log file.
   */
  setSink(sink: LogSink | undefined): void {
    this.#sink = sink ?? stderrSink;
  }

  /** True when a message at `level` would be written. */
  enabled(level: LogLevel): boolean {
    return ORDER[level] <= ORDER[this.level];
  }

  error(message: string): void {
    this.#write("error", message);
  }
  warn(message: string): void {
    this.#write("warn", message);
  }
  info(message: string): void {
    this.#write("info", message);
  }
  debug(message: string): void {
    this.#write("debug", message);
  }

  /**
   * Calls `listener` with every line this logger writes (after the level filter, redacted),
   * until the returned function is called. Lets a test wait for a logged event instead of
   * guessing how long it takes.
   */
  listen(listener: (level: LogLevel, line: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #write(level: LogLevel, message: string): void {
    if (!this.enabled(level)) return;
    const text = redactForTerminal(message);
    for (const listener of this.#listeners) listener(level, text);
    const prefix = level === "error"
      ? this.#paint("31", "error: ")
      : level === "warn"
      ? this.#paint("33", "warning: ")
      : level === "debug"
      ? this.#paint("2", "debug: ")
      : "";
    this.#sink(prefix + text);
  }

  #paint(code: string, text: string): string {
    return this.color ? `\x1b[${code}m${text}\x1b[0m` : text;
  }
}

/** The process-wide logger, configured by main.ts from the global flags. */
export const log: Logger = new Logger();
