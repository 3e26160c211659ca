/**
 * Host-key checking for one ssh2 connection, answered synchronously inside the handshake.
 *
 * Why synchronous: ssh2's client key exchange goes wrong when an asynchronous host-key verdict
 * arrives while its `finish()` runs. Deno loads node:crypto's hash module lazily on the first
 * `createHash` of a process and runs pending microtasks while doing so; ssh2 calls `createHash`
 * inside `finish()` after marking the exchange finished. A verdict promise that settles then
 * calls `finish()` again, which does nothing, and the client never sends NEWKEYS: the handshake
 * hangs until the connect timeout (tests/unit/ssh/handshake_test.ts reproduces it). Answering
 * inside the callback, from pins read before connecting, leaves no window.
 *
 * The pins are read before the connection ({@link HostKeyGate.open}); the verdict is
 * {@link judgeHostKey}'s. A key to pin (first use) or to replace (sandbox recreated) is written
 * by {@link HostKeyGate.commit} after the handshake, under the store's lock, through
 * {@link KnownHosts.check}, which decides again on the file's current content (a racing writer
 * cannot slip a different key in). A refused key is explained by {@link HostKeyGate.refusal} (no write).
 *
 * @module
 */
import { errorMessage, RuntimeError } from "../lib/errors.ts";
import {
  fingerprint,
  type HostKey,
  HostKeyMismatchError,
  type HostKeyPin,
  judgeHostKey,
  type KnownHosts,
  parseKeyBlob,
} from "./known_hosts.ts";

/** The host-key decision of one connection. */
export class HostKeyGate {
  readonly #store: KnownHosts;
  readonly #alias: string;
  readonly #createdAt: string | null | undefined;
  /** Pins of the alias, read before the connection. */
  readonly pins: readonly HostKeyPin[];
  #offered: HostKey | null = null;
  #refused: { offered: HostKey | null; reason: unknown } | null = null;

  private constructor(init: {
    store: KnownHosts;
    alias: string;
    createdAt: string | null | undefined;
    pins: HostKeyPin[];
  }) {
    this.#store = init.store;
    this.#alias = init.alias;
    this.#createdAt = init.createdAt;
    this.pins = init.pins;
  }

  /** Reads the alias' pins (before connecting). */
  static async open(
    store: KnownHosts,
    alias: string,
    createdAt?: string | null,
  ): Promise<HostKeyGate> {
    return new HostKeyGate({ store, alias, createdAt, pins: await store.list(alias) });
  }

  /** True when the server offered a key this gate refused. */
  get refused(): boolean {
    return this.#refused !== null;
  }

  /**
   * ssh2's `hostVerifier`: answers `verify` before returning (never later), so the key exchange
   * continues on its synchronous path.
   */
  readonly verifier = (blob: Uint8Array, verify: (ok: boolean) => void): void => {
    let offered: HostKey;
    try {
      offered = parseKeyBlob(blob);
    } catch (error) {
      this.#refused = { offered: null, reason: error };
      verify(false);
      return;
    }
    this.#offered = offered;
    if (judgeHostKey(this.pins, offered, this.#createdAt) === "mismatch") {
      this.#refused = { offered, reason: null };
      verify(false);
      return;
    }
    verify(true);
  };

  /** After the handshake: pins a first-seen key or records a recreated sandbox's new key. */
  async commit(): Promise<void> {
    if (this.#offered === null) {
      throw new RuntimeError("host_key", `sandbox '${this.#alias}' offered no host key`);
    }
    await this.#store.check(this.#alias, this.#offered, { createdAt: this.#createdAt });
  }

  /** The error explaining why the offered key was refused (a HostKeyMismatchError, mostly). */
  async refusal(): Promise<Error> {
    const offered = this.#refused?.offered;
    if (offered && this.pins.length > 0) {
      const old = this.pins.find((p) => p.type === offered.type) ?? this.pins[0];
      return new HostKeyMismatchError(this.#alias, {
        pinned: `${old.type} ${await fingerprint(old)}`,
        pinnedAt: old.pinnedAt,
        offered: `${offered.type} ${await fingerprint(offered)}`,
      });
    }
    return new RuntimeError(
      "host_key",
      `cannot verify the SSH host key of sandbox '${this.#alias}': ${
        errorMessage(this.#refused?.reason ?? "no key offered")
      }`,
    );
  }
}
