/**
 * A command's standard input: all of it up front (bytes or text), or a stream forwarded as it
 * arrives — `tachikoma exec` with a pipe on stdin must not wait for the pipe's end before the
 * command starts (a pipe that stays open would hang it forever), and the command must see the
 * first bytes as soon as they are written.
 *
 * @module
 */
import { errorMessage } from "./errors.ts";
import { log } from "./log.ts";

/** Bytes or text given at once, or a stream read as it comes. */
export type StdinSource = string | Uint8Array | ReadableStream<Uint8Array>;

/** Where {@link pumpStdin} delivers: `write` may wait (backpressure); `end` is EOF. */
export interface StdinSink {
  write(chunk: Uint8Array): void | Promise<void>;
  end(): void;
}

const encoder = new TextEncoder();

/**
 * Feeds `source` to `sink` chunk by chunk and ends it. `stop` (the command finished, was
 * killed or timed out) cancels the reading at once: the rest of a stream is never waited for.
 * A failing read ends the input (logged at debug level); it never fails the command.
 */
export async function pumpStdin(
  source: StdinSource,
  sink: StdinSink,
  stop?: AbortSignal,
): Promise<void> {
  if (!(source instanceof ReadableStream)) {
    const bytes = typeof source === "string" ? encoder.encode(source) : source;
    if (bytes.length > 0 && !stop?.aborted) await sink.write(bytes);
    sink.end();
    return;
  }
  const reader = source.getReader();
  const onStop = () => void reader.cancel().catch(() => {});
  stop?.addEventListener("abort", onStop, { once: true });
  try {
    if (stop?.aborted) return onStop();
    for (;;) {
      const { value, done } = await reader.read();
      if (done || stop?.aborted) break;
      if (value.length > 0) await sink.write(value);
    }
  } catch (error) {
    if (!stop?.aborted) log.debug(`reading stdin failed: ${errorMessage(error)}`);
  } finally {
    stop?.removeEventListener("abort", onStop);
    try {
      reader.releaseLock();
    } catch {
      // a read is still pending (cancelled): the stream goes with it
    }
    try {
      sink.end();
    } catch {
      // the other side is gone
    }
  }
}
