/**
 * Shared helpers of the lifecycle tests: real git repos in temp dirs (with a private git
 * config), a fake provisioner that records its steps and can fail on a chosen one, a
 * scriptable SSH probe, a loopback SSH banner server, and a ready-made {@link LifecycleDeps}
 * over the memory backend.
 *
 * @module
 */
import { MemoryBackend, type MemoryBackendOptions } from "../../../src/backends/memory/mod.ts";
import { FakeClock } from "../../testing/fake_clock.ts";
import type { LifecycleDeps } from "../../../src/core/lifecycle.ts";
import type { ProbeResult, ProbeTarget, SshProbe } from "../../../src/lib/probe.ts";
import { RecordingReporter } from "../../testing/recording_reporter.ts";
import { defaultRunner } from "../../../src/lib/process.ts";
import type {
  ProvisionContext,
  Provisioner,
  ProvisionRunOptions,
} from "../../../src/provision/contract.ts";
import { SandboxService } from "../../../src/core/sandbox_service.ts";
import { defaultConfig } from "../../../src/config/default_config.ts";
import type { Config } from "../../../src/config/schema.ts";
import { StateStore } from "../../../src/state/store.ts";

/** A private git config so tests never depend on the machine's. */
const gitConfig = Deno.makeTempFileSync({ prefix: "tk-gitconfig-" });
Deno.writeTextFileSync(
  gitConfig,
  "[user]\n\tname = Tachikoma Test\n\temail = test@example.invalid\n" +
    "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n",
);
Deno.env.set("GIT_CONFIG_GLOBAL", gitConfig);
Deno.env.set("GIT_CONFIG_NOSYSTEM", "1");

/** Runs git in `cwd`; throws with stderr on failure. Returns trimmed stdout. */
export async function gitIn(cwd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  if (out.code !== 0) throw new Error(`git ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout).trim();
}

/** A temp dir holding a git repo `<dir>/<name>` with one commit on `main`. */
export interface TempRepo extends AsyncDisposable {
  /** The temp dir (parent of the repo and of new worktrees). */
  dir: string;
  /** The main checkout. */
  root: string;
  name: string;
}

/** Makes a repo with one commit (file `README`). */
export async function makeRepo(name = "myapp"): Promise<TempRepo> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "tk-repo-" }));
  const root = `${dir}/${name}`;
  await Deno.mkdir(root);
  await gitIn(root, "init", "-q", "-b", "main");
  await Deno.writeTextFile(`${root}/README`, "hello\n");
  await gitIn(root, "add", "README");
  await gitIn(root, "commit", "-q", "-m", "init");
  return {
    dir,
    root,
    name,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A provisioner double: records each run, fails on a chosen step. */
export class FakeProvisioner implements Provisioner {
  version: number;
  readonly steps: readonly string[];
  /** Inputs per step; change one to make `--reprovision` re-run it. */
  inputs: Record<string, string>;
  /** Each run: the steps that ran. */
  readonly runs: string[][] = [];
  /** Fail at this step (it does not complete), `failTimes` times. */
  failAt: string | null = null;
  failTimes = 1;
  /** What the failing step throws (default: a plain Error). */
  failWith: Error | null = null;

  constructor(steps = ["keys", "mounts", "env", "claude"], version = 3) {
    this.steps = steps;
    this.version = version;
    this.inputs = Object.fromEntries(steps.map((s) => [s, `${s}-v1`]));
  }

  fingerprint(_ctx: ProvisionContext): Promise<Record<string, string>> {
    return Promise.resolve({ ...this.inputs });
  }

  async run(ctx: ProvisionContext, options: ProvisionRunOptions): Promise<void> {
    const ran: string[] = [];
    this.runs.push(ran);
    const start = options.after === null ? 0 : this.steps.indexOf(options.after) + 1;
    for (const step of this.steps.slice(start)) {
      if (options.only && !options.only.includes(step)) continue;
      if (options.skip?.includes(step)) continue;
      const h = ctx.reporter.step(`provision: ${step}`);
      if (this.failAt === step && this.failTimes > 0) {
        this.failTimes--;
        h.fail("boom");
        throw this.failWith ?? new Error(`step ${step} failed: boom`);
      }
      ran.push(step);
      h.done();
      await options.onStepDone(step);
    }
  }
}

/** A probe double answering from a function, counting calls. */
export class FakeProbe implements SshProbe {
  calls: ProbeTarget[] = [];
  answer: (target: ProbeTarget, n: number) => ProbeResult;
  constructor(answer?: (target: ProbeTarget, n: number) => ProbeResult) {
    this.answer = answer ?? (() => ({ ok: true, banner: "SSH-2.0-Fake" }));
  }
  probe(target: ProbeTarget): Promise<ProbeResult> {
    this.calls.push(target);
    return Promise.resolve(this.answer(target, this.calls.length));
  }
}

/** Everything a lifecycle test needs. */
export interface Harness extends AsyncDisposable {
  deps: LifecycleDeps;
  service: SandboxService;
  backend: MemoryBackend;
  store: StateStore;
  clock: FakeClock;
  reporter: RecordingReporter;
  provisioner: FakeProvisioner;
  probe: FakeProbe;
  repo: TempRepo;
  stateDir: string;
  home: string;
}

/** A harness over a fresh repo, state dir and memory backend (FakeClock, auto-advancing). */
export async function harness(
  options: {
    backend?: MemoryBackendOptions;
    config?: Partial<Config>;
    repo?: TempRepo;
    clock?: FakeClock;
  } = {},
): Promise<Harness> {
  const repo = options.repo ?? await makeRepo();
  const stateDir = await Deno.makeTempDir({ prefix: "tk-statedir-" });
  const home = await Deno.makeTempDir({ prefix: "tk-home-" });
  const clock = options.clock ?? new FakeClock(Date.parse("2026-05-01T12:00:00Z"), {
    autoAdvance: true,
  });
  const backend = new MemoryBackend({ clock, ...options.backend });
  const store = new StateStore(stateDir, { clock });
  const reporter = new RecordingReporter();
  const provisioner = new FakeProvisioner();
  const probe = new FakeProbe();
  const config: Config = { ...defaultConfig("linux"), ...options.config };
  const deps: LifecycleDeps = {
    backend: () => Promise.resolve(backend),
    store,
    config,
    stateDir,
    clock,
    reporter,
    provisioner: () => Promise.resolve(provisioner),
    runner: defaultRunner,
    probe,
    home,
  };
  return {
    deps,
    service: new SandboxService(deps, repo.root),
    backend,
    store,
    clock,
    reporter,
    provisioner,
    probe,
    repo,
    stateDir,
    home,
    async [Symbol.asyncDispose]() {
      await repo[Symbol.asyncDispose]();
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
      await Deno.remove(home, { recursive: true }).catch(() => {});
    },
  };
}

/** A loopback server that sends an SSH banner (once released) on every connection. */
export interface BannerServer extends AsyncDisposable {
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Sends the banner on every connection, open and future (a server made with ready: false). */
  release(): void;
  /** Resolves once `n` connections have been accepted. */
  whenAccepted(n: number): Promise<void>;
}

/** Starts a banner server on 127.0.0.1 (`port`, default a random one). */
export function bannerServer(
  options: { ready?: boolean; banner?: string; port?: number } = {},
): BannerServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: options.port ?? 0 });
  const banner = new TextEncoder().encode(options.banner ?? "SSH-2.0-OpenSSH_9.2p1 Debian\r\n");
  const conns = new Set<Deno.Conn>();
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  if (options.ready ?? true) release();
  let accepted = 0;
  const acceptWaiters: { n: number; resolve: () => void }[] = [];
  const state: BannerServer = {
    port: (listener.addr as Deno.NetAddr).port,
    get accepted() {
      return accepted;
    },
    release,
    whenAccepted(n) {
      if (accepted >= n) return Promise.resolve();
      return new Promise((resolve) => acceptWaiters.push({ n, resolve }));
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      release();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      await serving;
    },
  };
  const serve = async (conn: Deno.Conn) => {
    conns.add(conn);
    try {
      await released;
      await conn.write(banner);
      // Keep it open until the client closes (like sshd waiting for the client's banner).
      await conn.read(new Uint8Array(64)).catch(() => null);
    } catch {
      // client went away
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // closed
      }
    }
  };
  const serving = (async () => {
    try {
      for await (const conn of listener) {
        accepted++;
        for (const w of acceptWaiters.filter((w) => accepted >= w.n)) w.resolve();
        serve(conn);
      }
    } catch {
      // closed
    }
  })();
  return state;
}
