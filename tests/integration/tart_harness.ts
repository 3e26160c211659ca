/**
 * Shared helpers for the tart contract and end-to-end tests: which `tart` they drive (the fake in
 * tests/fixtures/tart on the Incus lab, or the real one with TACHIKOMA_TART_REAL=1 / on a Mac
 * with tart installed), running it, and cleaning up what a test created.
 *
 * @module
 */
import { labEnv } from "./lab.ts";
import { type Run, run } from "../testing/run.ts";

/** Directory of the fake `tart` executable. */
export const FAKE_TART_DIR = new URL("../fixtures/tart/", import.meta.url).pathname.replace(
  /\/$/,
  "",
);
/** The fake `tart` executable. */
export const FAKE_TART = `${FAKE_TART_DIR}/tart`;

function tartOnPath(): boolean {
  try {
    return new Deno.Command("tart", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** True when the tests drive the real tart. */
export const REAL_TART = Deno.env.get("TACHIKOMA_TART_REAL") === "1" ||
  (Deno.env.get("TACHIKOMA_TART_REAL") !== "0" && Deno.build.os === "darwin" && tartOnPath());

/** Local image cloned by the real-tart tests (must exist: `tart clone ghcr.io/… ubuntu`). */
export const REAL_IMAGE = Deno.env.get("TACHIKOMA_TART_REAL_IMAGE") ?? "ubuntu";

/** A tart under test: binary + environment. */
export class TartTarget {
  readonly binary: string;
  readonly env: Record<string, string>;
  readonly real: boolean;
  /** The base image to clone. */
  readonly image: string;
  /** `$TART_HOME` of the fake (null for the real tart: the user's own). */
  readonly home: string | null;
  /** The fake's argv log. */
  readonly argvLog: string | null;

  private constructor(
    binary: string,
    env: Record<string, string>,
    real: boolean,
    image: string,
    home: string | null,
    argvLog: string | null,
  ) {
    this.binary = binary;
    this.env = env;
    this.real = real;
    this.image = image;
    this.home = home;
    this.argvLog = argvLog;
  }

  /** The real tart, or the fake with a fresh `$TART_HOME` and argv log. */
  static async open(extraEnv: Record<string, string> = {}): Promise<TartTarget> {
    if (REAL_TART) return new TartTarget("tart", { ...extraEnv }, true, REAL_IMAGE, null, null);
    const home = await Deno.makeTempDir({ prefix: "tkt-tart-home-" });
    const lab = labEnv();
    const env: Record<string, string> = {
      TART_HOME: home,
      FAKE_TART_LOG: `${home}/argv.jsonl`,
      FAKE_TART_IMAGE_MAP: `ubuntu=${lab?.image ?? "tachikoma-test"},` +
        `ghcr.io/cirruslabs/ubuntu:latest=${lab?.image ?? "tachikoma-test"}`,
      ...(lab ? { FAKE_TART_INCUS_SOCKET: lab.socket } : {}),
      ...extraEnv,
    };
    return new TartTarget(FAKE_TART, env, false, "ubuntu", home, env.FAKE_TART_LOG);
  }

  /** Runs `tart args…` to completion (this process' environment plus the target's). */
  run(
    args: string[],
    options: { env?: Record<string, string>; stdin?: string } = {},
  ): Promise<Run> {
    return run(this.binary, args, {
      env: { ...this.env, ...options.env },
      inheritEnv: true,
      stdin: options.stdin,
    });
  }

  /** Starts `tart run args…` in the background (like a user's terminal would). */
  spawnRun(args: string[], env: Record<string, string> = {}): RunningTart {
    return new RunningTart(
      new Deno.Command(this.binary, {
        args: ["run", ...args],
        env: { ...this.env, ...env },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn(),
    );
  }

  /** The state of a local VM per `list --format json`, or null when absent. */
  async state(name: string): Promise<string | null> {
    const r = await this.run(["list", "--format", "json"]);
    if (r.code !== 0) throw new Error(`tart list failed: ${r.stderr}`);
    const entry = (JSON.parse(r.stdout) as { Name: string; State: string; Source: string }[])
      .find((e) => e.Name === name && e.Source === "local");
    return entry?.State ?? null;
  }

  /** Polls until `state(name)` is `want`. */
  async waitState(name: string, want: string | null, ms = 120_000): Promise<void> {
    const until = Date.now() + ms;
    let last: string | null = "?";
    while (Date.now() < until) {
      last = await this.state(name);
      if (last === want) return;
      await new Promise((r) => setTimeout(r, 150));
    }
    throw new Error(`${name} is ${last}, not ${want}, after ${ms} ms`);
  }

  /** The fake's argv log entries. */
  async argv(): Promise<string[][]> {
    if (!this.argvLog) return [];
    const text = await Deno.readTextFile(this.argvLog).catch(() => "");
    return text.split("\n").filter((l) => l).map((l) => JSON.parse(l).argv as string[]);
  }

  /** Stops and deletes `names`, then (fake) removes `$TART_HOME` and the containers it held. */
  async cleanup(names: string[]): Promise<void> {
    for (const name of names) {
      await this.run(["stop", name, "--timeout", "5"]).catch(() => {});
      await this.run(["delete", name]).catch(() => {});
    }
    if (!this.home) return;
    // Belt and braces: any container this TART_HOME still records (ours, tkt-tart-*).
    try {
      for (const entry of Deno.readDirSync(`${this.home}/vms`)) {
        try {
          const meta = JSON.parse(
            Deno.readTextFileSync(`${this.home}/vms/${entry.name}/fake-tart.json`),
          );
          if (typeof meta.container === "string" && meta.container.startsWith("tkt-tart-")) {
            await new Deno.Command("incus", {
              args: ["delete", "--force", meta.container],
              stdout: "null",
              stderr: "null",
            }).output();
          }
        } catch { /* not a fake VM dir */ }
      }
    } catch { /* no vms dir */ }
    await Deno.remove(this.home, { recursive: true }).catch(() => {});
  }
}

/** A `tart run` running in the background. */
export class RunningTart {
  readonly child: Deno.ChildProcess;
  readonly #out: Promise<Deno.CommandOutput>;

  constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.#out = child.output();
  }

  /** Waits for it to exit. */
  async done(): Promise<{ code: number; stdout: string; stderr: string }> {
    const out = await this.#out;
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  }

  /** Kills it (cleanup). */
  kill(): void {
    try {
      this.child.kill("SIGKILL");
    } catch { /* already gone */ }
  }
}

/** A random VM name for a test. */
export function vmName(prefix: string): string {
  const hex = Array.from(
    crypto.getRandomValues(new Uint8Array(4)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
  return `tkt-tart-${prefix}-${hex}`;
}

/** Runs `fn` until it returns a value (not undefined) or `ms` pass. */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  ms = 60_000,
  every = 250,
): Promise<T> {
  const until = Date.now() + ms;
  let lastError: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${lastError}` : ""}`);
}
