/**
 * Host key pinning in tachikoma's own `known_hosts` (`<configdir>/known_hosts`), never the
 * user's. Entries are keyed by sandbox name (the ssh config block sets `HostKeyAlias` to it), so
 * an IP address reused by another sandbox never trips a false alarm. The file is in OpenSSH
 * format, so the system `ssh` checks against it too (`UserKnownHostsFile`,
 * `StrictHostKeyChecking yes`); the comment field records when a key was pinned:
 *
 *     tachikoma-myapp-main ssh-ed25519 AAAAC3Nza… tachikoma-pinned-at=2026-11-20T22:00:00.000Z
 *
 * Rules: the first key seen for a sandbox is pinned (or the provisioner pins the keys it read
 * through the backend, a trusted channel); the same key passes; a different key passes only when
 * the sandbox was recreated after the pin (its state `created_at` is newer), otherwise it is
 * refused with {@link HostKeyMismatchError}. `forget` drops a sandbox's pins (destroy, create).
 *
 * @module
 */
import { type Clock, systemClock } from "../lib/clock.ts";
import { errorMessage, RuntimeError, UsageError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { fromBase64, toBase64 } from "../lib/shell.ts";
import { withFileLock } from "../state/lock.ts";

/** A public host key: its type name and base64 wire blob. */
export interface HostKey {
  /** `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`… */
  type: string;
  /** Standard base64 of the SSH wire-format public key. */
  key: string;
}

/** A pinned key. */
export interface HostKeyPin extends HostKey {
  /** The sandbox name (HostKeyAlias). */
  host: string;
  /** ISO time the key was pinned, when recorded. */
  pinnedAt: string | null;
}

/** Result of {@link KnownHosts.check}. */
export type HostKeyVerdict = "known" | "pinned" | "replaced";

/** The two keys of a {@link HostKeyMismatchError}, as `type fingerprint`. */
export interface HostKeyMismatch {
  /** The pinned key. */
  pinned: string;
  /** ISO time the key was pinned, when recorded. */
  pinnedAt: string | null;
  /** The key the sandbox offered. */
  offered: string;
}

/** A sandbox offered a different host key than the one pinned: refused. */
export class HostKeyMismatchError extends RuntimeError {
  constructor(host: string, keys: HostKeyMismatch) {
    const { pinned, offered, pinnedAt } = keys;
    super(
      "host_key_changed",
      `the SSH host key of sandbox '${host}' changed: pinned ${pinned}` +
        `${pinnedAt ? ` on ${pinnedAt}` : ""}, offered ${offered}. Refusing to connect ` +
        "(the sandbox was not recreated by tachikoma since the key was pinned; this can be a " +
        "man-in-the-middle)",
      {
        hint: `if you recreated '${host}' yourself, run \`tachikoma ssh forget ${host}\` and retry`,
      },
    );
  }
}

const HOST_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const TYPE_RE = /^[a-z0-9@.-]+$/;
const KEY_RE = /^[A-Za-z0-9+/]+={0,3}$/;
const PIN_TAG = "tachikoma-pinned-at=";

/** Throws a clear error unless `host` can be a known_hosts/HostKeyAlias name. */
export function validateHostAlias(host: string): void {
  if (!HOST_RE.test(host)) {
    throw new UsageError(
      `invalid sandbox name for SSH host key pinning: ${JSON.stringify(host)}`,
      { hint: "sandbox names are letters, digits, '.', '_' and '-'" },
    );
  }
}

/** Reads the key type out of an SSH wire-format public key blob. */
export function parseKeyBlob(blob: Uint8Array): HostKey {
  if (blob.length < 4) throw new Error("host key blob too short");
  const len = new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) throw new Error("malformed host key blob");
  const type = new TextDecoder().decode(blob.subarray(4, 4 + len));
  if (!TYPE_RE.test(type)) throw new Error("malformed host key type");
  return { type, key: toBase64(blob) };
}

/** Parses an OpenSSH public key line (`ssh-ed25519 AAAA… comment`), checking type and blob agree. */
export function parsePublicKeyLine(line: string): HostKey {
  const [type, key] = line.trim().split(/\s+/);
  if (!type || !key || !TYPE_RE.test(type) || !KEY_RE.test(key)) {
    throw new Error(`not an OpenSSH public key line: ${JSON.stringify(line.slice(0, 60))}`);
  }
  const parsed = parseKeyBlob(fromBase64(key));
  if (parsed.type !== type) throw new Error(`key type ${type} does not match its blob`);
  return parsed;
}

/** OpenSSH-style fingerprint: `SHA256:<unpadded base64 of sha256(blob)>`. */
export async function fingerprint(key: HostKey): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    fromBase64(key.key) as Uint8Array<ArrayBuffer>,
  );
  return `SHA256:${toBase64(new Uint8Array(digest)).replace(/=+$/, "")}`;
}

/** The `HostKeyAlgorithms` that negotiate keys of `type` (RSA keys sign with SHA-2). */
export function algorithmsForKeyType(type: string): string[] {
  if (type === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  return [type];
}

interface Line {
  raw: string;
  pin: HostKeyPin | null;
}

function parseLine(raw: string): Line {
  const trimmed = raw.trim();
  if (trimmed === "" || trimmed.startsWith("#") || trimmed.startsWith("@")) {
    return { raw, pin: null };
  }
  const fields = trimmed.split(/\s+/);
  const [host, type, key] = fields;
  if (!host || !type || !key || !HOST_RE.test(host) || !TYPE_RE.test(type) || !KEY_RE.test(key)) {
    return { raw, pin: null };
  }
  const tag = fields.slice(3).find((f) => f.startsWith(PIN_TAG));
  const pinnedAt = tag ? tag.slice(PIN_TAG.length) : null;
  return {
    raw,
    pin: { host, type, key, pinnedAt: pinnedAt && !isNaN(Date.parse(pinnedAt)) ? pinnedAt : null },
  };
}

function renderPin(pin: HostKeyPin): string {
  return `${pin.host} ${pin.type} ${pin.key}${pin.pinnedAt ? ` ${PIN_TAG}${pin.pinnedAt}` : ""}`;
}

/**
 * What {@link KnownHosts.check} would decide about `offered` given a host's `pins`, without any
 * I/O: `known` (pinned), `new` (nothing pinned: trust on first use), `recreated` (a different key,
 * but the sandbox was created after every pin) or `mismatch` (refuse). Synchronous, so an SSH
 * handshake can be answered inside ssh2's host-key callback (see `src/ssh/host_key_gate.ts`).
 */
export function judgeHostKey(
  pins: readonly HostKeyPin[],
  offered: HostKey,
  createdAt?: string | null,
): "known" | "new" | "recreated" | "mismatch" {
  if (pins.some((p) => p.type === offered.type && p.key === offered.key)) return "known";
  if (pins.length === 0) return "new";
  const created = createdAt ? Date.parse(createdAt) : NaN;
  const newestPin = Math.max(...pins.map((p) => p.pinnedAt ? Date.parse(p.pinnedAt) : 0));
  return !isNaN(created) && created > newestPin ? "recreated" : "mismatch";
}

/** Options of {@link KnownHosts}. */
export interface KnownHostsOptions {
  /** Lock file serialising writers (default: `<file's dir>/locks/known_hosts.lock`). */
  lockPath?: string;
  clock?: Clock;
}

/** tachikoma's known_hosts file. */
export class KnownHosts {
  /** Path of the known_hosts file. */
  readonly path: string;
  readonly #lockPath: string;
  readonly #clock: Clock;

  constructor(path: string, options: KnownHostsOptions = {}) {
    this.path = path;
    const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
    this.#lockPath = options.lockPath ?? `${dir}/locks/known_hosts.lock`;
    this.#clock = options.clock ?? systemClock;
  }

  /** Every pin, or only those of `host`. */
  async list(host?: string): Promise<HostKeyPin[]> {
    const pins = (await this.#read()).flatMap((l) => l.pin ? [l.pin] : []);
    return host === undefined ? pins : pins.filter((p) => p.host === host);
  }

  /**
   * Pins `keys` for `host`. With `replace`, the host's other pins are dropped first (the keys
   * come from a trusted channel, e.g. read through the backend from a freshly created guest).
   */
  async pin(host: string, keys: HostKey[], options: { replace?: boolean } = {}): Promise<void> {
    validateHostAlias(host);
    await this.#update((lines) => {
      const kept = options.replace ? lines.filter((l) => l.pin?.host !== host) : lines;
      const now = new Date(this.#clock.now()).toISOString();
      const out = [...kept];
      for (const k of keys) {
        if (!TYPE_RE.test(k.type) || !KEY_RE.test(k.key)) throw new Error("invalid host key");
        const same = out.findIndex((l) => l.pin?.host === host && l.pin.type === k.type);
        const pin: HostKeyPin = { host, type: k.type, key: k.key, pinnedAt: now };
        const line = { raw: renderPin(pin), pin };
        if (same >= 0) {
          if (out[same].pin!.key !== k.key) out[same] = line;
        } else out.push(line);
      }
      return out;
    });
  }

  /** Drops every pin of `host`; true when there was one. */
  async forget(host: string): Promise<boolean> {
    let had = false;
    await this.#update((lines) => {
      had = lines.some((l) => l.pin?.host === host);
      return lines.filter((l) => l.pin?.host !== host);
    });
    return had;
  }

  /**
   * Checks the key a sandbox offered. Unknown host: pinned. Same key: known. Different key:
   * replaced when the sandbox's `createdAt` is newer than every pin (it was recreated),
   * otherwise {@link HostKeyMismatchError}.
   */
  async check(
    host: string,
    offered: HostKey,
    context: { createdAt?: string | null } = {},
  ): Promise<HostKeyVerdict> {
    validateHostAlias(host);
    let verdict = "known" as HostKeyVerdict;
    let mismatch = null as HostKeyMismatchError | null;
    const pins = await this.list(host);
    if (judgeHostKey(pins, offered, context.createdAt) === "known") return "known";
    await this.#update(async (lines) => {
      const current = lines.flatMap((l) => l.pin?.host === host ? [l.pin] : []);
      const judged = judgeHostKey(current, offered, context.createdAt);
      if (judged === "known") return lines;
      const now = new Date(this.#clock.now()).toISOString();
      const fresh: Line = {
        raw: "",
        pin: { host, type: offered.type, key: offered.key, pinnedAt: now },
      };
      fresh.raw = renderPin(fresh.pin!);
      if (judged === "new") {
        verdict = "pinned";
        return [...lines, fresh];
      }
      if (judged === "recreated") {
        verdict = "replaced";
        return [...lines.filter((l) => l.pin?.host !== host), fresh];
      }
      const old = current.find((p) => p.type === offered.type) ?? current[0];
      mismatch = new HostKeyMismatchError(host, {
        pinned: `${old.type} ${await fingerprint(old)}`,
        pinnedAt: old.pinnedAt,
        offered: `${offered.type} ${await fingerprint(offered)}`,
      });
      return lines;
    });
    if (mismatch) throw mismatch;
    if (verdict === "pinned") log.debug(`pinned the SSH host key of ${host}`);
    if (verdict === "replaced") {
      log.info(`sandbox ${host} was recreated: its new SSH host key replaces the pinned one`);
    }
    return verdict;
  }

  async #read(): Promise<Line[]> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw new RuntimeError("known_hosts", `cannot read ${this.path}: ${errorMessage(error)}`);
    }
    const lines = text.split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    return lines.map(parseLine);
  }

  async #update(change: (lines: Line[]) => Line[] | Promise<Line[]>): Promise<void> {
    await withFileLock(this.#lockPath, async () => {
      const before = await this.#read();
      const after = await change(before);
      const render = (lines: Line[]) =>
        lines.map((l) => l.raw).join("\n") + (lines.length ? "\n" : "");
      const text = render(after);
      if (text === render(before)) return;
      const dir = this.path.slice(0, this.path.lastIndexOf("/")) || "/";
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      const temp = `${this.path}.tmp-${Deno.pid}-${Math.random().toString(16).slice(2, 10)}`;
      try {
        await Deno.writeTextFile(temp, text, { mode: 0o600 });
        await Deno.rename(temp, this.path);
      } catch (error) {
        await Deno.remove(temp).catch(() => {});
        throw new RuntimeError("known_hosts", `cannot write ${this.path}: ${errorMessage(error)}`);
      }
    });
  }
}
