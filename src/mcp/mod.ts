/**
 * `tachikoma mcp`: the MCP server on stdio. stdout carries protocol frames only — anything
 * else that would print there (`console.log` and friends, from any module) is sent to stderr,
 * where every log line goes. The server stops on end of input, SIGTERM or the given signal
 * (Ctrl-C): running calls are cancelled and get a moment to clean up, open backends are
 * closed, then {@link serveStdio} returns.
 *
 * @module
 */
import process from "node:process";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { errorMessage } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import type { McpContext } from "./context.ts";
import { createMcpServer } from "./server.ts";
import { CallTracker } from "./tooling.ts";

export { createMcpServer, INSTRUCTIONS } from "./server.ts";
export { type McpContext, type ServiceRequest } from "./context.ts";
export { McpProgressReporter } from "./progress.ts";
export { CallTracker, errorResult } from "./tooling.ts";

/** Largest incoming message (a big write_file); the SDK's default is 10 MiB. */
const MAX_MESSAGE_BYTES = 128 << 20;
/** How long running calls get to finish once the server stops. */
const SHUTDOWN_GRACE_MS = 5000;

/** Options of {@link serveStdio}. */
export interface ServeOptions {
  /** Stops the server when aborted (Ctrl-C). */
  signal?: AbortSignal;
  /** The tools' dependencies (the CLI wires the production ones). */
  context: McpContext;
}

/** Serves the tools on stdin/stdout until the input ends or the server is stopped. */
export async function serveStdio(options: ServeOptions): Promise<void> {
  keepStdoutForFrames();
  const ctx = options.context;
  const tracker = new CallTracker();
  const server = createMcpServer(ctx, { tracker });
  const transport = new StdioServerTransport(process.stdin, process.stdout, {
    maxBufferSize: MAX_MESSAGE_BYTES,
  });

  let stopping: Promise<void> | undefined;
  let finished!: () => void;
  const done = new Promise<void>((resolve) => finished = resolve);
  const stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      log.debug(`mcp: stopping (${why}); ${tracker.size} call(s) running`);
      await tracker.stop(SHUTDOWN_GRACE_MS, (ms, signal) => ctx.clock.sleep(ms, signal));
      try {
        await server.close();
      } catch (error) {
        log.debug(`mcp: closing the transport failed: ${errorMessage(error)}`);
      }
      await ctx.close();
      finished();
    })();
    return stopping;
  };

  const onEnd = () => void stop("end of input");
  const onSigterm = () => void stop("SIGTERM");
  const onAbort = () => void stop("interrupted");
  process.stdin.on("end", onEnd);
  process.stdin.on("close", onEnd);
  try {
    Deno.addSignalListener("SIGTERM", onSigterm);
  } catch {
    // no signal support here: SIGTERM then ends the process directly
  }
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  server.server.onclose = () => void stop("transport closed");
  server.server.onerror = (error: Error) => log.warn(`mcp: ${errorMessage(error)}`);

  try {
    await server.connect(transport);
    log.debug(`mcp: serving on stdio in ${ctx.cwd}`);
    await done;
  } finally {
    process.stdin.off("end", onEnd);
    process.stdin.off("close", onEnd);
    options.signal?.removeEventListener("abort", onAbort);
    try {
      Deno.removeSignalListener("SIGTERM", onSigterm);
    } catch {
      // see above
    }
  }
}

/**
 * Sends what would go to stdout through `console` to stderr instead, so nothing but protocol
 * frames ever reaches stdout (a stray line there breaks the client's connection).
 */
function keepStdoutForFrames(): void {
  const toStderr = (...args: unknown[]) => console.error(...args);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
  console.dir = toStderr;
  console.table = toStderr;
  console.trace = toStderr;
}
