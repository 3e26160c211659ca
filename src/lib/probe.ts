/**
 * Is an SSH server really there? Opens a TCP connection and reads the server's identification
 * line: only a real `SSH-2.0-…` (or `SSH-1.99-…`) banner counts, not merely an open port
 * (a NAT, proxy or half-booted guest accepts connections long before sshd answers).
 * Behind the {@link SshProbe} interface so the boot wait can be tested with doubles.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import { errorMessage } from "./errors.ts";

/** Where to probe. */
export interface ProbeTarget {
  host: string;
  port: number;
}

/** Options of one probe. */
export interface ProbeOptions {
  /** Give up after this many milliseconds (connect + banner). */
  timeoutMs: number;
  clock: Clock;
  signal?: AbortSignal;
}

/** Outcome of one probe. */
export type ProbeResult = { ok: true; banner: string } | { ok: false; reason: string };

/** Checks for an SSH server. */
export interface SshProbe {
  probe(target: ProbeTarget, options: ProbeOptions): Promise<ProbeResult>;
}

/** The longest identification section we read before giving up (RFC 4253 §4.2 allows lines
 * before the version line). */
const MAX_BANNER_BYTES = 8192;
const decoder = new TextDecoder();

/**
 * Looks for the identification line in what a server sent so far: the version line, why it is
 * not an acceptable one, or null when more bytes are needed. Other lines before it are skipped.
 */
export function parseBanner(text: string): ProbeResult | null {
  let rest = text;
  for (;;) {
    const nl = rest.indexOf("\n");
    if (nl === -1) return null; // need more bytes
    const line = rest.slice(0, nl).replace(/\r$/, "");
    rest = rest.slice(nl + 1);
    if (line.startsWith("SSH-")) {
      if (line.startsWith("SSH-2.0-") || line.startsWith("SSH-1.99-")) {
        return { ok: true, banner: line };
      }
      return { ok: false, reason: `unsupported SSH version: ${line.slice(0, 40)}` };
    }
  }
}

/** The real probe: `Deno.connect` and read the identification line. */
export class TcpBannerProbe implements SshProbe {
  async probe(target: ProbeTarget, options: ProbeOptions): Promise<ProbeResult> {
    const timeout = new AbortController();
    const onAbort = () => timeout.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    let conn: Deno.TcpConn | undefined;
    const timer = options.clock.sleep(options.timeoutMs, timeout.signal).then(
      () => "timeout" as const,
      () => "aborted" as const,
    );
    try {
      const connecting = Deno.connect({
        hostname: target.host,
        port: target.port,
        transport: "tcp",
      }).then((c) => c, (e) => ({ error: e as unknown }));
      const connected = await Promise.race([connecting, timer]);
      if (connected === "timeout" || connected === "aborted") {
        // Close the connection if it completes after we gave up on it.
        connecting.then((c) => "error" in c ? undefined : c.close()).catch(() => {});
        if (connected === "timeout") return { ok: false, reason: "connect timed out" };
        throw options.signal?.reason ?? new Error("aborted");
      }
      if ("error" in connected) return { ok: false, reason: errorMessage(connected.error) };
      conn = connected;
      const buffer = new Uint8Array(MAX_BANNER_BYTES);
      let filled = 0;
      for (;;) {
        const read = await Promise.race([
          conn.read(buffer.subarray(filled)).then((n) => n, (e) => ({ error: e as unknown })),
          timer,
        ]);
        if (read === "timeout") return { ok: false, reason: "no banner before the timeout" };
        if (read === "aborted") throw options.signal?.reason ?? new Error("aborted");
        if (read === null) {
          return {
            ok: false,
            reason: filled ? "connection closed mid-banner" : "connection closed without banner",
          };
        }
        if (typeof read === "object") return { ok: false, reason: errorMessage(read.error) };
        filled += read;
        const parsed = parseBanner(decoder.decode(buffer.subarray(0, filled)));
        if (parsed) return parsed;
        if (filled >= buffer.length) return { ok: false, reason: "no SSH identification line" };
      }
    } finally {
      timeout.abort();
      options.signal?.removeEventListener("abort", onAbort);
      try {
        conn?.close();
      } catch {
        // already closed
      }
    }
  }
}

/** The shared real probe. */
export const tcpBannerProbe: SshProbe = new TcpBannerProbe();
