/**
 * How the TrueNAS client reads failures (truenas-api.md §1 retry policy, §3 error shapes):
 * JSON-RPC errors, job failures and transport errors, which of them are retried, and
 * not-found detection by message.
 *
 * @module
 */
import { RuntimeError } from "../../lib/errors.ts";
import { redact } from "../../lib/redact.ts";

/** The `error` member of a JSON-RPC reply. */
export interface RpcErrorBody {
  code: number;
  message?: string;
  data?: { error?: number; errname?: string; reason?: string; extra?: unknown };
}

/** A call the server answered with an error (or a job that failed). */
export class TruenasCallError extends RuntimeError {
  /** JSON-RPC code (`-32001`, `-32000`, `-1`), or 0 for a failed job. */
  readonly rpcCode: number;
  /** errno from `data.error`, when given. */
  readonly errno?: number;
  /** The server's own message (`data.reason`, else `message`; the job's error string). */
  readonly reason: string;

  constructor(
    where: { host: string; method: string },
    body: { rpcCode: number; errno?: number; reason: string },
  ) {
    super(
      "truenas_call",
      redact(`TrueNAS ${where.host}: ${where.method}: ${firstLine(body.reason)}`),
    );
    this.rpcCode = body.rpcCode;
    this.errno = body.errno;
    this.reason = body.reason;
  }
}

/** The socket failed (dial, TLS, close): retried when the contract says so. */
export class TruenasTransportError extends RuntimeError {
  /** The transport's own message. */
  readonly transport: string;

  constructor(host: string, what: string, failure: string | { text: string; hint: string }) {
    const text = typeof failure === "string" ? failure : failure.text;
    super("truenas_unreachable", redact(`TrueNAS ${host}: ${what}: ${text}`), {
      hint: typeof failure === "string" ? undefined : failure.hint,
    });
    this.transport = text;
  }
}

/** Builds the error of a JSON-RPC `error` member. */
export function callError(
  where: { host: string; method: string },
  body: RpcErrorBody,
): TruenasCallError {
  const reason = body.data?.reason || body.message || `error ${body.code}`;
  return new TruenasCallError(where, {
    rpcCode: body.code,
    errno: typeof body.data?.error === "number" ? body.data.error : undefined,
    reason,
  });
}

const TRANSPORT_RETRY = [
  "connection reset by peer",
  "broken pipe",
  "connection refused",
  "no route to host",
  "network is unreachable",
  "i/o timeout",
  "websocket: close",
  "eof",
];

/** Whether the contract retries this failure (§1). */
export function isRetriable(error: unknown): boolean {
  if (error instanceof TruenasCallError) {
    if (error.rpcCode === -1 || error.rpcCode === -32000) return true;
    if (error.rpcCode === -32001) {
      return error.errno === 11 || error.errno === 16 || isNotAuthenticated(error);
    }
    return false;
  }
  if (error instanceof TruenasTransportError) {
    const t = error.transport.toLowerCase();
    return TRANSPORT_RETRY.some((p) => t.includes(p)) || /econnrefused|econnreset|epipe/.test(t);
  }
  return false;
}

/** `data.reason` says ENOTAUTHENTICATED: the client re-dials. */
export function isNotAuthenticated(error: unknown): boolean {
  return error instanceof TruenasCallError && error.reason.includes("ENOTAUTHENTICATED");
}

/** Not-found detection by message, as both layers of the contract do it (§3). */
export function isNotFound(error: unknown): boolean {
  if (!(error instanceof TruenasCallError)) return false;
  const m = error.reason;
  return /does not exist|\[ENOENT\]|not found|no such instance/i.test(m);
}

const SUGGESTIONS: Record<string, string> = {
  EINVAL: "the server rejected a value; check the names and settings used",
  ENOENT: "something it needs does not exist on the server",
  EFAULT: "the server failed internally; see its middleware log",
  EEXIST: "the name is already taken on the server",
  ENOTEMPTY: "the target still holds data (dependent clones or snapshots)",
};

/** A job's error string made readable (§3): one line, `[CODE] field: text (suggestion)`. */
export function formatJobError(error: string | null, logsExcerpt?: string | null): string {
  let text = (error ?? "job failed without an error message").replace(
    /^Process exited with status \d+:\s*/,
    "",
  );
  const tb = text.indexOf("Traceback");
  if (tb >= 0) text = text.slice(0, tb);
  text = text.trim().split("\n").map((l) => l.trim()).filter(Boolean).join("; ") ||
    "job failed";
  const code = text.match(/\[([A-Z]+)\]/)?.[1];
  const suggestion = code ? SUGGESTIONS[code] : undefined;
  let out = suggestion ? `${text} (${suggestion})` : text;
  if (logsExcerpt?.trim()) out += ` — log: ${firstLine(logsExcerpt.trim())}`;
  return out;
}

function firstLine(text: string): string {
  const lines = text.trim().split("\n").map((l) => l.trim()).filter(Boolean);
  return lines.length <= 1 ? (lines[0] ?? "") : `${lines[0]} …`;
}

/** A dial failure: a certificate that does not verify gets its own clear line. */
export function dialError(host: string, message: string): TruenasTransportError {
  if (/certificate|self[- ]signed|unknownissuer|cert/i.test(message)) {
    return new TruenasTransportError(host, "connecting", {
      text: `the TLS certificate does not verify (${message})`,
      hint:
        "install the server's CA on this host, or set truenas.insecure_skip_verify = true (not recommended)",
    });
  }
  return new TruenasTransportError(host, "connecting", message);
}
