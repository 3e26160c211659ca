/**
 * The lifecycle of an Incus instance: create, start (shares and egress applied again), stop,
 * freeze (suspend), delete, and the wait for its address.
 *
 * @module
 */
import type { CreateOptions, StartOptions, StopOptions, WaitOptions } from "../backend.ts";
import {
  ConflictError,
  errorMessage,
  InterruptedError,
  NotFoundError,
  TachikomaError,
  TimeoutError,
  UnsupportedError,
} from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { applyShares } from "./apply_shares.ts";
import { fetchInstance, type IncusContext, setState } from "./context.ts";
import { EGRESS_CONFIG_KEY, parseStoredPolicy } from "./egress.ts";
import { enforceEgress, hostNft } from "./egress_policy.ts";
import { instanceSource } from "./image_store.ts";
import {
  createBody,
  type IncusInstance,
  type IncusInstanceState,
  type IncusLease,
  instancePath,
  ipv4Addresses,
  leasedIpv4,
  mapStatus,
  nicNetworks,
} from "./instances.ts";
import { checkShares } from "./shares.ts";

/** The longest pause between two polls for a sandbox's IPv4 address. */
const ADDRESS_POLL_MAX_MS = 250;

/** Creates the instance (stopped) from `options.image`. */
export async function createInstance(
  ctx: IncusContext,
  name: string,
  options: CreateOptions,
): Promise<void> {
  const image = options.image;
  const source = await instanceSource(ctx.imageOptions(), image);
  const body = createBody({
    name,
    image: options.label ?? image,
    source,
    cpus: options.cpus ?? ctx.settings.cpus,
    memoryMb: options.memoryMb ?? ctx.settings.memoryMb,
    storagePool: ctx.settings.storagePool,
    network: ctx.settings.network,
    diskGb: options.diskGb,
  });
  try {
    await ctx.client.mutate("POST", "/1.0/instances", {
      body,
      subject: `sandbox "${name}"`,
      timeoutMs: ctx.operationTimeoutMs,
    });
  } catch (error) {
    if (
      error instanceof TachikomaError &&
      /image not provided|image.*not found/i.test(error.message)
    ) {
      throw new NotFoundError(`image "${image}" not found in Incus at ${ctx.client.where}`, {
        hint: "import it (incus image import <tarball> --alias <name>) or set [incus] image / " +
          "base_image to an alias or fingerprint listed by `incus image list`",
      });
    }
    throw error;
  }
}

/** Applies the shares, then starts (or thaws) the instance and enforces its stored egress. */
export async function startInstance(
  ctx: IncusContext,
  name: string,
  options: StartOptions,
): Promise<void> {
  checkShares(options.shares);
  const response = await ctx.client.call<IncusInstance>("GET", instancePath(name), {
    subject: `sandbox "${name}"`,
  });
  const instance = response.metadata;
  const state = mapStatus(instance.status);
  await applyShares(
    {
      client: ctx.client,
      hostIds: ctx.hostIds,
      guestIds: ctx.guestIds,
      runner: ctx.runner,
      operationTimeoutMs: ctx.operationTimeoutMs,
    },
    { instance, etag: response.etag },
    options.shares,
  );
  if (state === "running" || state === "starting") return;
  const action = state === "suspended" ? "unfreeze" : "start";
  try {
    await setState(ctx, name, { body: { action } });
  } catch (error) {
    if (error instanceof ConflictError && /already running/i.test(error.message)) return;
    throw error;
  }
  // A restart gives the guest a new veth: its stored egress policy follows at once.
  const stored = parseStoredPolicy(instance.config?.[EGRESS_CONFIG_KEY]);
  if (stored) {
    await enforceEgress(ctx, name, stored).catch((error) => {
      if (!(error instanceof UnsupportedError)) throw error;
      log.warn(`${name}: egress is enforced by the proxy only: ${errorMessage(error)}`);
    });
  }
}

/** Stops the instance: gracefully within the budget, then by force. */
export async function stopInstance(
  ctx: IncusContext,
  name: string,
  options: StopOptions = {},
): Promise<void> {
  const instance = await fetchInstance(ctx, name);
  const state = mapStatus(instance.status);
  if (state === "stopped") return;
  const budget = options.timeoutMs ?? ctx.stopTimeoutMs;
  if (!options.force) {
    try {
      if (state === "suspended") await setState(ctx, name, { body: { action: "unfreeze" } });
      await setState(ctx, name, {
        body: { action: "stop", timeout: Math.max(1, Math.ceil(budget / 1000)), force: false },
        timeoutMs: budget + 15_000,
      });
      return;
    } catch (error) {
      if (alreadyStopped(error)) return;
      if (error instanceof NotFoundError) throw error;
      log.debug(`incus: graceful stop of ${name} failed (${String(error)}); forcing`);
    }
  }
  try {
    await setState(ctx, name, { body: { action: "stop", force: true } });
  } catch (error) {
    if (!alreadyStopped(error)) throw error;
  }
}

/** Freezes a running instance in place. */
export async function suspendInstance(ctx: IncusContext, name: string): Promise<void> {
  const instance = await fetchInstance(ctx, name);
  const state = mapStatus(instance.status);
  if (state === "suspended") return;
  if (state !== "running") {
    throw new ConflictError(
      `sandbox "${name}" is ${state}: only a running sandbox can be suspended`,
    );
  }
  await setState(ctx, name, { body: { action: "freeze" } });
}

/** Stops and deletes the instance and its egress rules; a missing instance is fine. */
export async function deleteInstance(ctx: IncusContext, name: string): Promise<void> {
  // A container whose start just failed can still read as running for a moment: stop it
  // again and retry a few times before giving up.
  for (let attempt = 1;; attempt++) {
    try {
      await setState(ctx, name, { body: { action: "stop", force: true } });
    } catch (error) {
      if (error instanceof NotFoundError) return;
      if (!alreadyStopped(error)) throw error;
    }
    try {
      await ctx.client.mutate("DELETE", instancePath(name), {
        subject: `sandbox "${name}"`,
        timeoutMs: ctx.operationTimeoutMs,
      });
      if (!ctx.settings.endpoint.remote) {
        await hostNft(ctx).unrestrict(name).catch((e) =>
          log.warn(`could not remove the egress rules of ${name}: ${errorMessage(e)}`)
        );
      }
      return;
    } catch (error) {
      if (error instanceof NotFoundError) return;
      const running = error instanceof ConflictError && /is running/i.test(error.message);
      if (!running || attempt >= 3) throw error;
      await ctx.clock.sleep(500 * attempt);
    }
  }
}

/** Between two looks at the network's DHCP leases (a few ms each). */
const LEASE_POLL_MS = 50;
/** Without a new lease, the instance's state is still read this often (a stop shows there). */
const STATE_EVERY_MS = 1000;

/**
 * Waits until the guest has an IPv4 address. The instance's own state (40–100 ms, 200–400 ms
 * under load, and work for the daemon while the guest boots) is the only proof the guest has
 * configured it; on a managed network its DHCP lease (a few ms) tells when to look: the state
 * is read when the NIC's MAC has a lease, and else only every {@link STATE_EVERY_MS}. A lease
 * left from an earlier boot (a restart keeps its MAC) means a state read at every poll, as
 * without leases (unmanaged network, no MAC yet).
 */
export async function waitForAddress(
  ctx: IncusContext,
  name: string,
  options: WaitOptions,
): Promise<string> {
  const { clock, deadline, signal } = options;
  const leased = await leaseWatch(ctx, name);
  let delay = 100;
  let stateAt = -Infinity;
  for (let poll = 1;; poll++) {
    if (signal?.aborted) throw signal.reason ?? new InterruptedError();
    const lease = leased ? await leased() : true;
    if (lease || clock.now() - stateAt >= STATE_EVERY_MS) {
      stateAt = clock.now();
      const state = await ctx.client.get<IncusInstanceState>(`${instancePath(name)}/state`, {
        subject: `sandbox "${name}"`,
        signal,
      });
      const addresses = ipv4Addresses(state);
      if (addresses.length > 0) return addresses[0];
      if (mapStatus(state.status) === "stopped") {
        throw new ConflictError(`sandbox "${name}" is stopped: it will not get an address`, {
          hint: `tachikoma spawn starts it again`,
        });
      }
    }
    const now = clock.now();
    if (now >= deadline) {
      throw new TimeoutError(`sandbox "${name}" has no IPv4 address yet (gave up waiting)`, {
        hint: "check the Incus network (DHCP on the bridge): tachikoma doctor",
      });
    }
    // A local API call: an address seen up to 250 ms late costs more than the polls (DHCP
    // takes seconds; a 1 s cap made spawn wait ~0.5 s past the lease on average).
    if (lease && poll > 10) delay = Math.min(ADDRESS_POLL_MAX_MS, Math.round(delay * 1.5));
    await clock.sleep(Math.min(lease ? delay : LEASE_POLL_MS, deadline - now), signal);
  }
}

/**
 * Whether the instance's first NIC has a DHCP lease now, or null when that cannot be told (no
 * instance document, no MAC, not a managed network: the state alone is polled then).
 */
async function leaseWatch(
  ctx: IncusContext,
  name: string,
): Promise<(() => Promise<boolean>) | null> {
  let nic;
  try {
    nic = nicNetworks(await fetchInstance(ctx, name))[0];
  } catch {
    return null;
  }
  if (!nic) return null;
  let usable = true;
  const path = `/1.0/networks/${encodeURIComponent(nic.network)}/leases`;
  return async () => {
    if (!usable) return true;
    try {
      return leasedIpv4(await ctx.client.get<IncusLease[]>(path), nic.hwaddr).length > 0;
    } catch {
      usable = false;
      return true;
    }
  };
}

function alreadyStopped(error: unknown): boolean {
  return error instanceof ConflictError && /already stopped|not running/i.test(error.message);
}
