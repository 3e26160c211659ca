/**
 * How every tool is registered and run: arguments validated by the zod shape (the SDK turns it
 * into the advertised JSON Schema), a per-call context (abort signal, progress reporter, the
 * core service), and one result shape. A tool's failure is a result with `isError: true` whose
 * text is the error's message and hint (redacted) — never a protocol error — so the agent can
 * read it and act. Successful results carry `structuredContent` (validated against the
 * advertised output schema) and a text rendering of it.
 *
 * @module
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult, ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import type { z } from "zod";
import type { BackendName } from "../config/defaults.ts";
import { errorMessage, InterruptedError, TachikomaError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { redact } from "../lib/redact.ts";
import type { SandboxService } from "../core/sandbox_service.ts";
import type { SandboxActivity } from "./activity.ts";
import { callDirectory, type McpContext } from "./context.ts";
import { McpProgressReporter } from "./progress.ts";

/** What a tool's implementation gets besides its arguments. */
export interface ToolCall {
  /** Aborted when the client cancels the request or the server shuts down. */
  readonly signal: AbortSignal;
  readonly reporter: McpProgressReporter;
  readonly ctx: McpContext;
  /** The core service acting from `repo` (default: the server's directory). */
  service(options?: ServiceOptions): Promise<SandboxService>;
  /**
   * Marks sandbox `name` in use until the returned function is called (the reaper never
   * stops or deletes a sandbox in use); the call's end releases it anyway.
   */
  using(name: string): () => void;
}

/** What every tool of a process shares. */
export interface ToolShared {
  tracker: CallTracker;
  activity: SandboxActivity;
}

/** Options of {@link ToolCall.service}. */
export interface ServiceOptions {
  /** Host path of the repo to act from (default: the server's directory). */
  repo?: string;
  backend?: BackendName;
  /** A narrower signal than the call's (it must follow the call's, e.g. a timeout on top). */
  signal?: AbortSignal;
}

/** A tool's successful outcome: the structured result and, optionally, a text rendering. */
export interface ToolOutput<T> {
  data: T;
  /** Text for the agent (default: the data as indented JSON). */
  text?: string;
}

/**
 * What a tool tells clients about its effects, every hint given: `readOnlyHint` (changes
 * nothing), `destructiveHint` (may destroy or overwrite), `idempotentHint` (repeating the call
 * has no further effect), `openWorldHint` (reaches beyond tachikoma's sandboxes and state).
 */
export interface ToolHints extends ToolAnnotations {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

/** The hints of a tool that only reads tachikoma's state or a sandbox. */
export const READ_ONLY: ToolHints = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
};

/** The hints of a tool that changes something: whether it destroys, and whether it repeats. */
export function changes(destructive: boolean, idempotent: boolean, openWorld = false): ToolHints {
  return {
    readOnlyHint: false,
    destructiveHint: destructive,
    idempotentHint: idempotent,
    openWorldHint: openWorld,
  };
}

/** A tool definition. */
export interface ToolSpec<In extends z.ZodRawShape, Out extends z.ZodRawShape> {
  name: string;
  title: string;
  description: string;
  input: In;
  output: Out;
  annotations: ToolHints;
  run(
    args: z.output<z.ZodObject<In>>,
    call: ToolCall,
  ): Promise<ToolOutput<z.output<z.ZodObject<Out>>>>;
}

/** Tracks running calls so the server can cancel them and wait when it stops. */
export class CallTracker {
  readonly #shutdown = new AbortController();
  readonly #running = new Set<Promise<unknown>>();

  /** Aborted when the server stops. */
  get signal(): AbortSignal {
    return this.#shutdown.signal;
  }

  /** Runs `fn`, remembering it until it settles. */
  track<T>(fn: () => Promise<T>): Promise<T> {
    const p = fn();
    const settled = p.then(() => {}, () => {});
    this.#running.add(settled);
    settled.then(() => this.#running.delete(settled));
    return p;
  }

  /** How many calls are running. */
  get size(): number {
    return this.#running.size;
  }

  /** Aborts every running call and waits (up to `graceMs`) for them to finish. */
  async stop(
    graceMs: number,
    sleep: (ms: number, signal?: AbortSignal) => Promise<void>,
  ): Promise<void> {
    this.#shutdown.abort(new InterruptedError("the MCP server is shutting down"));
    if (this.#running.size === 0) return;
    const timer = new AbortController();
    await Promise.race([
      Promise.all(this.#running),
      sleep(graceMs, timer.signal).catch(() => {}),
    ]);
    timer.abort();
  }
}

/** What every tool call of one server gets: the MCP context and the server's shared state. */
export interface ToolHost {
  ctx: McpContext;
  shared: ToolShared;
}

/** Registers `spec` on `server`. */
export function registerTool<In extends z.ZodRawShape, Out extends z.ZodRawShape>(
  server: McpServer,
  host: ToolHost,
  spec: ToolSpec<In, Out>,
): void {
  server.registerTool(
    spec.name,
    {
      title: spec.title,
      description: spec.description,
      inputSchema: spec.input,
      outputSchema: spec.output,
      annotations: spec.annotations,
    },
    ((args: z.output<z.ZodObject<In>>, extra: ToolExtra) =>
      host.shared.tracker.track(() => runTool(spec, { args, extra }, host))) as never,
  );
}

/** The part of the SDK's handler `extra` the tools use. */
interface ToolExtra {
  signal: AbortSignal;
  requestId: string | number;
  _meta?: { progressToken?: string | number };
  sendNotification(notification: {
    method: "notifications/progress";
    params: { progressToken: string | number; progress: number; message?: string };
  }): Promise<void>;
}

async function runTool<In extends z.ZodRawShape, Out extends z.ZodRawShape>(
  spec: ToolSpec<In, Out>,
  request: { args: z.output<z.ZodObject<In>>; extra: ToolExtra },
  host: ToolHost,
): Promise<CallToolResult> {
  const { args, extra } = request;
  const { ctx, shared } = host;
  const started = ctx.clock.now();
  const signal = AbortSignal.any([extra.signal, shared.tracker.signal]);
  const releases: (() => void)[] = [];
  const reporter = new McpProgressReporter(
    extra._meta?.progressToken,
    (params) => extra.sendNotification({ method: "notifications/progress", params }),
    () => ctx.clock.now(),
  );
  const call: ToolCall = {
    signal,
    reporter,
    ctx,
    async service(options = {}) {
      const cwd = await callDirectory(ctx, options.repo);
      return ctx.openService({
        cwd,
        backend: options.backend,
        reporter,
        signal: options.signal ?? signal,
      });
    },
    using(name) {
      const release = shared.activity.begin(name);
      releases.push(release);
      return release;
    },
  };
  try {
    signal.throwIfAborted();
    const out = await spec.run(args, call);
    log.debug(`mcp: ${spec.name} ok (${ctx.clock.now() - started} ms)`);
    return {
      content: [{ type: "text", text: out.text ?? JSON.stringify(out.data, null, 2) }],
      structuredContent: out.data as Record<string, unknown>,
    };
  } catch (error) {
    const failure = signal.aborted && !(error instanceof TachikomaError)
      ? new InterruptedError(
        extra.signal.aborted ? "the request was cancelled" : "the MCP server is shutting down",
      )
      : error;
    log.debug(`mcp: ${spec.name} failed (${ctx.clock.now() - started} ms): ${errorMessage(error)}`);
    if (!(failure instanceof TachikomaError) && error instanceof Error && error.stack) {
      log.debug(error.stack);
    }
    return errorResult(failure);
  } finally {
    for (const release of releases) release();
  }
}

/** The tool result for a failure: the message, then the hint, then the error code. */
export function errorResult(error: unknown): CallToolResult {
  let text: string;
  if (error instanceof TachikomaError) {
    text = error.message;
    if (error.hint) text += `\nhint: ${error.hint}`;
    text += `\n(error code: ${error.code})`;
  } else {
    text = errorMessage(error);
  }
  return { isError: true, content: [{ type: "text", text: redact(text) }] };
}
