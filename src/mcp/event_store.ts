/**
 * Resumability for the streamable HTTP transport: the SDK stores every message it sends on an
 * SSE stream in an {@link EventStore} and, when a client reconnects with `Last-Event-ID`,
 * replays what followed that event on the same stream.
 *
 * One {@link EventLog} serves every session of the daemon and keeps memory bounded: at most
 * `maxEvents` events and `maxBytes` of message text in all, the oldest dropped first (a client
 * that resumes after its events were dropped gets 400 and starts a new session). Each session
 * gets its own view ({@link EventLog.forSession}): event ids are opaque, and a session can
 * never resume or replay another session's stream (the SDK names every session's standalone
 * stream alike, so views keep them apart). A closed session's events are dropped at once.
 *
 * @module
 */

/** A JSON-RPC message as the transport hands it over (stored as is, never looked into). */
export type JsonRpcMessage = Record<string, unknown>;
type StreamId = string;
type EventId = string;

/**
 * The SDK's `EventStore` (`server/webStandardStreamableHttp.js`), restated: the SDK's type
 * declarations do not resolve under Deno, so this is what is checked.
 */
export interface EventStore {
  storeEvent(streamId: StreamId, message: JsonRpcMessage): Promise<EventId>;
  getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined>;
  replayEventsAfter(
    lastEventId: EventId,
    options: { send: (eventId: EventId, message: JsonRpcMessage) => Promise<void> },
  ): Promise<StreamId>;
}

/** Default bounds of an {@link EventLog}. */
export const EVENT_LOG_DEFAULTS = { maxEvents: 2000, maxBytes: 8 << 20 } as const;

interface StoredEvent {
  seq: number;
  session: string;
  stream: StreamId;
  /** The message as JSON text: compact, and its size is what the bound counts. */
  text: string;
}

/** The daemon's bounded event log (see the module doc). */
export class EventLog {
  readonly maxEvents: number;
  readonly maxBytes: number;
  /** Oldest first; `#head` is the index of the oldest live entry. */
  #events: (StoredEvent | undefined)[] = [];
  #head = 0;
  #bySeq = new Map<number, StoredEvent>();
  #bytes = 0;
  #seq = 0;
  /** A per-process prefix, so ids from an earlier daemon never match. */
  readonly #epoch = crypto.randomUUID().slice(0, 8);

  constructor(options: { maxEvents?: number; maxBytes?: number } = {}) {
    this.maxEvents = options.maxEvents ?? EVENT_LOG_DEFAULTS.maxEvents;
    this.maxBytes = options.maxBytes ?? EVENT_LOG_DEFAULTS.maxBytes;
  }

  /** Events held. */
  get size(): number {
    return this.#bySeq.size;
  }

  /** Bytes of message text held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The store the SDK transport of session `session` uses. */
  forSession(session: string): EventStore {
    return {
      storeEvent: (stream: StreamId, message: JsonRpcMessage) =>
        Promise.resolve(this.#store(session, stream, message)),
      getStreamIdForEventId: (id: EventId) => Promise.resolve(this.#find(session, id)?.stream),
      replayEventsAfter: (id: EventId, { send }) => this.#replay(session, id, send),
    };
  }

  /** Drops every event of `session` (it closed). */
  dropSession(session: string): void {
    for (const event of this.#bySeq.values()) {
      if (event.session === session) this.#remove(event);
    }
    this.#compact();
  }

  #store(session: string, stream: StreamId, message: JsonRpcMessage): EventId {
    const seq = ++this.#seq;
    const text = JSON.stringify(message);
    const event: StoredEvent = { seq, session, stream, text };
    this.#events.push(event);
    this.#bySeq.set(seq, event);
    this.#bytes += text.length;
    while (this.#bySeq.size > this.maxEvents || this.#bytes > this.maxBytes) {
      const oldest = this.#events[this.#head];
      this.#head++;
      if (oldest && this.#bySeq.has(oldest.seq)) this.#remove(oldest);
      if (this.#bySeq.size === 0) break;
    }
    this.#compact();
    return `${this.#epoch}-${seq}`;
  }

  #remove(event: StoredEvent): void {
    this.#bySeq.delete(event.seq);
    this.#bytes -= event.text.length;
  }

  /** Drops dead slots at the front once they are a good part of the array. */
  #compact(): void {
    while (this.#head < this.#events.length) {
      const first = this.#events[this.#head];
      if (first && this.#bySeq.has(first.seq)) break;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#events.length) {
      this.#events = this.#events.slice(this.#head);
      this.#head = 0;
    }
  }

  #find(session: string, id: EventId): StoredEvent | undefined {
    const m = /^([0-9a-f]{8})-(\d{1,15})$/.exec(id);
    if (!m || m[1] !== this.#epoch) return undefined;
    const event = this.#bySeq.get(Number(m[2]));
    return event?.session === session ? event : undefined;
  }

  async #replay(
    session: string,
    id: EventId,
    send: (id: EventId, message: JsonRpcMessage) => Promise<void>,
  ): Promise<StreamId> {
    const from = this.#find(session, id);
    if (!from) throw new Error("unknown or expired event id");
    const later = [...this.#bySeq.values()].filter((e) =>
      e.seq > from.seq && e.session === session && e.stream === from.stream
    );
    for (const event of later) {
      // Priming events (empty messages) only mark a position: nothing to resend.
      if (event.text === "{}") continue;
      await send(`${this.#epoch}-${event.seq}`, JSON.parse(event.text));
    }
    return from.stream;
  }
}
