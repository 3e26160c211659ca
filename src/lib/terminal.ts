/**
 * An interactive terminal session as every transport offers it (an engine's PTY exec, an SSH
 * channel): input, resizes, output, the exit status.
 *
 * @module
 */

/** Terminal size. */
export interface TermSize {
  cols: number;
  rows: number;
}

/** A live PTY session. */
export interface ShellSession {
  /** Sends keyboard input. */
  write(data: Uint8Array): Promise<void>;
  /** Tells the guest the terminal changed size. */
  resize(size: TermSize): Promise<void>;
  /** Terminal output. */
  readonly output: ReadableStream<Uint8Array>;
  /** The remote exit status. */
  readonly exit: Promise<number>;
  /** Hangs up. */
  close(): Promise<void>;
}
