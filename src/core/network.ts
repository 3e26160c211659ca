/**
 * A sandbox's egress policy: show, set the mode, allow or deny a host, read its egress log.
 *
 * The policy is the sandbox's own, kept in its state record (`egress`: mode and allow list);
 * a record without one (made before policies were per sandbox) shows and starts from the
 * configuration (`egress`, `egress_allow`). It is enforced twice, on the host:
 * - by the proxy, per request, from the state file (a change applies to the next request);
 * - by the engine, where it can (`capabilities.egress`: host nftables on the Incus NIC, Softnet
 *   on tart), so that in a restricted mode the guest reaches the proxy and nothing else. A
 *   running sandbox gets the change at once; a stopped one when it starts.
 *
 * Bad input (an unknown mode, a malformed entry) is refused before anything changes.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { EgressRecord, SandboxRecord } from "../state/schema.ts";
import { withSandboxLock } from "../state/lock.ts";
import { ConfigError, UsageError } from "../lib/errors.ts";
import type { Clock } from "../lib/clock.ts";
import { patchRecord } from "./lifecycle.ts";
import {
  applyEnginePolicy,
  configPolicy,
  type EngineEnforcement,
  engineView,
} from "./egress_apply.ts";

export { applyEnginePolicy, configPolicy, type EngineEnforcement } from "./egress_apply.ts";
import type { SandboxService } from "./sandbox_service.ts";
import {
  EGRESS_MODES,
  type EgressMode,
  isEgressMode,
  isRestricted,
  normalizeAllowEntry,
} from "../proxy/egress.ts";
import { type EgressLogEntry, readEgressLog } from "../proxy/egress_log.ts";

/** `network show` (and the result of set/allow/deny). */
export interface NetworkView {
  name: string;
  backend: string;
  mode: EgressMode;
  allow: string[];
  /** `sandbox`: its own policy; `config`: none recorded yet, the configuration's. */
  source: "sandbox" | "config";
  /** The proxy enforces the policy on every proxied request. */
  proxy: { enforced: boolean };
  engine: EngineEnforcement;
}

/** Result of set/allow/deny. */
export interface NetworkChange extends NetworkView {
  /** False when the policy already was so. */
  changed: boolean;
}

/** Checks a mode name; UsageError naming it otherwise. */
export function parseMode(text: string): EgressMode {
  if (!isEgressMode(text)) {
    throw new UsageError(
      `unknown egress mode ${JSON.stringify(text)}: use one of ${EGRESS_MODES.join(", ")}`,
    );
  }
  return text;
}

function parseEntry(entry: string): string {
  try {
    return normalizeAllowEntry(entry);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new UsageError(
        `invalid host ${JSON.stringify(entry)}: use host, *.host, .host, an IP or a CIDR, ` +
          "optionally with :port",
      );
    }
    throw error;
  }
}

function policyOf(record: SandboxRecord, config: Config): {
  policy: EgressRecord;
  source: "sandbox" | "config";
} {
  if (record.egress) return { policy: record.egress, source: "sandbox" };
  return { policy: configPolicy(config), source: "config" };
}

function usesProxy(config: Config, policy: EgressRecord): boolean {
  return config.credential_proxy || isRestricted(policy.mode);
}

/** `network show [name]`. */
export async function showNetwork(
  service: SandboxService,
  options: { name?: string } = {},
): Promise<NetworkView> {
  const record = await service.resolve(options.name);
  const backend = await service.backend();
  const { policy, source } = policyOf(record, service.deps.config);
  return {
    name: record.name,
    backend: backend.name,
    mode: policy.mode,
    allow: [...policy.allow],
    source,
    proxy: { enforced: usesProxy(service.deps.config, policy) },
    engine: await engineView(backend, record.name),
  };
}

async function change(
  service: SandboxService,
  name: string,
  edit: (policy: EgressRecord) => EgressRecord,
): Promise<NetworkChange> {
  const resolved = await service.resolve(name);
  const { deps } = service;
  const lock = { dir: deps.stateDir, name: resolved.name, signal: deps.signal, clock: deps.clock };
  return await withSandboxLock(lock, async () => {
    const backend = await service.backend();
    let before: EgressRecord | null = null;
    let after: EgressRecord | null = null;
    const updated = await patchRecord(deps.store, resolved.name, (r) => {
      before = policyOf(r, deps.config).policy;
      after = edit(before);
      r.egress = after;
    });
    if (!updated || !after || !before) {
      return await Promise.reject(
        new UsageError(`sandbox ${resolved.name} was destroyed meanwhile`),
      );
    }
    const next: EgressRecord = after;
    const prev: EgressRecord = before;
    const engine = await applyEnginePolicy(deps, backend, { name: resolved.name, policy: next });
    return {
      name: resolved.name,
      backend: backend.name,
      mode: next.mode,
      allow: [...next.allow],
      source: "sandbox" as const,
      proxy: { enforced: usesProxy(deps.config, next) },
      engine,
      changed: JSON.stringify(prev) !== JSON.stringify(next),
    };
  });
}

/** `network set <name> <mode>`. */
export async function setNetworkMode(
  service: SandboxService,
  options: { name: string; mode: string },
): Promise<NetworkChange> {
  const mode = parseMode(options.mode);
  return await change(service, options.name, (p) => ({ mode, allow: [...p.allow] }));
}

/** `network allow <name> <host>`: adds an entry to the allow list. */
export async function allowHost(
  service: SandboxService,
  options: { name: string; host: string },
): Promise<NetworkChange> {
  const entry = parseEntry(options.host);
  return await change(service, options.name, (p) => ({
    mode: p.mode,
    allow: p.allow.includes(entry) ? [...p.allow] : [...p.allow, entry],
  }));
}

/** `network deny <name> <host>`: removes an entry from the allow list. */
export async function denyHost(
  service: SandboxService,
  options: { name: string; host: string },
): Promise<NetworkChange> {
  const entry = parseEntry(options.host);
  return await change(service, options.name, (p) => ({
    mode: p.mode,
    allow: p.allow.filter((a) => a !== entry),
  }));
}

/** Result of {@link networkLog}. */
export interface NetworkLog {
  name: string;
  entries: EgressLogEntry[];
}

/** How often `network log -f` looks for new lines. */
export const FOLLOW_INTERVAL_MS = 250;

/**
 * `network log [name] [-f]`: the sandbox's egress decisions, oldest first. With `follow`,
 * `onEntries` gets the lines so far and then every new batch until `signal` aborts.
 */
export async function networkLog(
  service: SandboxService,
  options: {
    name?: string;
    follow?: boolean;
    onEntries?: (entries: EgressLogEntry[]) => void;
    signal?: AbortSignal;
    /** Paces the follow loop (default: the service's clock). */
    clock?: Clock;
  } = {},
): Promise<NetworkLog> {
  const record = await service.resolve(options.name);
  const { stateDir } = service.deps;
  const clock = options.clock ?? service.deps.clock;
  const first = await readEgressLog(stateDir, record.name);
  if (!options.follow) return { name: record.name, entries: first.entries };
  const emit = options.onEntries ?? (() => {});
  emit(first.entries);
  let offset = first.offset;
  const signal = options.signal ?? service.deps.signal;
  while (!signal?.aborted) {
    try {
      await clock.sleep(FOLLOW_INTERVAL_MS, signal);
    } catch {
      break;
    }
    const next = await readEgressLog(stateDir, record.name, offset);
    offset = next.offset;
    if (next.entries.length > 0) emit(next.entries);
  }
  return { name: record.name, entries: [] };
}
