/**
 * A "guest" on disk for code-by-git tests: the memory backend with `mountHost: false` whose
 * exec runs the argv as a host process and whose files are real files, with every guest path
 * under `/mnt/` or `/tmp/tachikoma-code-` moved under a private root directory (so the guest's
 * `/mnt/tachikoma/code` is `<root>/mnt/tachikoma/code`). Git in the guest gets its own global
 * config and HOME. A test can tamper with what the guest hands back (`tamper`).
 *
 * @module
 */
import { MemoryBackend, type MemoryBackendOptions } from "../../../src/backends/memory/mod.ts";
import type { ExecRequest, ExecResult, PushedFile } from "../../../src/backends/backend.ts";
import { GUEST_CODE_DIR } from "../../../src/provision/shares.ts";
import { type Harness, harness } from "./helpers.ts";
import { SandboxService } from "../../../src/core/sandbox_service.ts";
import { HostContext } from "../../../src/provision/context.ts";
import { Guest } from "../../../src/provision/guest.ts";
import { codeStep } from "../../../src/provision/code.ts";
import { defaultRunner } from "../../../src/lib/process.ts";
import { log } from "../../../src/lib/log.ts";

/** What a test may change in a guest command's result (after it ran). */
export type Tamper = (
  request: ExecRequest,
  result: ExecResult,
  map: (path: string) => string,
) => ExecResult | Promise<ExecResult>;

/** The disk guest. */
export class DiskGuest extends MemoryBackend {
  /** Everything of the guest lives under here. */
  readonly root: string;
  /** The guest user's HOME (its git global config is there). */
  readonly home: string;
  tamper: Tamper | null = null;

  constructor(root: string, options: MemoryBackendOptions = {}) {
    const self: { guest?: DiskGuest } = {};
    super({
      ...options,
      capabilities: { execOverSsh: false, mountHost: false, files: true, ...options.capabilities },
      exec: (_name, request) => self.guest!.#run(request),
    });
    self.guest = this;
    this.root = root;
    this.home = `${root}/home/user`;
    Deno.mkdirSync(this.home, { recursive: true });
    Deno.writeTextFileSync(
      `${this.home}/.gitconfig`,
      "[user]\n\tname = Guest User\n\temail = guest@example.invalid\n" +
        "[init]\n\tdefaultBranch = main\n",
    );
  }

  /** A guest path as a host path. */
  map(path: string): string {
    return path.startsWith("/mnt/") || path.startsWith("/tmp/tachikoma-code-")
      ? `${this.root}${path}`
      : path;
  }

  /** The guest's code dir on disk. */
  get codeDir(): string {
    return this.map(GUEST_CODE_DIR);
  }

  async #run(request: ExecRequest): Promise<ExecResult> {
    const [cmd, ...args] = request.argv.map((a) => this.map(a));
    const cwd = request.cwd && this.map(request.cwd) !== request.cwd
      ? this.map(request.cwd)
      : this.home;
    const out = await new Deno.Command(cmd, {
      args,
      cwd,
      env: {
        ...request.env,
        HOME: this.home,
        GIT_CONFIG_GLOBAL: `${this.home}/.gitconfig`,
        GIT_CONFIG_NOSYSTEM: "1",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const result = { code: out.code, stdout: out.stdout, stderr: out.stderr };
    return this.tamper ? await this.tamper(request, result, (p) => this.map(p)) : result;
  }

  override async pushFile(_name: string, file: PushedFile): Promise<void> {
    const where = this.map(file.path);
    await Deno.mkdir(where.slice(0, where.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(where, file.data, { mode: file.mode ?? 0o644 });
  }

  override async pullFile(_name: string, path: string): Promise<Uint8Array> {
    return await Deno.readFile(this.map(path));
  }
}

/** Runs git in the guest's code dir (as the guest's git would: its config, its HOME). */
export async function guestGit(guest: DiskGuest, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", {
    args,
    cwd: guest.codeDir,
    env: {
      HOME: guest.home,
      GIT_CONFIG_GLOBAL: `${guest.home}/.gitconfig`,
      GIT_CONFIG_NOSYSTEM: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (out.code !== 0) throw new Error(`guest git ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout).trim();
}

/** A branch name with what git allows of the hostile set: unicode, quote, `$`, `;`, `&`. */
export const HOSTILE_BRANCH = "feat/ünï'$HOME;x&y";

/** A harness whose engine is a disk guest and whose provisioning runs the real code step. */
export async function gitHarness(): Promise<
  { h: Harness; guest: DiskGuest; service: SandboxService }
> {
  const h = await harness({ config: { ssh_user: "user" } });
  const guest = new DiskGuest(`${h.repo.dir}/guest-root`, { clock: h.clock });
  const deps = { ...h.deps, backend: () => Promise.resolve(guest as never) };
  h.provisioner.run = async (ctx, options) => {
    const host = new HostContext(ctx, {
      runner: defaultRunner,
      home: h.home,
      env: () => undefined,
      claudeInstallUrl: "http://127.0.0.1:9/unused",
      logger: log,
    });
    const g = new Guest(ctx.backend, ctx.sandbox, { user: ctx.config.ssh_user });
    await codeStep.run(host, g, await codeStep.inputs(host));
    for (const step of h.provisioner.steps) await options.onStepDone(step);
  };
  return { h, guest, service: new SandboxService(deps, h.repo.root) };
}
