/**
 * The built-in engines. Each entry imports its engine's module only when that engine is
 * opened, so a command that never opens a backend loads none of them.
 *
 * @module
 */
import type { Engine } from "./registry.ts";

/** Incus: local socket or remote HTTPS. */
export const incusEngine: Engine = {
  name: "incus",
  open: async (config, context) =>
    await (await import("./incus/mod.ts")).openIncus(config, context),
  preload: () => import("./incus/mod.ts"),
};

/** tart: Linux VMs on Apple Silicon. */
export const tartEngine: Engine = {
  name: "tart",
  open: async (config, context) => await (await import("./tart/mod.ts")).openTart(config, context),
  preload: () => import("./tart/mod.ts"),
};

/** TrueNAS SCALE: Incus containers through the TrueNAS middleware API. */
export const truenasEngine: Engine = {
  name: "truenas",
  open: async (config, context) =>
    await (await import("./truenas/mod.ts")).openTruenas(config, context),
  preload: () => import("./truenas/mod.ts"),
};

/** Every built-in engine. */
export const BUILTIN_ENGINES: readonly Engine[] = [incusEngine, tartEngine, truenasEngine];
