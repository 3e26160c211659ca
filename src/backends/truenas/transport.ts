/**
 * The socket under the TrueNAS JSON-RPC client: one WebSocket (RFC 6455, client side) over
 * `node:net` or `node:tls`. Deno's own `WebSocket` can neither send ping control frames (the
 * contract's keepalive) nor skip certificate verification (`insecure_skip_verify`), so the few
 * frames the client needs are written here: masked text out, text/ping/pong/close in.
 *
 * TLS is verified by default (the runtime's root store plus `caCerts`); a certificate that does
 * not verify fails the dial with one line naming the host.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import tls from "node:tls";

/** What the client hears from its socket. */
export interface SocketHandlers {
  /** One complete text message. */
  onText(text: string): void;
  /** A pong control frame. */
  onPong(): void;
  /** The socket closed (by either side or an error); called once. */
  onClose(reason: string): void;
}

/** An open socket. */
export interface RpcSocket {
  /** Sends one text message. */
  send(text: string): void;
  /** Sends a ping control frame. */
  ping(): void;
  /** Closes the socket; `onClose` follows. */
  close(): void;
}

/** Where and how to dial. */
export interface DialTarget {
  /** `ws` (tests) or `wss`. */
  scheme: "ws" | "wss";
  host: string;
  port: number;
  path: string;
  /** Skip certificate verification (`truenas.insecure_skip_verify`). */
  insecure: boolean;
  /** Extra PEM root certificates. */
  caCerts?: string[];
  /** Budget for TCP + TLS + upgrade (ms). */
  timeoutMs: number;
}

/** Opens a socket; rejects with a transport error message. */
export type Dialer = (target: DialTarget, handlers: SocketHandlers) => Promise<RpcSocket>;

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_MESSAGE = 64 * 1024 * 1024;

/** The real dialer (node:net / node:tls). */
export const nodeDialer: Dialer = (
  target: DialTarget,
  handlers: SocketHandlers,
): Promise<RpcSocket> =>
  new Promise((resolve, reject) => {
    const key = randomBytes(16).toString("base64");
    const expected = createHash("sha1").update(key + GUID).digest("base64");
    let settled = false;
    const fail = (message: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      reject(new Error(message));
    };
    const sock: net.Socket = target.scheme === "wss"
      ? tls.connect({
        host: target.host,
        port: target.port,
        servername: net.isIP(target.host) ? undefined : target.host,
        rejectUnauthorized: !target.insecure,
        ca: target.caCerts,
      })
      : net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => fail("i/o timeout"), target.timeoutMs);
    sock.on("error", (e: Error) => {
      if (!settled) fail(e.message);
    });
    sock.on(target.scheme === "wss" ? "secureConnect" : "connect", () => {
      const hostHeader = target.host.includes(":") ? `[${target.host}]` : target.host;
      sock.write(
        `GET ${target.path} HTTP/1.1\r\nHost: ${hostHeader}:${target.port}\r\n` +
          "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    let head = Buffer.alloc(0);
    const onHead = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > 16384) fail("websocket: bad handshake (header too long)");
        return;
      }
      const lines = head.subarray(0, end).toString("latin1").split("\r\n");
      const status = lines[0].split(" ")[1];
      const accept = lines.find((l) => /^sec-websocket-accept:/i.test(l))?.split(":")[1]?.trim();
      if (status !== "101") return fail(`websocket: bad handshake (HTTP ${status ?? "?"})`);
      if (accept !== expected) return fail("websocket: bad handshake (wrong accept key)");
      settled = true;
      clearTimeout(timer);
      sock.off("data", onHead);
      resolve(new FrameSocket(sock, handlers, head.subarray(end + 4)));
    };
    sock.on("data", onHead);
  });

/** One upgraded connection: frame parsing and writing. */
class FrameSocket implements RpcSocket {
  #buf: Buffer = Buffer.alloc(0);
  #parts: Buffer[] = [];
  #closed = false;

  constructor(readonly sock: net.Socket, readonly handlers: SocketHandlers, rest: Buffer) {
    sock.on("data", (chunk: Buffer) => this.#feed(chunk));
    sock.on("error", (e: Error) => this.#end(e.message));
    sock.on("close", () => this.#end("websocket: close"));
    if (rest.length) queueMicrotask(() => this.#feed(rest));
  }

  send(text: string): void {
    this.#write(0x1, Buffer.from(text, "utf8"));
  }

  ping(): void {
    this.#write(0x9, Buffer.alloc(0));
  }

  close(): void {
    if (this.#closed) return;
    try {
      this.#write(0x8, Buffer.from([0x03, 0xe8]));
    } catch { /* already gone */ }
    this.sock.end();
    this.sock.destroy();
    this.#end("websocket: close (by client)");
  }

  #end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.sock.destroy();
    this.handlers.onClose(reason);
  }

  #write(opcode: number, payload: Buffer): void {
    if (this.#closed) throw new Error("websocket: close");
    const len = payload.length;
    const header = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    if (len < 126) header[1] = 0x80 | len;
    else if (len < 65536) {
      header[1] = 0x80 | 126;
      header.writeUInt16BE(len, 2);
    } else {
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(len), 2);
    }
    const mask = randomBytes(4);
    const masked = Buffer.alloc(len);
    for (let i = 0; i < len; i++) masked[i] = payload[i] ^ mask[i & 3];
    this.sock.write(Buffer.concat([header, mask, masked]));
  }

  #feed(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    while (!this.#closed) {
      const b = this.#buf;
      if (b.length < 2) return;
      const fin = (b[0] & 0x80) !== 0, opcode = b[0] & 0x0f, masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f, off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (len > MAX_MESSAGE) return this.#end("websocket: message too large");
      const maskKey = masked ? b.subarray(off, off + 4) : null;
      if (masked) off += 4;
      if (b.length < off + len) return;
      const payload = Buffer.from(b.subarray(off, off + len));
      if (maskKey) { for (let i = 0; i < len; i++) payload[i] ^= maskKey[i & 3]; }
      this.#buf = b.subarray(off + len);
      this.#frame(fin, opcode, payload);
    }
  }

  #frame(fin: boolean, opcode: number, payload: Buffer): void {
    if (opcode === 0x9) return this.#write(0xa, payload);
    if (opcode === 0xa) return this.handlers.onPong();
    if (opcode === 0x8) {
      const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      return this.#end(`websocket: close ${code}`);
    }
    if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) {
      this.#parts.push(payload);
      if (!fin) return;
      const text = Buffer.concat(this.#parts).toString("utf8");
      this.#parts = [];
      this.handlers.onText(text);
    }
  }
}
