/**
 * `tachikoma setup [--yes]`: makes this Debian/Ubuntu host ready for the Incus engine — the
 * `incus` package (asked first), the daemon, a storage pool, a bridge with an explicit subnet,
 * the default profile, the invoking user's access to the socket, the default image — changing
 * nothing that is already set up (src/core/setup.ts). The report lists each step as `done`,
 * `already` or `skipped`.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { NeedsRootError, runSetup, type SetupReport } from "../core/setup.ts";
import { selfCommand } from "../proxy/runtime_files.ts";
import { imageFor } from "../core/lifecycle.ts";
import { incusSettings } from "../backends/incus/settings.ts";
import { SocketIncusAdmin } from "../backends/incus/host_admin.ts";
import { AptPackages, RealHostSystem } from "../lib/host_system.ts";
import { procRoutes } from "../lib/routes.ts";
import { systemClock } from "../lib/clock.ts";
import { canPrompt, confirm } from "../lib/prompt.ts";
import { UnsupportedError } from "../lib/errors.ts";
import type { Backend } from "../backends/backend.ts";

/** The `--json` document of setup (see docs/json.md). */
export function setupDocument(report: SetupReport): Record<string, unknown> {
  return {
    steps: report.steps,
    changed: report.changed,
    completed: report.completed,
    notes: report.notes,
  };
}

/** Human text of a report. */
export function setupText(report: SetupReport): string {
  const width = Math.max(...report.steps.map((s) => s.step.length));
  const lines = report.steps.map((s) =>
    `${s.step.padEnd(width)}  ${s.status.padEnd(7)}  ${s.detail}`
  );
  lines.push(
    report.completed
      ? report.changed ? "Incus is set up." : "Incus was already set up: nothing changed."
      : "Setup stopped: Incus is not installed.",
  );
  return [...lines, ...report.notes].join("\n");
}

/**
 * The command line that runs this setup again as root through sudo, reading the same
 * configuration directory (setup writes nothing there): `sudo -- env TACHIKOMA_CONFIG_DIR=…
 * <tachikoma> setup [--yes]`. `SUDO_USER` then names the user to give access to.
 */
export function sudoCommand(configDir: string, yes: boolean): { cmd: string; args: string[] } {
  const self = selfCommand(["setup", ...(yes ? ["--yes"] : [])]);
  return {
    cmd: "sudo",
    args: ["--", "env", `TACHIKOMA_CONFIG_DIR=${configDir}`, self.cmd, ...self.args],
  };
}

/** Runs setup; a non-root run on a terminal that has a change to make runs again with sudo. */
export async function run(ctx: CommandContext, opts: { yes: boolean }): Promise<void> {
  try {
    await setup(ctx, opts);
  } catch (error) {
    if (!(error instanceof NeedsRootError) || ctx.globals.json || !canPrompt()) throw error;
    ctx.progress.note(`${error.message}: running it again with sudo`);
    const { files } = await ctx.config();
    const sudo = sudoCommand(files.dir, opts.yes);
    let status: Deno.CommandStatus;
    try {
      status = await new Deno.Command(sudo.cmd, {
        args: sudo.args,
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn().status;
    } catch {
      throw error; // no sudo here: the original line and its hint
    }
    Deno.exitCode = status.code;
  }
}

async function setup(ctx: CommandContext, opts: { yes: boolean }): Promise<void> {
  if (Deno.build.os !== "linux") {
    throw new UnsupportedError("tachikoma setup prepares Incus on Linux (Debian and Ubuntu)", {
      hint: "on macOS the tart engine needs no setup: brew install cirruslabs/cli/tart",
    });
  }
  const { config: loaded } = await ctx.config();
  const config = { ...loaded, backend: "incus" as const };
  const settings = incusSettings(config);
  if (settings.endpoint.remote) {
    throw new UnsupportedError(
      `[incus] remote is set (${settings.endpoint.remote}): tachikoma setup prepares a local Incus`,
      { hint: "set the remote server up on that machine, or unset [incus] remote" },
    );
  }
  const incus = new SocketIncusAdmin(settings.endpoint.socket);
  let backend: Backend | null = null;
  const images = async () => {
    backend ??= await ctx.app.openBackend(config);
    if (!backend.images) throw new UnsupportedError("the incus engine has no image store");
    return backend.images;
  };
  const interactive = !ctx.globals.json && canPrompt();
  try {
    const report = await runSetup({
      host: new RealHostSystem(),
      packages: new AptPackages(),
      incus,
      routes: procRoutes,
      clock: systemClock,
      confirm: interactive ? (question) => confirm(question) : null,
      note: (text) => ctx.progress.note(text),
      images: {
        isLocal: async (ref) => (await (await images()).local(ref)) !== null,
        pull: async (ref) => {
          const step = ctx.progress.step(`pulling image ${ref}`);
          try {
            const image = await (await images()).pull(ref, {
              signal: ctx.signal,
              onProgress: (text) => step.progress?.(text),
            });
            step.done(image.fingerprint.slice(0, 12));
          } catch (error) {
            step.fail(error instanceof Error ? error.message : String(error));
            throw error;
          }
        },
      },
    }, {
      yes: opts.yes,
      image: imageFor(config, "incus"),
      storagePool: settings.storagePool,
      network: settings.network,
    });
    ctx.out.result(setupDocument(report), () => setupText(report));
    if (!report.completed) Deno.exitCode = 1;
  } finally {
    incus.close();
    await (backend as Backend | null)?.close();
  }
}
