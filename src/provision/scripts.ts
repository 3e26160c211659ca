/**
 * Step 7, `scripts`: the user's provisioning scripts, in this order: `<configdir>/profiles/*.sh`
 * (sorted), the repo's `.tachikoma/profiles/*.sh` (sorted), then each `provision_scripts` entry
 * (relative paths resolve against the REPO ROOT, not the cwd; `~/` against the home). Each runs
 * as the sandbox user under `bash -euo pipefail` with `~/.profile` sourced first (so it gets the
 * proxy environment and starts in the code dir). A missing script fails the step (tachikoma only
 * warned). Scripts that come from the repository itself — committed `.tachikoma/profiles/` or
 * `provision_scripts` set in the committed `.tachikoma.toml` — are named in a warning first.
 *
 * @module
 */
import { paths } from "../config/paths.ts";
import { errorMessage } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import type { HostContext, StepDef } from "./context.ts";
import { ProvisionError } from "./errors.ts";

/** Where a script comes from. */
export type ScriptOrigin = "global_profile" | "repo_profile" | "config" | "repo_config";

/** One script to run. */
export interface ScriptSpec {
  /** As the user refers to it (the config entry, or the profile file path). */
  label: string;
  origin: ScriptOrigin;
  hostPath: string;
  content: string;
}

/** Inputs of the scripts step. */
export interface ScriptsInputs {
  scripts: ScriptSpec[];
}

const RUN = [
  'set +eu; [ -f "$HOME/.profile" ] && . "$HOME/.profile" >/dev/null 2>&1',
  'exec bash -euo pipefail "$1"',
].join("\n");

async function shFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.name.endsWith(".sh") || e.name === ".sh") continue;
      const info = await Deno.stat(`${dir}/${e.name}`).catch(() => null);
      if (info?.isFile) names.push(e.name);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return names.sort().map((n) => `${dir}/${n}`);
}

/** Resolves a `provision_scripts` entry: `~/x` → home, relative → repo root. */
export function resolveScriptPath(entry: string, repoRoot: string, home: string): string {
  if (entry === "~" || entry.startsWith("~/")) return home + entry.slice(1);
  if (entry.startsWith("/")) return entry;
  return `${repoRoot.replace(/\/+$/, "")}/${entry}`;
}

/** Whether `provision_scripts` comes from the committed repo config (`.tachikoma.toml`). */
async function scriptsFromRepoConfig(host: HostContext): Promise<boolean> {
  const source = host.deps.configSources?.provision_scripts;
  if (source) return source.kind === "repo";
  // No sources from the caller: look at the repo's two files ourselves.
  const { parse } = await import("smol-toml");
  const has = async (file: string) => {
    try {
      return "provision_scripts" in parse(await Deno.readTextFile(`${host.repoRoot}/${file}`));
    } catch {
      return false;
    }
  };
  return !(await has(".tachikoma.local.toml")) && await has(".tachikoma.toml");
}

async function scriptsInputs(host: HostContext): Promise<ScriptsInputs> {
  const specs: { label: string; origin: ScriptOrigin; hostPath: string }[] = [];
  for (const p of await shFiles(paths(host.ctx.stateDir).profiles)) {
    specs.push({ label: p, origin: "global_profile", hostPath: p });
  }
  for (const p of await shFiles(`${host.repoRoot}/.tachikoma/profiles`)) {
    specs.push({ label: p, origin: "repo_profile", hostPath: p });
  }
  const entries = host.ctx.config.provision_scripts;
  if (entries.length > 0) {
    const origin: ScriptOrigin = await scriptsFromRepoConfig(host) ? "repo_config" : "config";
    for (const entry of entries) {
      specs.push({
        label: entry,
        origin,
        hostPath: resolveScriptPath(entry, host.repoRoot, host.deps.home),
      });
    }
  }
  const scripts: ScriptSpec[] = [];
  for (const s of specs) {
    let content: string;
    try {
      content = await Deno.readTextFile(s.hostPath);
    } catch (error) {
      const what = s.origin === "config" || s.origin === "repo_config"
        ? `provision_scripts entry '${s.label}'` +
          (s.label === s.hostPath ? "" : ` (${s.hostPath})`)
        : `profile script ${s.hostPath}`;
      throw new ProvisionError(
        "scripts",
        error instanceof Deno.errors.NotFound
          ? `${what} does not exist (relative entries resolve against the repo root ${host.repoRoot})`
          : `cannot read ${what}: ${errorMessage(error)}`,
      );
    }
    scripts.push({ ...s, content });
  }
  return { scripts };
}

function guestName(index: number, hostPath: string): string {
  const base = hostPath.slice(hostPath.lastIndexOf("/") + 1).replace(/[^A-Za-z0-9._-]/g, "_");
  return `${String(index + 1).padStart(2, "0")}-${base || "script"}`;
}

/** Step 7. */
export const scriptsStep: StepDef<ScriptsInputs> = {
  name: "scripts",
  label: "Running provisioning scripts",
  needsNetwork: true,
  inputs: scriptsInputs,
  async run(host, guest, inputs) {
    if (inputs.scripts.length === 0) return;
    const committed = inputs.scripts.filter((s) =>
      s.origin === "repo_profile" || s.origin === "repo_config"
    );
    if (committed.length > 0) {
      host.warn(
        `running provisioning scripts from the repository's committed files (review them): ${
          committed.map((s) => s.label).join(", ")
        }`,
      );
    }
    const dir = `${await guest.home()}/.cache/tachikoma/provision`;
    for (const [i, s] of inputs.scripts.entries()) {
      const path = `${dir}/${guestName(i, s.hostPath)}`;
      await guest.writeFile(path, s.content, { mode: 0o700 });
      log.debug(`running provisioning script ${s.label} in ${guest.sandbox}`);
      const r = await guest.run(["bash", "-c", RUN, "tachikoma", path]);
      // Removed whether it succeeded or not (tachikoma left a failed one behind).
      await guest.run(["rm", "-f", "--", path]);
      if (r.code !== 0) {
        throw new ProvisionError(
          "scripts",
          `provisioning script ${s.label} exited with ${r.code}`,
          { stderr: r.stderr.trim() ? r.stderr : r.stdout },
        );
      }
    }
  },
};
