/**
 * One exec file descriptor carried over a websocket: binary messages are data, Incus' empty
 * text messages mark the end of a stream and are ignored, closing the socket is EOF.
 *
 * @module
 */
import type { Clock } from "../../lib/clock.ts";

/**
 * A websocket carrying one file descriptor of an exec operation. Create it as soon as the
 * socket exists (before it opens): a message or close dispatched while nobody listens is lost.
 */
export class FdChannel {
  readonly ws: WebSocket;
  /** Resolves when the socket is closed (by either side). */
  readonly closed: Promise<void>;
  /**
   * Resolves when Incus' end-of-stream marker arrives (only on a channel given `onData` or
   * `onEnd`): every byte of the stream came before it, so the output is complete.
   */
  readonly ended: Promise<void>;
  #isClosed = false;
  #isEnded = false;

  /**
   * `onData` gets every binary message; `onEnd` the end-of-stream marker Incus sends as an
   * empty text message once the command's output is complete.
   */
  constructor(
    ws: WebSocket,
    onData?: (chunk: Uint8Array) => void,
    onEnd?: (channel: FdChannel) => void,
  ) {
    this.ws = ws;
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", () => {
        this.#isClosed = true;
        resolve();
      }, { once: true });
    });
    let markEnded = () => {};
    this.ended = new Promise((resolve) => {
      markEnded = () => {
        this.#isEnded = true;
        resolve();
      };
    });
    if (onData || onEnd) {
      ws.addEventListener("message", (event: MessageEvent) => {
        if (event.data instanceof ArrayBuffer) {
          if (event.data.byteLength > 0) onData?.(new Uint8Array(event.data));
        } else if (event.data === "") {
          markEnded();
          onEnd?.(this);
        }
      });
    }
  }

  /** True once closed. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Sends bytes or text when open; silently drops them otherwise. */
  send(data: Uint8Array | string): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(typeof data === "string" ? data : data as Uint8Array<ArrayBuffer>);
    return true;
  }

  /** Closes the socket (EOF for stdin). Idempotent. */
  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      try {
        this.ws.close(1000);
      } catch {
        // already closing
      }
    }
  }

  /**
   * Waits for the stream's end marker or the socket's close, at most `ms` on `clock`; closes it
   * from our side after that. (The marker comes a close handshake before the close.)
   */
  async settle(ms: number, clock: Clock): Promise<void> {
    if (this.#isEnded || this.#isClosed) {
      // No timer: the first timer of a process loads Deno's Node timers (tens of ms).
      this.close();
      return;
    }
    const cancel = new AbortController();
    const late = clock.sleep(ms, cancel.signal).catch(() => {});
    await Promise.race([this.closed, this.ended, late]);
    cancel.abort();
    this.close();
  }
}
