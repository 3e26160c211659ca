/**
 * `tachikoma doctor`'s checks: tools on the host, the selected backend, the config, the state
 * file, the SSH key and the credential proxy. Each check is independent and never throws.
 *
 * @module
 */
import type { CommandRunner } from "../lib/process.ts";
import type { Config } from "../config/schema.ts";
import { paths } from "../config/paths.ts";
import { errorMessage } from "../lib/errors.ts";
import type { CheckResult } from "./check.ts";
import { proxyCheck, type ProxyCheckDeps } from "./proxy.ts";

export type { CheckResult } from "./check.ts";

/** What the checks need. */
export interface DoctorDeps {
  runner: CommandRunner;
  /** Null when the config itself failed to load (that failure is reported as a check). */
  config: Config | null;
  configError?: string;
  stateDir: string;
  home: string;
  os: typeof Deno.build.os;
  arch: typeof Deno.build.arch;
  /** Lookups of the proxy check (tests). */
  proxy?: ProxyCheckDeps;
}

/** A tool on the host, checked by running it with `args` (its version, usually). */
interface ToolProbe {
  /** The check's name. */
  name: string;
  cmd: string;
  args: string[];
  required: boolean;
  hint: string;
  /** The version is printed on stderr (`ssh -V`). */
  useStderr?: boolean;
}

async function tool(deps: DoctorDeps, options: ToolProbe): Promise<CheckResult> {
  const { name, cmd, args } = options;
  try {
    const r = await deps.runner.run(cmd, args, { timeoutMs: 10_000 });
    const text = (options.useStderr ? r.stderr : r.stdout).trim().split("\n")[0] ||
      r.stderr.trim().split("\n")[0];
    if (r.code === 0) {
      return { name, ok: true, message: text || "found", required: options.required };
    }
    return {
      name,
      ok: false,
      message: `'${cmd}' exited ${r.code}: ${r.stderr.trim().split("\n")[0] ?? ""}`,
      hint: options.hint,
      required: options.required,
    };
  } catch (error) {
    return {
      name,
      ok: false,
      message: errorMessage(error),
      hint: options.hint,
      required: options.required,
    };
  }
}

/**
 * ssh-keygen makes tachikoma's key: the check makes a throwaway one the same way (ed25519, no
 * passphrase) and fails unless it exits 0 and the key is there.
 */
async function keygenCheck(deps: DoctorDeps): Promise<CheckResult> {
  const name = "ssh-keygen";
  const hint = "install OpenSSH (ssh-keygen makes tachikoma's key)";
  let dir: string | null = null;
  try {
    dir = await Deno.makeTempDir({ prefix: "tachikoma-doctor-" });
    const key = `${dir}/key`;
    const r = await deps.runner.run(
      "ssh-keygen",
      ["-q", "-t", "ed25519", "-N", "", "-C", "tachikoma-doctor", "-f", key],
      { timeoutMs: 10_000 },
    );
    if (r.code !== 0) {
      const why = r.stderr.trim().split("\n")[0] || "no output";
      return {
        name,
        ok: false,
        message: `ssh-keygen exited ${r.code}: ${why}`,
        hint,
        required: true,
      };
    }
    const pub = await Deno.readTextFile(`${key}.pub`).catch(() => "");
    await Deno.stat(key);
    if (!pub.startsWith("ssh-ed25519 ")) {
      return {
        name,
        ok: false,
        message: "ssh-keygen exited 0 but wrote no ed25519 key",
        hint,
        required: true,
      };
    }
    return { name, ok: true, message: "makes ed25519 keys", required: true };
  } catch (error) {
    return { name, ok: false, message: errorMessage(error), hint, required: true };
  } finally {
    if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function fileCheck(name: string, path: string, hint: string): Promise<CheckResult> {
  try {
    const info = await Deno.stat(path);
    const mode = info.mode === null ? "" : ` (mode ${(info.mode & 0o777).toString(8)})`;
    const tooOpen = info.mode !== null && (info.mode & 0o077) !== 0;
    return tooOpen
      ? {
        name,
        ok: false,
        message: `${path} is readable by others${mode}`,
        hint: `chmod 600 ${path}`,
      }
      : { name, ok: true, message: `${path}${mode}` };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { name, ok: true, message: `${path} not created yet`, hint };
    }
    return { name, ok: false, message: `${path}: ${errorMessage(error)}`, hint };
  }
}

async function stateCheck(stateDir: string): Promise<CheckResult> {
  const file = paths(stateDir).state;
  try {
    const text = await Deno.readTextFile(file);
    const parsed = JSON.parse(text) as { vms?: unknown[] };
    const n = Array.isArray(parsed.vms) ? parsed.vms.length : 0;
    return { name: "state", ok: true, message: `${file} (${n} sandbox${n === 1 ? "" : "es"})` };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { name: "state", ok: true, message: `${file} (no sandboxes yet)` };
    }
    return {
      name: "state",
      ok: false,
      message: `${file}: ${errorMessage(error)}`,
      hint: "the next command moves a corrupt state file aside and says where",
      required: true,
    };
  }
}

/** Runs every check for the selected backend. */
export async function runChecks(deps: DoctorDeps): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  results.push(
    deps.config
      ? {
        name: "config",
        ok: true,
        message: `valid (backend ${deps.config.backend})`,
        required: true,
      }
      : {
        name: "config",
        ok: false,
        message: deps.configError ?? "invalid",
        hint: "tachikoma config path",
        required: true,
      },
  );
  const [git, keygen, ssh] = await Promise.all([
    tool(deps, {
      name: "git",
      cmd: "git",
      args: ["--version"],
      required: true,
      hint: "install git",
    }),
    keygenCheck(deps),
    tool(deps, {
      name: "ssh",
      cmd: "ssh",
      args: ["-V"],
      required: false,
      hint: 'only needed for ssh_command = "system" and `ssh <sandbox>`',
      useStderr: true,
    }),
  ]);
  results.push(git, keygen, ssh);
  results.push(await stateCheck(deps.stateDir));
  results.push(
    await fileCheck(
      "ssh key",
      `${deps.home}/.ssh/tachikoma`,
      "created on the first spawn",
    ),
  );
  if (deps.config) results.push(await proxyCheck(deps.config, deps.stateDir, deps.proxy));
  const backend = deps.config?.backend;
  if (backend === "tart") {
    const apple = deps.os === "darwin" && deps.arch === "aarch64";
    results.push({
      name: "platform",
      ok: apple,
      message: `${deps.os}/${deps.arch}`,
      hint: apple ? undefined : "tart needs macOS on Apple Silicon; use --backend incus elsewhere",
      required: true,
    });
    results.push(
      await tool(deps, {
        name: "tart",
        cmd: deps.config?.tart.binary ?? "tart",
        args: ["--version"],
        required: true,
        hint: "brew install cirruslabs/cli/tart",
      }),
    );
  } else if (backend === "incus" && deps.config) {
    try {
      const m = await import("./incus.ts");
      results.push(...await m.incusChecks(deps.config));
    } catch (error) {
      results.push({
        name: "incus",
        ok: false,
        message: errorMessage(error),
        hint: "is incusd running?",
        required: true,
      });
    }
  } else if (backend === "truenas" && deps.config) {
    const m = await import("./truenas.ts");
    results.push(...await m.truenasChecks(deps.config));
  }
  return results;
}
