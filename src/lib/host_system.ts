/**
 * The host as `tachikoma setup` and `doctor` see it: who runs the command (and who invoked it
 * through sudo), group membership, the distribution, services, and Debian's package manager.
 * Every action goes through a {@link CommandRunner}; the decision logic above it is tested with
 * doubles of these interfaces, the adapters against the lab host in read-only mode.
 *
 * @module
 */
import { type CommandRunner, defaultRunner } from "./process.ts";
import { RuntimeError } from "./errors.ts";

/** `/etc/os-release`, the fields setup uses. */
export interface OsRelease {
  id: string;
  idLike: string[];
  prettyName: string;
  versionCodename: string;
}

/** Users, groups, services and the distribution. */
export interface HostSystem {
  /** True when the process runs as root (uid 0). */
  isRoot(): boolean;
  /** The user who ran the command: `SUDO_USER` under sudo, else the process's own user. */
  invokingUser(): Promise<string>;
  /** The user's groups as the system's group database lists them. */
  groupsOf(user: string): Promise<string[]>;
  /** The groups this process has now (a group added since login is not among them). */
  processGroups(): Promise<string[]>;
  /** Adds `user` to `group` (root only). */
  addToGroup(user: string, group: string): Promise<void>;
  /** `/etc/os-release`; null when it cannot be read. */
  osRelease(): Promise<OsRelease | null>;
  /** True when `name` is a program on PATH (or in /usr/sbin, /sbin). */
  hasCommand(name: string): Promise<boolean>;
  /** Starts a systemd unit (root only). */
  startService(unit: string): Promise<void>;
}

/** Debian's package manager: what is installed, what apt can install, installing. */
export interface PackageManager {
  /** The installed version of `pkg`, or null when it is not installed. */
  installedVersion(pkg: string): Promise<string | null>;
  /** `apt-get update` (root only). */
  refresh(): Promise<void>;
  /** The version apt would install, or null when no source has the package. */
  candidate(pkg: string): Promise<string | null>;
  /** `apt-get install -y` (root only). */
  install(pkgs: string[]): Promise<void>;
}

/** Parses `/etc/os-release`. */
export function parseOsRelease(text: string): OsRelease {
  const values: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) values[m[1]] = m[2].replace(/^"(.*)"$/, "$1").replace(/^'(.*)'$/, "$1");
  }
  return {
    id: values.ID ?? "",
    idLike: (values.ID_LIKE ?? "").split(/\s+/).filter((s) => s !== ""),
    prettyName: values.PRETTY_NAME ?? values.NAME ?? "unknown Linux",
    versionCodename: values.VERSION_CODENAME ?? "",
  };
}

/** True for Debian, Ubuntu and their derivatives. */
export function isDebianLike(os: OsRelease): boolean {
  return [os.id, ...os.idLike].some((id) => id === "debian" || id === "ubuntu");
}

const SBIN = "/usr/local/sbin:/usr/sbin:/sbin";

/** Runs `[cmd, ...args]`; its stdout, or an error naming the command and its last stderr line. */
async function must(
  runner: CommandRunner,
  [cmd, ...args]: string[],
  env?: Record<string, string>,
) {
  const r = await runner.run(cmd, args, { env, timeoutMs: 30 * 60_000 });
  if (r.code !== 0) {
    const why = r.stderr.trim().split("\n").filter((l) => l !== "").at(-1) ?? `exit ${r.code}`;
    throw new RuntimeError("host", `${cmd} ${args.join(" ")} failed: ${why}`);
  }
  return r.stdout;
}

/** The real host, through `runner`. */
export class RealHostSystem implements HostSystem {
  constructor(private readonly runner: CommandRunner = defaultRunner) {}

  isRoot(): boolean {
    return Deno.uid() === 0;
  }

  async invokingUser(): Promise<string> {
    const sudoUser = Deno.env.get("SUDO_USER");
    if (this.isRoot() && sudoUser && /^[a-z_][a-z0-9_.-]*\$?$/i.test(sudoUser)) return sudoUser;
    return (await must(this.runner, ["id", "-un"])).trim();
  }

  async groupsOf(user: string): Promise<string[]> {
    const r = await this.runner.run("id", ["-nG", "--", user]);
    return r.code === 0 ? r.stdout.trim().split(/\s+/).filter((g) => g !== "") : [];
  }

  async processGroups(): Promise<string[]> {
    return (await must(this.runner, ["id", "-nG"])).trim().split(/\s+/).filter((g) => g !== "");
  }

  async addToGroup(user: string, group: string): Promise<void> {
    await must(this.runner, ["usermod", "-aG", group, "--", user], { PATH: pathWithSbin() });
  }

  async osRelease(): Promise<OsRelease | null> {
    try {
      return parseOsRelease(await Deno.readTextFile("/etc/os-release"));
    } catch {
      return null;
    }
  }

  async hasCommand(name: string): Promise<boolean> {
    for (const dir of pathWithSbin().split(":")) {
      try {
        const info = await Deno.stat(`${dir}/${name}`);
        if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return true;
      } catch {
        // not here
      }
    }
    return false;
  }

  async startService(unit: string): Promise<void> {
    await must(this.runner, ["systemctl", "start", "--", unit]);
  }
}

function pathWithSbin(): string {
  return `${Deno.env.get("PATH") ?? "/usr/bin:/bin"}:${SBIN}`;
}

/** apt and dpkg, through `runner`. */
export class AptPackages implements PackageManager {
  constructor(private readonly runner: CommandRunner = defaultRunner) {}

  async installedVersion(pkg: string): Promise<string | null> {
    const r = await this.runner.run("dpkg-query", ["-W", "-f=${Status}\t${Version}", "--", pkg]);
    if (r.code !== 0) return null;
    const [status, version] = r.stdout.split("\t");
    return /\binstall ok installed\b/.test(status) && version ? version.trim() : null;
  }

  async refresh(): Promise<void> {
    await must(this.runner, ["apt-get", "-q", "update"], APT_ENV);
  }

  async candidate(pkg: string): Promise<string | null> {
    const r = await this.runner.run("apt-cache", ["policy", "--", pkg], { env: { LC_ALL: "C" } });
    const m = /^\s*Candidate:\s*(\S+)/m.exec(r.stdout);
    return m && m[1] !== "(none)" ? m[1] : null;
  }

  async install(pkgs: string[]): Promise<void> {
    await must(this.runner, ["apt-get", "-q", "-y", "install", "--", ...pkgs], APT_ENV);
  }
}

const APT_ENV = { DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" };
