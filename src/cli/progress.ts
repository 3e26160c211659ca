/**
 * Progress on stderr: a spinner line on a TTY, one line per finished step with its duration
 * in `-v`, nothing in `--json` or `-q` mode.
 *
 * @module
 */
import type { Reporter, StepHandle } from "../lib/progress.ts";

const encoder = new TextEncoder();
const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/** Options for {@link StderrReporter}. */
export interface StderrReporterOptions {
  enabled: boolean;
  verbose: boolean;
  tty: boolean;
  color: boolean;
  write?: (text: string) => void;
}

/** Draws progress on stderr. */
export class StderrReporter implements Reporter {
  #opts: StderrReporterOptions;
  #write: (text: string) => void;
  #timer: ReturnType<typeof setInterval> | undefined;
  #frame = 0;
  #label = "";

  constructor(options: StderrReporterOptions) {
    this.#opts = options;
    this.#write = options.write ?? ((t) => Deno.stderr.writeSync(encoder.encode(t)));
  }

  step(label: string): StepHandle {
    const started = performance.now();
    if (this.#opts.enabled && this.#opts.tty && !this.#opts.verbose) this.#spin(label);
    const finish = (ok: boolean, extra?: string) => {
      this.#stopSpinner();
      if (!this.#opts.enabled) return;
      const ms = Math.round(performance.now() - started);
      if (this.#opts.verbose) {
        const mark = ok ? "✓" : "✗";
        this.#write(`${mark} ${label}${extra ? ` (${extra})` : ""} — ${ms} ms\n`);
      } else if (!ok) {
        this.#write(`✗ ${label}${extra ? `: ${extra}` : ""}\n`);
      }
    };
    const progress = (detail: string) => {
      if (this.#timer !== undefined && this.#label.startsWith(label)) {
        this.#label = `${label} (${detail})`;
      }
    };
    return { done: (d) => finish(true, d), fail: (r) => finish(false, r), progress };
  }

  note(message: string): void {
    if (!this.#opts.enabled) return;
    this.#stopSpinner();
    this.#write(`${message}\n`);
  }

  #spin(label: string): void {
    this.#stopSpinner();
    this.#label = label;
    const draw = () => {
      const frame = FRAMES[this.#frame++ % FRAMES.length];
      this.#write(
        `\r\x1b[2K${this.#opts.color ? `\x1b[36m${frame}\x1b[0m` : frame} ${this.#label}`,
      );
    };
    draw();
    const timer = setInterval(draw, 80);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #stopSpinner(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#write("\r\x1b[2K");
  }
}
