/**
 * The MCP sessions of the HTTP daemon. Each client session is the SDK's streamable HTTP
 * transport (Web-standard `Request`/`Response`, so it plugs into `Deno.serve` as is) with its
 * own {@link McpServer} — the same tools, context, call tracker and activity as every other
 * session and as stdio. The SDK does the protocol: `Mcp-Session-Id`, POST answered as an SSE
 * stream, the GET stream for server messages, DELETE to end a session, `Last-Event-ID`
 * resumption (from the daemon's bounded {@link EventLog}).
 *
 * Routing: a POST without a session id must be `initialize` (a new session); a request naming
 * an unknown session gets 404 (the client starts a new one, as the protocol says). Memory is
 * bounded: at most `maxSessions` sessions (a new one closes the least recently used), sessions
 * unused for `idleMs` are closed by {@link SessionRegistry.sweep}, and request bodies are
 * capped.
 *
 * @module
 */
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { errorMessage } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import type { SandboxActivity } from "./activity.ts";
import type { McpContext } from "./context.ts";
import type { EventLog, EventStore } from "./event_store.ts";
import { createMcpServer } from "./server.ts";
import type { CallTracker } from "./tooling.ts";

/** Limits of a {@link SessionRegistry}. */
export const SESSION_DEFAULTS = {
  maxSessions: 64,
  /** A session nobody used for a day is closed. */
  idleMs: 24 * 3_600_000,
  /** Largest request body (a big write_file). */
  maxBodyBytes: 128 << 20,
} as const;

/** What a {@link SessionRegistry} needs. */
export interface SessionOptions {
  context: McpContext;
  tracker: CallTracker;
  activity: SandboxActivity;
  events: EventLog;
  maxSessions?: number;
  idleMs?: number;
  maxBodyBytes?: number;
}

/** The part of the SDK's transport used here (its type declarations do not resolve in Deno). */
interface HttpTransport {
  sessionId?: string;
  onclose?: () => void;
  handleRequest(req: Request, options?: { parsedBody?: unknown }): Promise<Response>;
}

interface Session {
  id: string;
  transport: HttpTransport;
  server: McpServer;
  lastSeen: number;
}

/** JSON-RPC error answer of the transport layer (no session, bad body…). */
function rpcError(status: number, code: number, message: string): Response {
  return Response.json({ jsonrpc: "2.0", error: { code, message }, id: null }, { status });
}

/** Reads a body up to `max` bytes; null when it is larger. */
async function readCapped(req: Request, max: number): Promise<string | null> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > max) return null;
  if (!req.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body) {
    size += chunk.length;
    if (size > max) return null;
    chunks.push(chunk);
  }
  const all = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return new TextDecoder().decode(all);
}

/** The daemon's sessions (see the module doc). */
export class SessionRegistry {
  readonly #options: SessionOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #maxSessions: number;
  readonly #idleMs: number;
  readonly #maxBodyBytes: number;
  #closed = false;
  /** Sessions opened since the start. */
  opened = 0;

  constructor(options: SessionOptions) {
    this.#options = options;
    this.#maxSessions = options.maxSessions ?? SESSION_DEFAULTS.maxSessions;
    this.#idleMs = options.idleMs ?? SESSION_DEFAULTS.idleMs;
    this.#maxBodyBytes = options.maxBodyBytes ?? SESSION_DEFAULTS.maxBodyBytes;
  }

  /** Open sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Answers one request to the MCP endpoint (already authenticated). */
  async handle(req: Request): Promise<Response> {
    if (this.#closed) return rpcError(503, -32000, "the server is shutting down");
    const id = req.headers.get("mcp-session-id");
    let body: unknown;
    if (req.method === "POST") {
      const text = await readCapped(req, this.#maxBodyBytes);
      if (text === null) {
        return rpcError(413, -32000, `request body larger than ${this.#maxBodyBytes} bytes`);
      }
      try {
        body = JSON.parse(text);
      } catch {
        return rpcError(400, -32700, "Parse error: invalid JSON");
      }
    }
    if (id !== null) {
      const session = this.#sessions.get(id);
      if (!session) return rpcError(404, -32001, "Session not found");
      session.lastSeen = this.#options.context.clock.now();
      return await session.transport.handleRequest(req, { parsedBody: body });
    }
    if (req.method !== "POST") {
      return rpcError(400, -32000, "Bad Request: Mcp-Session-Id header is required");
    }
    const initialize = Array.isArray(body)
      ? body.some(isInitializeRequest)
      : isInitializeRequest(body);
    if (!initialize) {
      return rpcError(400, -32000, "Bad Request: no session; start one with initialize");
    }
    return await this.#open(req, body);
  }

  /** A new session for an `initialize` request. */
  async #open(req: Request, body: unknown): Promise<Response> {
    if (this.#sessions.size >= this.#maxSessions) this.#evictOldest();
    const { context, tracker, activity, events } = this.#options;
    const server = createMcpServer(context, { tracker, activity });
    let session: Session | undefined;
    const transport: HttpTransport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      // The session id exists only once the SDK generated it: the store is bound lazily.
      eventStore: {
        storeEvent: (stream, message) => this.#store(transport).storeEvent(stream, message),
        getStreamIdForEventId: (id) => this.#store(transport).getStreamIdForEventId(id),
        replayEventsAfter: (id, send) => this.#store(transport).replayEventsAfter(id, send),
      } satisfies EventStore,
      onsessioninitialized: (sid: string) => {
        session = { id: sid, transport, server, lastSeen: context.clock.now() };
        this.#sessions.set(sid, session);
        this.opened++;
        log.debug(`mcp: session ${sid.slice(0, 8)} opened (${this.#sessions.size} open)`);
      },
      onsessionclosed: (sid: string) =>
        log.debug(`mcp: session ${sid.slice(0, 8)} ended by the client`),
    });
    transport.onclose = () => {
      const sid = transport.sessionId;
      if (sid && this.#sessions.get(sid)?.transport === transport) {
        this.#sessions.delete(sid);
        events.dropSession(sid);
      }
    };
    server.server.onerror = (error: Error) => log.debug(`mcp: ${errorMessage(error)}`);
    await server.connect(transport);
    const response = await transport.handleRequest(req, { parsedBody: body });
    if (!session) {
      // The initialize was refused (bad version, malformed): nothing to keep.
      await server.close().catch(() => {});
    }
    return response;
  }

  #store(transport: HttpTransport): EventStore {
    return this.#options.events.forSession(transport.sessionId ?? "");
  }

  #evictOldest(): void {
    let oldest: Session | undefined;
    for (const s of this.#sessions.values()) {
      if (!oldest || s.lastSeen < oldest.lastSeen) oldest = s;
    }
    if (oldest) {
      log.info(
        `mcp: ${this.#maxSessions} sessions open: closing the least recently used ` +
          `(${oldest.id.slice(0, 8)})`,
      );
      void this.#close(oldest);
    }
  }

  async #close(session: Session): Promise<void> {
    this.#sessions.delete(session.id);
    this.#options.events.dropSession(session.id);
    try {
      await session.server.close();
    } catch (error) {
      log.debug(`mcp: closing session ${session.id.slice(0, 8)}: ${errorMessage(error)}`);
    }
  }

  /** Closes the sessions nobody used for `idleMs`; returns how many. */
  async sweep(): Promise<number> {
    const cutoff = this.#options.context.clock.now() - this.#idleMs;
    const idle = [...this.#sessions.values()].filter((s) => s.lastSeen < cutoff);
    for (const s of idle) await this.#close(s);
    if (idle.length) log.debug(`mcp: closed ${idle.length} idle session(s)`);
    return idle.length;
  }

  /** Closes every session (their streams end); new requests get 503. */
  async closeAll(): Promise<void> {
    this.#closed = true;
    for (const s of [...this.#sessions.values()]) await this.#close(s);
  }
}
