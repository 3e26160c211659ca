/**
 * Mapping Incus failures to tachikoma's typed errors. Incus reports errors in an envelope
 * (`{type: "error", error_code, error}`) or as a failed background operation (`err`); both come
 * here with the HTTP-ish code (0 when unknown) and the message.
 *
 * @module
 */
import {
  ConflictError,
  NotFoundError,
  RuntimeError,
  TachikomaError,
  TimeoutError,
  UnreachableError,
} from "../../lib/errors.ts";

/** What the failing request was about, for messages: `sandbox "x"`, `checkpoint "c" of "x"`. */
export type Subject = string | undefined;

const CONFLICT_RE = /already exists|UNIQUE constraint failed/i;
const STATE_RE =
  /is not running|already running|is running|already stopped|is frozen|not frozen|is busy/i;

/**
 * Turns an Incus error (`code` is the HTTP status or the error_code, 0 when unknown) into a
 * typed error that says what to do.
 */
export function incusError(code: number, message: string, subject?: Subject): TachikomaError {
  const what = subject ?? "Incus object";
  if (code === 404 || /\bnot found\b|does not exist/i.test(message)) {
    return new NotFoundError(`${what} not found`, { cause: message });
  }
  if (code === 409 || CONFLICT_RE.test(message)) {
    return new ConflictError(`${what} already exists`, { cause: message });
  }
  if (STATE_RE.test(message)) {
    return new ConflictError(`${what}: ${lowerFirst(message)}`);
  }
  if (code === 403) {
    return new UnreachableError(`Incus refused the request: ${message}`, {
      hint: "trust tachikoma's client certificate on the server " +
        "(incus config trust add-certificate <client_cert>) or check [incus] project",
    });
  }
  if (/context deadline exceeded|timed out/i.test(message)) {
    return new TimeoutError(`${what}: Incus timed out (${message})`);
  }
  return new RuntimeError("incus", `${what}: ${lowerFirst(message)}`);
}

/** The error for a transport failure (socket missing, refused, TLS…). */
export function unreachable(where: string, cause: unknown): UnreachableError {
  const text = cause instanceof Error ? `${cause.message} ${String(cause.cause ?? "")}` : "";
  if (/permission denied|os error 13/i.test(text)) {
    return new UnreachableError(`cannot reach Incus at ${where}: permission denied`, {
      hint: "tachikoma setup adds you to the incus-admin group (log in again afterwards); " +
        "tachikoma doctor says what is missing",
      cause,
    });
  }
  if (where.startsWith("https://")) {
    const tls = /certificate|tls|handshake|UnknownIssuer/i.test(text);
    return new UnreachableError(
      `cannot reach Incus at ${where}: ${tls ? "TLS handshake failed" : "is it up?"}`,
      {
        hint: tls
          ? "check [incus] server_cert (the server's certificate) and client_cert/client_key " +
            "(tachikoma doctor)"
          : "check [incus] remote and the network (tachikoma doctor)",
        cause,
      },
    );
  }
  return new UnreachableError(
    `cannot reach Incus at ${where}: is incusd running? (tachikoma doctor)`,
    { hint: "tachikoma setup installs, starts and initialises a local Incus", cause },
  );
}

function lowerFirst(text: string): string {
  return text.length > 1 && /^[A-Z][a-z]/.test(text) ? text[0].toLowerCase() + text.slice(1) : text;
}
