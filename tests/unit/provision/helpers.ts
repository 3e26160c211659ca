/**
 * A sandbox double whose `exec` runs the guest commands for real, with `sh`/`bash` on this
 * machine, inside a temporary "guest home" (HOME is forced to it). Provisioning's shell scripts
 * and their quoting are therefore exercised by real shells without a lab. Commands as root are
 * refused (except the harmless read of SSH host keys), so nothing outside the temp dir changes.
 *
 * @module
 */
import { feedChild } from "../../../src/lib/process.ts";
import { MemoryBackend } from "../../../src/backends/memory/backend.ts";
import type { ExecRequest, ExecResult } from "../../../src/backends/backend.ts";
import type { ProvisionContext } from "../../../src/provision/contract.ts";
import { IDENTITY_MARK } from "../../../src/provision/ssh_key.ts";
import { RecordingReporter } from "../../testing/recording_reporter.ts";
import { defaultConfig } from "../../../src/config/default_config.ts";
import type { Config } from "../../../src/config/schema.ts";
import type { SandboxRecord } from "../../../src/state/schema.ts";

/** A local sandbox: its backend, the guest home and a scratch dir. */
export interface LocalSandbox {
  backend: MemoryBackend;
  name: string;
  /** The guest user's home (a temp dir). */
  home: string;
  /** Scratch dir (host side of the test). */
  dir: string;
  /** Every argv run, with its user. */
  log: { user: string; argv: string[] }[];
  cleanup(): Promise<void>;
}

const enc = new TextEncoder();

async function runLocal(request: ExecRequest, home: string): Promise<ExecResult> {
  const [cmd, ...args] = request.argv;
  if (cmd === "getent") {
    return {
      code: 0,
      stdout: enc.encode(`admin:x:1000:1000::${home}:/bin/sh\n`),
      stderr: new Uint8Array(),
    };
  }
  if (request.user === "root" && args.some((a) => a.includes(IDENTITY_MARK))) {
    // The "guest" is this machine: never renew its identity. Its keys are its own already, so
    // the answer is the one a guest whose mark names the sandbox gives: the key listing.
    const listing = 'for f in /etc/ssh/ssh_host_*_key.pub; do [ -f "$f" ] && cat "$f"; done; true';
    const wrapped = args.map((a) => a.includes(IDENTITY_MARK) ? listing : a);
    return await runLocal({ ...request, argv: [cmd, ...wrapped] }, home);
  }
  if (request.user === "root" && !args.some((a) => a.includes("/etc/ssh/ssh_host_"))) {
    throw new Error(
      `test double refuses a root command: ${JSON.stringify(request.argv).slice(0, 120)}`,
    );
  }
  const child = new Deno.Command(cmd, {
    args,
    cwd: request.cwd ?? home,
    env: { ...request.env, HOME: home, LC_ALL: "C.UTF-8" },
    stdin: request.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const inputDone = new AbortController();
  if (request.stdin !== undefined) feedChild(child, request.stdin, inputDone.signal);
  const out = await child.output().finally(() => inputDone.abort());
  return { code: out.code, stdout: out.stdout, stderr: out.stderr };
}

/**
 * Changes what a guest command returned (after it really ran): e.g. drop its output while
 * keeping exit 0, as Incus does under concurrent execs. Null leaves the result alone.
 */
export type OutputTamper = (request: ExecRequest, result: ExecResult) => ExecResult | null;

/** Drops the output of the commands `match` selects, the first `times` of them (or all). */
export function dropOutput(
  match: (request: ExecRequest) => boolean,
  times = Infinity,
): OutputTamper & { dropped: () => number } {
  let dropped = 0;
  const tamper = (request: ExecRequest, _result: ExecResult) => {
    if (!match(request) || dropped >= times) return null;
    dropped++;
    return { code: 0, stdout: new Uint8Array(), stderr: new Uint8Array() };
  };
  return Object.assign(tamper, { dropped: () => dropped });
}

/** A running local sandbox named `sb`. */
export async function localSandbox(
  options: { tamper?: OutputTamper } = {},
): Promise<LocalSandbox> {
  const dir = await Deno.makeTempDir({ prefix: "tk-prov-unit-" });
  const home = `${dir}/guest-home`;
  await Deno.mkdir(home);
  const log: LocalSandbox["log"] = [];
  const backend = new MemoryBackend({
    exec: async (_name, request) => {
      log.push({ user: request.user ?? "user", argv: request.argv });
      const result = await runLocal(request, home);
      return options.tamper?.(request, result) ?? result;
    },
  });
  await backend.seed("sb", { state: "running" });
  return {
    backend,
    name: "sb",
    home,
    dir,
    log,
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

/** A full config (defaults + overrides). */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    ...defaultConfig("linux"),
    backend: "incus",
    claude_install: "skip",
    tmux_install: "skip",
    share_claude_dirs: [],
    ...overrides,
  } as Config;
}

/** A state record. */
export function testRecord(fields: Partial<SandboxRecord> = {}): SandboxRecord {
  return {
    name: "sb",
    repo: "repo",
    branch: "main",
    worktree_path: "/nonexistent/wt",
    created_at: "2026-01-01T00:00:00.000Z",
    last_used: "2026-01-01T00:00:00.000Z",
    status: "running",
    ip: null,
    ...fields,
  };
}

/** A provisioning context for a local sandbox. */
export function testContext(
  sb: LocalSandbox,
  config: Config,
  record: SandboxRecord = testRecord(),
  stateDir = `${sb.dir}/state`,
): ProvisionContext & { reporter: RecordingReporter } {
  return {
    backend: sb.backend,
    sandbox: sb.name,
    record,
    config,
    stateDir,
    reporter: new RecordingReporter(),
  };
}

/** A unique marker path that hostile values try to create. */
export function pwnedPath(): string {
  return `/tmp/tk-pwned-${crypto.randomUUID()}`;
}
