/**
 * `tachikoma doctor`'s TrueNAS checks: the server is reachable over TLS (verified unless
 * `insecure_skip_verify`), accepts the API key, runs a supported version, has a virtualization
 * pool, and has a network for instances (the NIC tachikoma would pick). Each check is
 * independent of the output of later ones; after a failed connection the rest are not run.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { errorMessage, TachikomaError } from "../lib/errors.ts";
import type { CheckResult } from "./check.ts";
import { type OpenTruenasOptions, truenasClient } from "../backends/truenas/mod.ts";
import { pickNic } from "../backends/truenas/nic.ts";

function failed(name: string, error: unknown, hint?: string): CheckResult {
  const typed = error instanceof TachikomaError ? error.hint : undefined;
  return { name, ok: false, message: errorMessage(error), hint: typed ?? hint, required: true };
}

/** Runs the TrueNAS checks for `config` (`options`: tests point at a fake server). */
export async function truenasChecks(
  config: Config,
  options: OpenTruenasOptions = {},
): Promise<CheckResult[]> {
  let client;
  try {
    client = truenasClient(config, { retries: 0, ...options });
  } catch (error) {
    return [failed("truenas config", error)];
  }
  const t = config.truenas;
  const scheme = options.scheme ?? "wss";
  const tls = scheme === "ws"
    ? "no TLS (test server)"
    : t.insecure_skip_verify
    ? "TLS NOT verified (insecure_skip_verify)"
    : "TLS verified";
  const results: CheckResult[] = [];
  try {
    try {
      await client.connect();
    } catch (error) {
      const code = error instanceof TachikomaError ? error.code : "";
      if (code === "truenas_auth") {
        results.push({ name: "truenas api", ok: true, message: `${client.host} answers (${tls})` });
        results.push(failed("truenas auth", error));
      } else if (code === "unsupported" || code === "truenas_version") {
        results.push({ name: "truenas api", ok: true, message: `${client.host} answers (${tls})` });
        results.push({
          name: "truenas auth",
          ok: true,
          message: `API key of ${t.username} accepted`,
        });
        results.push(failed("truenas version", error));
      } else {
        results.push(failed("truenas api", error, `is ${client.host} a TrueNAS SCALE server?`));
      }
      return results;
    }
    results.push({ name: "truenas api", ok: true, message: `${client.host} answers (${tls})` });
    results.push({ name: "truenas auth", ok: true, message: `API key of ${t.username} accepted` });
    results.push({
      name: "truenas version",
      ok: true,
      message: `${client.version!.text} (snapshots: ${
        client.snapshotMethod("create").split(".")[0]
      }.snapshot.*)`,
    });
    try {
      const g = await client.call<{ pool?: string | null; dataset?: string | null }>(
        "virt.global.config",
      );
      results.push(
        g?.pool && g.dataset
          ? { name: "truenas pool", ok: true, message: `pool ${g.pool}, dataset ${g.dataset}` }
          : {
            name: "truenas pool",
            ok: false,
            message: "no pool is set for virtualization",
            hint: "choose a pool under Virtualization → Global Settings in the TrueNAS UI",
            required: true,
          },
      );
    } catch (error) {
      results.push(failed("truenas pool", error));
    }
    try {
      const interfaces = await client.call<unknown>("interface.query");
      const summary = await client.call<{ default_routes?: unknown }>("network.general.summary");
      const nic = pickNic(interfaces, summary?.default_routes);
      results.push(
        nic
          ? {
            name: "truenas network",
            ok: true,
            message: `instances get a MACVLAN NIC on ${nic.parent}`,
          }
          : {
            name: "truenas network",
            ok: false,
            message:
              "no physical interface with IPv4 is up: instances get the server's default NIC",
            required: false,
          },
      );
    } catch (error) {
      results.push({ ...failed("truenas network", error), required: false });
    }
    return results;
  } finally {
    await client.close();
  }
}
