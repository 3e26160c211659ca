/**
 * The TrueNAS middleware client (truenas-api.md §1–§4): JSON-RPC 2.0 over one WebSocket at
 * `/api/current`, string ids, positional params, the strict handshake (login with the API key,
 * the `core.get_jobs` subscription, `system.version`), the retry policy, keepalive pings, jobs
 * awaited through `collection_update` events (with polling after a lost connection) and the
 * version gate with the 25.10 snapshot-method switch.
 *
 * Errors name the host and the method; the API key is sent once per connection, in the login
 * frame, and appears in no log or error.
 *
 * @module
 */
import type { Clock } from "../../lib/clock.ts";
import { RuntimeError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { redact } from "../../lib/redact.ts";
import {
  callError,
  dialError,
  isNotAuthenticated,
  isRetriable,
  type RpcErrorBody,
  TruenasTransportError,
} from "./rpc_errors.ts";
import { type Dialer, type RpcSocket } from "./transport.ts";
import { awaitJob, JobTracker } from "./jobs.ts";
import { checkVersion, type TruenasVersion } from "./version.ts";

export { MIN_MAJOR, parseVersion, type TruenasVersion } from "./version.ts";

/** How to reach and log in to a TrueNAS server. */
export interface TruenasClientOptions {
  host: string;
  port: number;
  username: string;
  apiKey: string;
  /** `wss` (default) or `ws` (tests). */
  scheme?: "ws" | "wss";
  insecure?: boolean;
  caCerts?: string[];
  dial: Dialer;
  clock: Clock;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
  /** Ping period (default 30 s) and pong budget (default 10 s). */
  keepaliveMs?: number;
  pongTimeoutMs?: number;
  /** Budget of dial + handshake (default 20 s). */
  connectTimeoutMs?: number;
  /** How long a job waiter tries to reconnect after losing the socket (default 5 min). */
  reconnectBudgetMs?: number;
  /** Retries of a retriable failure (default 3, the contract's; doctor uses 0). */
  retries?: number;
}

interface Pending {
  method: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/** One live socket and its calls. */
class Connection {
  socket!: RpcSocket;
  readonly pending = new Map<string, Pending>();
  next = 0;
  handshaking = true;
  closed = false;
  inbox: string[] = [];
  inboxWaiter: (() => void) | null = null;
  timers: ReturnType<typeof setInterval>[] = [];
  pongTimer: ReturnType<typeof setTimeout> | null = null;
}

/** The client; one socket at a time, re-dialled on the next call after a loss. */
export class TruenasClient {
  readonly host: string;
  readonly #o: TruenasClientOptions;
  #conn: Connection | null = null;
  #connecting: Promise<Connection> | null = null;
  #version: TruenasVersion | null = null;
  #closed = false;
  readonly #jobs: JobTracker;

  constructor(options: TruenasClientOptions) {
    this.#o = options;
    this.host = `${options.host}:${options.port}`;
    this.#jobs = new JobTracker();
  }

  /** The server's version (after the first connection). */
  get version(): TruenasVersion | null {
    return this.#version;
  }

  /** Whether a socket is open now. */
  get connected(): boolean {
    return this.#conn !== null && !this.#conn.closed;
  }

  /** Connects (dial + handshake) unless connected. */
  async connect(): Promise<void> {
    await this.#connection();
  }

  /** The snapshot method for `op`: `zfs.snapshot.*` before 25.10, `pool.snapshot.*` after. */
  snapshotMethod(op: "create" | "query" | "delete" | "rollback"): string {
    const v = this.#version;
    const pool = v !== null && (v.major > 25 || (v.major === 25 && v.minor >= 10));
    return `${pool ? "pool" : "zfs"}.snapshot.${op}`;
  }

  /** Calls `method` with positional `params` (absent: no params member), with the retry policy. */
  async call<T>(method: string, params?: unknown[]): Promise<T> {
    const random = this.#o.random ?? Math.random;
    for (let attempt = 0;; attempt++) {
      try {
        return await this.#callOnce(method, params) as T;
      } catch (error) {
        if (isNotAuthenticated(error)) this.#drop("ENOTAUTHENTICATED");
        if (!isRetriable(error) || attempt >= (this.#o.retries ?? 3)) throw error;
        const base = Math.min(2000 * 2 ** attempt, 30_000);
        const wait = Math.round(base * (0.75 + 0.5 * random()));
        log.debug(
          `TrueNAS ${this.host}: ${method} failed (${
            (error as Error).message
          }); retry in ${wait} ms`,
        );
        await this.#o.clock.sleep(wait);
      }
    }
  }

  /** Calls a job method and waits for its terminal state; a non-integer result is returned as is. */
  async callJob<T>(method: string, params?: unknown[]): Promise<T> {
    const result = await this.call<unknown>(method, params);
    if (typeof result !== "number" || !Number.isInteger(result)) return result as T;
    return await this.#waitJob(method, result) as T;
  }

  /** Closes the socket. */
  close(): Promise<void> {
    // Final: calls in flight and later calls fail for good (not a retriable "websocket: close").
    this.#closed = true;
    this.#drop("connection closed by the client", false);
    return Promise.resolve();
  }

  #waitJob(method: string, jobId: number): Promise<unknown> {
    return awaitJob({
      host: this.host,
      method,
      jobId,
      tracker: this.#jobs,
      offline: () => this.#conn === null || this.#conn.closed,
      call: (m, p) => this.call(m, p),
      clock: this.#o.clock,
      budgetMs: this.#o.reconnectBudgetMs ?? 300_000,
    });
  }

  async #callOnce(method: string, params?: unknown[]): Promise<unknown> {
    const conn = await this.#connection();
    return await this.#send(conn, method, params);
  }

  #send(conn: Connection, method: string, params?: unknown[]): Promise<unknown> {
    const rid = `req-${conn.next++}`;
    return new Promise((resolve, reject) => {
      if (conn.closed) {
        const why = this.#closed ? "connection closed by the client" : "websocket: close";
        reject(new TruenasTransportError(this.host, method, why));
        return;
      }
      conn.pending.set(rid, { method, resolve, reject });
      const frame: Record<string, unknown> = { jsonrpc: "2.0", id: rid, method };
      if (params !== undefined) frame.params = params;
      log.debug(`TrueNAS ${this.host}: → ${method} (${rid})`);
      try {
        conn.socket.send(JSON.stringify(frame));
      } catch (error) {
        conn.pending.delete(rid);
        reject(new TruenasTransportError(this.host, method, (error as Error).message));
      }
    });
  }

  #connection(): Promise<Connection> {
    if (this.#closed) {
      return Promise.reject(
        new TruenasTransportError(this.host, "connecting", "connection closed by the client"),
      );
    }
    if (this.#conn && !this.#conn.closed) return Promise.resolve(this.#conn);
    this.#connecting ??= this.#dial().finally(() => (this.#connecting = null));
    return this.#connecting;
  }

  async #dial(): Promise<Connection> {
    const o = this.#o;
    const conn = new Connection();
    const timeoutMs = o.connectTimeoutMs ?? 20_000;
    try {
      conn.socket = await o.dial({
        scheme: o.scheme ?? "wss",
        host: o.host,
        port: o.port,
        path: "/api/current",
        insecure: o.insecure ?? false,
        caCerts: o.caCerts,
        timeoutMs,
      }, {
        onText: (text) => this.#onText(conn, text),
        onPong: () => {
          if (conn.pongTimer !== null) clearTimeout(conn.pongTimer);
          conn.pongTimer = null;
        },
        onClose: (reason) => this.#onClose(conn, reason),
      });
    } catch (error) {
      throw dialError(this.host, (error as Error).message);
    }
    // A socket deadline, not a poll: a real timer (unref'd) even when the clock is fake.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TruenasTransportError(this.host, "handshake", "i/o timeout")),
        timeoutMs,
      );
      Deno.unrefTimer(timer);
    });
    try {
      await Promise.race([this.#handshake(conn), deadline]);
    } catch (error) {
      conn.socket.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    this.#conn = conn;
    this.#keepalive(conn);
    return conn;
  }

  async #handshake(conn: Connection): Promise<void> {
    const o = this.#o;
    conn.socket.send(JSON.stringify({
      jsonrpc: "2.0",
      id: "auth",
      method: "auth.login_ex",
      params: [{ mechanism: "API_KEY_PLAIN", username: o.username, api_key: o.apiKey }],
    }));
    const login = await this.#nextReply(conn, "auth", "auth.login_ex");
    const type = (login as { response_type?: unknown } | null)?.response_type;
    if (type !== "SUCCESS") {
      throw new RuntimeError(
        "truenas_auth",
        redact(
          `TrueNAS ${this.host}: auth.login_ex: the server refused the API key of user ${o.username} (${
            String(type ?? "no response_type")
          })`,
        ),
        { hint: "check truenas.api_key and truenas.username (a full-admin API key is needed)" },
      );
    }
    conn.socket.send(
      JSON.stringify({
        jsonrpc: "2.0",
        id: "job-sub",
        method: "core.subscribe",
        params: ["core.get_jobs"],
      }),
    );
    await this.#nextReply(conn, "job-sub", "core.subscribe");
    conn.handshaking = false;
    const pending = conn.inbox.splice(0);
    for (const text of pending) this.#route(conn, text);
    const raw = await this.#send(conn, "system.version");
    const version = checkVersion(this.host, raw);
    this.#version = version;
  }

  /** The next frame on a fresh socket; it must be the reply with `id`. */
  async #nextReply(conn: Connection, id: string, method: string): Promise<unknown> {
    while (conn.inbox.length === 0) {
      if (conn.closed) {
        throw new TruenasTransportError(this.host, method, "websocket: close during handshake");
      }
      await new Promise<void>((resolve) => (conn.inboxWaiter = resolve));
    }
    const text = conn.inbox.shift()!;
    let frame: { id?: unknown; result?: unknown; error?: RpcErrorBody };
    try {
      frame = JSON.parse(text);
    } catch {
      throw new RuntimeError(
        "truenas_protocol",
        `TrueNAS ${this.host}: ${method}: reply is not JSON`,
      );
    }
    if (frame.id !== id) {
      throw new RuntimeError(
        "truenas_protocol",
        `TrueNAS ${this.host}: ${method}: expected the reply with id "${id}" as the next frame`,
      );
    }
    if (frame.error) throw callError({ host: this.host, method }, frame.error);
    return frame.result;
  }

  #onText(conn: Connection, text: string): void {
    if (conn.handshaking) {
      conn.inbox.push(text);
      const w = conn.inboxWaiter;
      conn.inboxWaiter = null;
      w?.();
      return;
    }
    this.#route(conn, text);
  }

  #route(conn: Connection, text: string): void {
    let frame: {
      id?: unknown;
      result?: unknown;
      error?: RpcErrorBody;
      method?: unknown;
      params?: { collection?: unknown; id?: unknown; fields?: unknown };
    };
    try {
      frame = JSON.parse(text);
    } catch {
      log.debug(`TrueNAS ${this.host}: ignoring a frame that is not JSON`);
      return;
    }
    if (typeof frame.id === "string" && frame.id !== "") {
      const p = conn.pending.get(frame.id);
      if (!p) return;
      conn.pending.delete(frame.id);
      if (frame.error) p.reject(callError({ host: this.host, method: p.method }, frame.error));
      else p.resolve(frame.result);
      return;
    }
    if (frame.method === "collection_update" && frame.params?.collection === "core.get_jobs") {
      this.#jobs.event(frame.params.id, frame.params.fields);
    }
  }

  #onClose(conn: Connection, reason: string): void {
    if (conn.closed) return;
    conn.closed = true;
    for (const t of conn.timers) clearInterval(t);
    if (conn.pongTimer !== null) clearTimeout(conn.pongTimer);
    const w = conn.inboxWaiter;
    conn.inboxWaiter = null;
    w?.();
    for (const p of conn.pending.values()) {
      p.reject(new TruenasTransportError(this.host, p.method, reason));
    }
    conn.pending.clear();
    if (this.#conn === conn) this.#conn = null;
    log.debug(`TrueNAS ${this.host}: connection closed (${reason})`);
    this.#jobs.disconnected();
  }

  #drop(reason: string, retriable = true): void {
    const conn = this.#conn;
    if (!conn) return;
    this.#onClose(conn, retriable ? `websocket: close (${reason})` : reason);
    conn.socket.close();
  }

  #keepalive(conn: Connection): void {
    const every = this.#o.keepaliveMs ?? 30_000;
    const budget = this.#o.pongTimeoutMs ?? 10_000;
    const id = setInterval(() => {
      if (conn.closed || conn.pongTimer !== null) return;
      try {
        conn.socket.ping();
      } catch {
        return;
      }
      const pong = setTimeout(() => {
        log.debug(`TrueNAS ${this.host}: no pong within ${budget} ms; dropping the connection`);
        conn.socket.close();
        this.#onClose(conn, "websocket: close (keepalive: no pong)");
      }, budget);
      conn.pongTimer = pong;
      Deno.unrefTimer(pong);
    }, every);
    Deno.unrefTimer(id);
    conn.timers.push(id);
  }
}
