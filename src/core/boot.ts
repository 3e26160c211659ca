/**
 * Waiting for a sandbox to boot: first an address (`backend.waitForAddress`), then — on engines
 * whose exec goes through SSH (`capabilities.execOverSsh`: tart) — a real SSH banner from
 * `backend.sshEndpoint()`, both under ONE deadline (`boot_timeout_secs`). Engines with an API exec
 * (incus) are ready with their address: only `ssh` itself needs sshd, and waits for it
 * ({@link waitForSsh}). Probes
 * start at once and repeat every 100 ms for the first half second, then back off (×1.5) to at
 * most {@link POLL_MAX_MS}, so sshd accepting is noticed within a second at any point of the
 * wait (tachikoma: first probe after 0.5 s, then up to 5 s apart). All waiting goes through the
 * injected {@link Clock}.
 *
 * @module
 */
import type { Backend, SshEndpoint } from "../backends/backend.ts";
import type { Clock } from "../lib/clock.ts";
import { errorMessage, TimeoutError } from "../lib/errors.ts";
import type { SshProbe } from "../lib/probe.ts";

/** Gap between the first probes. */
export const POLL_FIRST_MS = 100;
/** Probes at {@link POLL_FIRST_MS} before backing off. */
export const POLL_FAST_COUNT = 5;
/** Largest gap between probes (keeps the notice latency under 1 s). */
export const POLL_MAX_MS = 750;
/** Longest single probe (connect + banner). */
export const PROBE_TIMEOUT_MS = 3000;

/** The gap before probe number `attempt + 1` (attempt counts from 0). */
export function pollDelay(attempt: number): number {
  if (attempt < POLL_FAST_COUNT) return POLL_FIRST_MS;
  return Math.min(POLL_MAX_MS, Math.round(POLL_FIRST_MS * 1.5 ** (attempt - POLL_FAST_COUNT + 1)));
}

/** Options of {@link waitForBoot}. */
export interface BootWaitOptions {
  backend: Backend;
  name: string;
  clock: Clock;
  probe: SshProbe;
  /** Absolute deadline on `clock` (ms). */
  deadline: number;
  /** The configured budget, for messages. */
  timeoutSecs: number;
  signal?: AbortSignal;
  /** An address the engine already reported (reconnect): skips waiting for one. */
  knownAddress?: string;
  /** Called when the address is known, before the SSH probes start. */
  onAddress?: (address: string) => void;
  /** Wait for an SSH banner too (default: `backend.capabilities.execOverSsh`). */
  ssh?: boolean;
}

/** What a successful boot wait found. */
export interface BootResult {
  address: string;
  endpoint: SshEndpoint;
  /** The server's identification line, e.g. `SSH-2.0-OpenSSH_9.2p1`; null when not waited for. */
  banner: string | null;
  /** Number of SSH probes made. */
  probes: number;
}

/** Thrown when the boot wait runs out of time; says which phase and what was seen last. */
export class BootTimeoutError extends TimeoutError {
  /** `address` or `ssh`. */
  readonly phase: "address" | "ssh";
  constructor(phase: "address" | "ssh", message: string, hint: string) {
    super(message, { hint });
    this.phase = phase;
  }
}

/**
 * Waits until the sandbox has an address and, when the engine's exec needs it, answers with an
 * SSH banner.
 */
export async function waitForBoot(options: BootWaitOptions): Promise<BootResult> {
  const { backend, name, clock, deadline, signal } = options;
  let address: string;
  try {
    address = options.knownAddress ??
      await backend.waitForAddress(name, { deadline, clock, signal });
  } catch (error) {
    if (error instanceof TimeoutError) {
      throw new BootTimeoutError(
        "address",
        `sandbox '${name}' got no IP address within ${options.timeoutSecs} s`,
        "the guest's network did not come up; raise boot_timeout_secs if it is just slow, " +
          `or check the ${backend.name} engine`,
      );
    }
    throw error;
  }
  options.onAddress?.(address);
  if (!(options.ssh ?? backend.capabilities.execOverSsh)) {
    return {
      address,
      endpoint: { host: address, port: (await backend.sshEndpoint(name)).port },
      banner: null,
      probes: 0,
    };
  }
  const ssh = await waitForSsh({ ...options, address });
  return { address, ...ssh };
}

/** Options of {@link waitForSsh}. */
export type SshWaitOptions = Omit<BootWaitOptions, "knownAddress" | "onAddress" | "ssh"> & {
  /** The sandbox's address (for messages; the endpoint comes from the backend). */
  address?: string;
};

/**
 * Waits until sshd answers with a banner (the engine already reported an address). Used by the
 * boot wait on engines whose exec needs SSH, and before the OpenSSH client connects elsewhere.
 */
export async function waitForSsh(
  options: SshWaitOptions,
): Promise<{ endpoint: SshEndpoint; banner: string; probes: number }> {
  const { backend, name, clock, deadline, signal } = options;
  const endpoint = await backend.sshEndpoint(name);
  let lastReason = "no probe made";
  for (let attempt = 0;; attempt++) {
    signal?.throwIfAborted();
    const remaining = deadline - clock.now();
    if (remaining <= 0) break;
    const result = await options.probe.probe(endpoint, {
      timeoutMs: Math.min(remaining, PROBE_TIMEOUT_MS),
      clock,
      signal,
    });
    if (result.ok) return { endpoint, banner: result.banner, probes: attempt + 1 };
    lastReason = result.reason;
    const left = deadline - clock.now();
    if (left <= 0) break;
    await clock.sleep(Math.min(pollDelay(attempt), left), signal);
  }
  throw new BootTimeoutError(
    "ssh",
    `sandbox '${name}' did not answer SSH on ${endpoint.host}:${endpoint.port} within ` +
      `${options.timeoutSecs} s (last probe: ${lastReason})`,
    "sshd in the guest did not start; raise boot_timeout_secs if it is just slow",
  );
}

/** One-line description of why a boot failed, for state's `failure` field. */
export function bootFailureReason(error: unknown): string {
  return errorMessage(error).split("\n")[0];
}
