/**
 * `tachikoma network show [name]`, `set <name> <mode>`, `allow <name> <host>`,
 * `deny <name> <host>`, `log [name] [-f]`: a sandbox's egress policy and its egress log. See
 * `src/core/network.ts`.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import {
  allowHost,
  denyHost,
  type NetworkChange,
  networkLog,
  type NetworkView,
  setNetworkMode,
  showNetwork,
} from "../core/network.ts";
import type { EgressLogEntry } from "../proxy/egress_log.ts";

function enforcement(view: NetworkView): string {
  const e = view.engine;
  const engine = e.mechanism === null
    ? `the ${view.backend} engine enforces nothing`
    : e.error
    ? `${e.mechanism}: not applied (${e.error})`
    : e.restricted
    ? `${e.mechanism}: the guest reaches only the proxy`
    : `${e.mechanism}: open`;
  const proxy = view.proxy.enforced ? "proxy: every proxied request" : "proxy: not used";
  return `${proxy}; ${engine}`;
}

function describe(view: NetworkView): string {
  const allow = view.allow.length ? view.allow.join(", ") : "(none)";
  return [
    `${view.name}: egress ${view.mode}${view.source === "config" ? " (from the config)" : ""}`,
    `allow: ${allow}`,
    `enforced by: ${enforcement(view)}`,
  ].join("\n");
}

function changed(result: NetworkChange, what: string): string {
  return `${result.changed ? what : "unchanged"}\n${describe(result)}`;
}

/** `network show [name]`. */
export async function show(ctx: CommandContext, opts: { name?: string }): Promise<void> {
  const result = await showNetwork(await ctx.app.service(), opts);
  ctx.out.result(result, () => describe(result));
}

/** `network set <name> <mode>`. */
export async function set(
  ctx: CommandContext,
  opts: { name: string; mode: string },
): Promise<void> {
  const result = await setNetworkMode(await ctx.app.service(), opts);
  ctx.out.result(result, () => changed(result, `egress mode set to ${result.mode}`));
}

/** `network allow <name> <host>`. */
export async function allow(
  ctx: CommandContext,
  opts: { name: string; host: string },
): Promise<void> {
  const result = await allowHost(await ctx.app.service(), opts);
  ctx.out.result(result, () => changed(result, `allowed ${opts.host}`));
}

/** `network deny <name> <host>`. */
export async function deny(
  ctx: CommandContext,
  opts: { name: string; host: string },
): Promise<void> {
  const result = await denyHost(await ctx.app.service(), opts);
  ctx.out.result(result, () => changed(result, `removed ${opts.host}`));
}

function line(e: EgressLogEntry): string {
  const target = e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
  return `${e.time}  ${e.verdict.padEnd(7)}  ${e.method} ${target}${
    e.reason ? `  (${e.reason})` : ""
  }`;
}

/** `network log [name] [-f]`: JSON lines in `--json -f`. */
export async function log(
  ctx: CommandContext,
  opts: { name?: string; follow: boolean },
): Promise<void> {
  const service = await ctx.app.service();
  if (!opts.follow) {
    const result = await networkLog(service, opts);
    ctx.out.result(
      result,
      () =>
        result.entries.length === 0
          ? `No egress through the proxy recorded for ${result.name}.`
          : result.entries.map(line).join("\n"),
    );
    return;
  }
  await networkLog(service, {
    ...opts,
    signal: ctx.signal,
    onEntries: (entries) => {
      for (const e of entries) ctx.out.raw((ctx.out.json ? JSON.stringify(e) : line(e)) + "\n");
    },
  });
}
