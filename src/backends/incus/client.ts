/**
 * A small Incus REST client: the local unix socket or a remote HTTPS server with a client
 * certificate, `?project=` on every request, background operations awaited with deadlines and
 * their errors surfaced, and websockets for exec. No `incus` CLI involved.
 *
 * @module
 */
import { ConfigError, TimeoutError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { incusError, type Subject, unreachable } from "./errors.ts";

/** Where and how to reach Incus (the `[incus]` section, with file paths). */
export interface IncusEndpoint {
  /** Unix socket of the local daemon (default `/var/lib/incus/unix.socket`). */
  socket: string;
  /** `https://host[:port]` of a remote server; wins over `socket`. */
  remote?: string;
  /** PEM file of the client certificate the server trusts (remote mode). */
  clientCert?: string;
  /** PEM file of its key (remote mode). */
  clientKey?: string;
  /** PEM file of the server's certificate (or its CA) to verify the server against. */
  serverCert?: string;
  /** Incus project (`?project=` on every request). */
  project?: string;
}

/** An Incus background operation. */
export interface IncusOperation {
  id: string;
  class: string;
  description: string;
  status: string;
  status_code: number;
  metadata: Record<string, unknown> | null;
  err: string;
  may_cancel: boolean;
}

/** The envelope every Incus response comes in. */
interface Envelope<T> {
  type: "sync" | "async" | "error";
  status_code: number;
  error_code: number;
  error: string;
  operation: string;
  metadata: T;
}

/** A successful (sync or async) response. */
export interface IncusResponse<T> {
  metadata: T;
  /** Operation path for async responses. */
  operation?: string;
  /** ETag header, for If-Match on a later PUT. */
  etag?: string;
}

/** Options of one request. */
export interface RequestOptions {
  query?: Record<string, string>;
  /** JSON body (objects) or raw bytes. */
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** What the request is about, for error messages (`sandbox "x"`). */
  subject?: Subject;
}

/**
 * An HTTP client for the Incus unix socket. Use this for EVERY client of the local socket:
 * Incus peeks at the first bytes of each new unix-socket connection inside its accept loop
 * (STARTTLS detection, `StarttlsListener.Accept`), so a pooled connection that Deno opens and
 * leaves silent blocks the whole daemon — every API call and the LXC start hooks, which then
 * fail after 30 s — until it closes. Without an idle pool no connection is ever left silent; a
 * fresh connection per request costs ~0.1 ms on a unix socket.
 */
export function incusSocketHttpClient(socket: string): Deno.HttpClient {
  return Deno.createHttpClient({
    proxy: { transport: "unix", path: socket },
    http2: false,
    poolMaxIdlePerHost: 0,
  });
}

/** Default budget for background operations (create, start, stop, copy…). */
export const DEFAULT_OPERATION_TIMEOUT_MS = 120_000;

const decoder = new TextDecoder();

/** Talks to one Incus server. */
export class IncusClient {
  /** Human-readable location: the socket path or the remote URL. */
  readonly where: string;
  readonly project?: string;
  readonly #http: Deno.HttpClient;
  readonly #origin: string;
  #closed = false;

  private constructor(
    http: Deno.HttpClient,
    at: { origin: string; where: string; project?: string },
  ) {
    this.#http = http;
    this.#origin = at.origin;
    this.where = at.where;
    this.project = at.project;
  }

  /** Builds a client; reads certificate files in remote mode. Makes no request. */
  static async open(endpoint: IncusEndpoint): Promise<IncusClient> {
    if (endpoint.remote) {
      let url: URL;
      try {
        url = new URL(endpoint.remote);
      } catch {
        throw new ConfigError(`[incus] remote: not a URL: ${endpoint.remote}`);
      }
      if (url.protocol !== "https:") {
        throw new ConfigError(`[incus] remote: must be an https:// URL, got ${endpoint.remote}`);
      }
      if (!endpoint.clientCert || !endpoint.clientKey) {
        throw new ConfigError(
          "[incus] remote needs client_cert and client_key (a certificate the server trusts)",
          { hint: "incus remote generate-certificate, then incus config trust add-certificate" },
        );
      }
      const cert = await readPem("client_cert", endpoint.clientCert);
      const key = await readPem("client_key", endpoint.clientKey);
      const caCerts = endpoint.serverCert
        ? [await readPem("server_cert", endpoint.serverCert)]
        : undefined;
      const http = Deno.createHttpClient({ cert, key, caCerts, http2: false });
      return new IncusClient(http, {
        origin: url.origin,
        where: url.origin,
        project: endpoint.project,
      });
    }
    const http = incusSocketHttpClient(endpoint.socket);
    // The host name of socket URLs is never contacted, but Deno resolves it for websockets:
    // `localhost` resolves from /etc/hosts, without any DNS traffic.
    return new IncusClient(http, {
      origin: "http://localhost",
      where: endpoint.socket,
      project: endpoint.project,
    });
  }

  /** The full URL of an API path, with the project. */
  url(path: string, query: Record<string, string> = {}): string {
    const url = new URL(path, this.#origin);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    if (this.project && !url.searchParams.has("project")) {
      url.searchParams.set("project", this.project);
    }
    return url.toString();
  }

  /**
   * A raw request; transport failures become UnreachableError. The debug line times the
   * headers: a caller that reads the body (a streamed file) owns the rest.
   */
  async raw(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const started = performance.now();
    const response = await this.#send(method, path, options);
    logRequest({ method, path, status: response.status, started });
    return response;
  }

  async #send(method: string, path: string, options: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    let body: BodyInit | undefined;
    if (options.body instanceof Uint8Array) {
      body = options.body as Uint8Array<ArrayBuffer>;
    } else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] = "application/json";
    }
    try {
      return await fetch(this.url(path, options.query), {
        method,
        headers,
        body,
        client: this.#http,
        signal: options.signal,
      });
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw unreachable(this.where, error);
    }
  }

  /**
   * A request and its envelope, read whole. The debug line is written once the answer is
   * complete: Incus sends an operation wait's headers at once and its body when the operation
   * ends, so a line at the headers would time nothing.
   */
  async #envelope<T>(
    method: string,
    path: string,
    options: RequestOptions,
  ): Promise<{ response: Response; envelope: Envelope<T> }> {
    const started = performance.now();
    const response = await this.#send(method, path, options);
    const envelope = await readEnvelope<T>(response, this.where);
    logRequest({ method, path, status: response.status, started });
    return { response, envelope };
  }

  /** A request whose answer is an Incus envelope; errors are typed. */
  async call<T>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<IncusResponse<T>> {
    const { response, envelope } = await this.#envelope<T>(method, path, options);
    if (envelope.type === "error") {
      throw incusError(envelope.error_code || response.status, envelope.error, options.subject);
    }
    return {
      metadata: envelope.metadata,
      operation: envelope.operation || undefined,
      etag: response.headers.get("etag") ?? undefined,
    };
  }

  /** Shorthand for a GET returning metadata. */
  async get<T>(path: string, options: RequestOptions = {}): Promise<T> {
    return (await this.call<T>("GET", path, options)).metadata;
  }

  /**
   * A mutating request; when Incus answers with a background operation, waits for it (up to
   * `timeoutMs`) and returns it. Failures carry the operation's error.
   */
  async mutate(
    method: string,
    path: string,
    options: RequestOptions & { timeoutMs?: number } = {},
  ): Promise<IncusOperation | null> {
    const response = await this.call<IncusOperation>(method, path, options);
    if (!response.operation) return null;
    return await this.wait(response.operation, {
      timeoutMs: options.timeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS,
      signal: options.signal,
      subject: options.subject,
    });
  }

  /**
   * Waits for an operation (path or id) to finish, with `GET /1.0/operations/<id>/wait`.
   * Throws the operation's error when it fails and TimeoutError at the deadline (after asking
   * Incus to cancel it when it can be cancelled).
   */
  async wait(
    operation: string,
    options: {
      timeoutMs: number;
      signal?: AbortSignal;
      subject?: Subject;
      /** Called about once a second with the running operation's metadata (progress). */
      onProgress?: (metadata: Record<string, unknown>) => void;
    },
  ): Promise<IncusOperation> {
    const id = operation.slice(operation.lastIndexOf("/") + 1);
    const deadline = performance.now() + options.timeoutMs;
    for (;;) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        await this.#cancel(id);
        throw new TimeoutError(
          `${options.subject ?? "Incus operation"}: not done after ${
            Math.round(options.timeoutMs / 1000)
          } s (operation ${id})`,
        );
      }
      const longest = options.onProgress ? 1 : 30;
      const seconds = Math.max(1, Math.min(longest, Math.ceil(remaining / 1000)));
      const { response, envelope } = await this.#envelope<IncusOperation>(
        "GET",
        `/1.0/operations/${id}/wait`,
        { query: { timeout: String(seconds) }, signal: options.signal },
      );
      if (envelope.type === "error") {
        if (/context deadline exceeded/i.test(envelope.error)) {
          if (options.onProgress) await this.#progress(id, options.onProgress, options.signal);
          continue;
        }
        throw incusError(envelope.error_code || response.status, envelope.error, options.subject);
      }
      const op = envelope.metadata;
      if (op.status_code === 200) return op;
      if (op.status_code >= 400) throw incusError(0, op.err || op.status, options.subject);
      if (options.onProgress && op.metadata) options.onProgress(op.metadata);
    }
  }

  async #progress(
    id: string,
    onProgress: (metadata: Record<string, unknown>) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    try {
      const op = await this.get<IncusOperation>(`/1.0/operations/${id}`, { signal });
      if (op.metadata) onProgress(op.metadata);
    } catch (error) {
      if (signal?.aborted) throw error;
      log.debug(`incus: reading operation ${id}: ${String(error)}`);
    }
  }

  /** Asks Incus to cancel an operation; failures are only logged. */
  cancel(id: string): Promise<void> {
    return this.#cancel(id);
  }

  async #cancel(id: string): Promise<void> {
    try {
      await this.call("DELETE", `/1.0/operations/${id}`);
    } catch (error) {
      log.debug(`incus: cancelling operation ${id}: ${String(error)}`);
    }
  }

  /** Opens the websocket of an operation's file descriptor (exec). */
  websocket(
    operationId: string,
    secret: string,
    attach?: (ws: WebSocket) => void,
  ): Promise<WebSocket> {
    const url = this.url(`/1.0/operations/${operationId}/websocket`, { secret }).replace(
      /^http/,
      "ws",
    );
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(url, { client: this.#http });
      } catch (error) {
        reject(unreachable(this.where, error));
        return;
      }
      ws.binaryType = "arraybuffer";
      // Listeners added now see every event: none is dispatched before this task ends.
      attach?.(ws);
      const onOpen = () => {
        ws.removeEventListener("error", onError);
        resolve(ws);
      };
      const onError = (event: Event) => {
        ws.removeEventListener("open", onOpen);
        const message = event instanceof ErrorEvent ? event.message : "websocket error";
        reject(unreachable(this.where, new Error(message)));
      };
      ws.addEventListener("open", onOpen, { once: true });
      ws.addEventListener("error", onError, { once: true });
    });
  }

  /** Releases the HTTP client. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#http.close();
  }
}

/** The debug line of one request: method, path, status, and the time since `started`. */
function logRequest(
  request: { method: string; path: string; status: number; started: number },
): void {
  if (!log.enabled("debug")) return;
  const ms = Math.round(performance.now() - request.started);
  log.debug(`incus ${request.method} ${request.path} → ${request.status} (${ms} ms)`);
}

async function readEnvelope<T>(response: Response, where: string): Promise<Envelope<T>> {
  const text = decoder.decode(new Uint8Array(await response.arrayBuffer()));
  try {
    return JSON.parse(text) as Envelope<T>;
  } catch {
    return {
      type: "error",
      status_code: 0,
      error_code: response.status,
      error: `unexpected answer from ${where} (HTTP ${response.status}): ${text.slice(0, 200)}`,
      operation: "",
      metadata: null as T,
    };
  }
}

async function readPem(key: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(
      `[incus] ${key}: cannot read ${path}: ${error instanceof Error ? error.message : error}`,
    );
  }
}
