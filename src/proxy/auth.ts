/**
 * Where a client's token travels, and the answers to a client without a valid one.
 *
 * - A request to the proxy itself (the API, `/v1/…`): `Authorization: Bearer <token>` (what
 *   Claude Code sends for `ANTHROPIC_AUTH_TOKEN`) or `x-api-key: <token>`. Refused with 401.
 * - A proxy request (CONNECT, absolute-URI HTTP): `Proxy-Authorization: Basic` with the token
 *   as the password (what curl, git, apt, Python and Node send for
 *   `http://tachikoma:<token>@GW:PORT` in `HTTP(S)_PROXY`; a token given as the user name
 *   with an empty password works too), or `Proxy-Authorization: Bearer <token>`. Refused with
 *   407 and `Proxy-Authenticate: Basic realm="tachikoma"` (clients that wait to be asked, like
 *   git, send the credential then).
 *
 * The refusals say nothing about why (missing or unknown): that is in the proxy's log only.
 * These headers never go further: the API forward replaces `authorization`/`x-api-key` with
 * the host credential, `Proxy-Authorization` is hop-by-hop and never forwarded.
 *
 * @module
 */
import { textResponse } from "./headers.ts";

/** The realm named in the challenges. */
export const REALM = "tachikoma";

function bearer(value: string | null): string | null {
  if (value === null) return null;
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(value);
  return m ? m[1] : null;
}

/** The tokens a request to the proxy itself presents, in the order they are tried. */
export function apiTokens(get: (name: string) => string | null): string[] {
  const out: string[] = [];
  const b = bearer(get("authorization"));
  if (b) out.push(b);
  const key = get("x-api-key")?.trim();
  if (key) out.push(key);
  return out;
}

/** The token a `Proxy-Authorization` value carries, or null. */
export function proxyToken(value: string | null): string | null {
  if (value === null) return null;
  const b = bearer(value);
  if (b) return b;
  const m = /^\s*basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(value);
  if (!m) return null;
  let decoded: string;
  try {
    decoded = atob(m[1].replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    return null;
  }
  const colon = decoded.indexOf(":");
  if (colon === -1) return decoded || null;
  const password = decoded.slice(colon + 1);
  const user = decoded.slice(0, colon);
  // user:token, or token: (the token as the user name, empty password)
  return password !== "" ? password : user !== "" ? user : null;
}

/** The header value of a `Proxy-Authenticate` challenge. */
export const PROXY_CHALLENGE = `Basic realm="${REALM}"`;

/** The body of both refusals: no detail (the log says whether it was missing or unknown). */
const REFUSAL =
  "tachikoma proxy: this request needs the sandbox's proxy token (run `tachikoma spawn` on " +
  "the host to restore the guest's environment)";

/** 401 for an API request without a valid token, in the API's error shape. */
export function unauthorizedResponse(): Response {
  return Response.json(
    { type: "error", error: { type: "authentication_error", message: REFUSAL } },
    { status: 401, headers: { "www-authenticate": `Bearer realm="${REALM}"` } },
  );
}

/** 407 for a proxy request without a valid token. */
export function proxyAuthRequiredResponse(): Response {
  return textResponse(407, REFUSAL, { "proxy-authenticate": PROXY_CHALLENGE });
}

/** The plain-text refusal body (for the raw CONNECT answer). */
export const REFUSAL_TEXT = REFUSAL;
