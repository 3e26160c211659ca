/**
 * Helpers of the HTTP daemon tests: a real `deno run memory_main.ts mcp --http` process on a
 * free loopback port (`--listen 127.0.0.1:0`) in an {@link McpWorld}, and the SDK's own
 * `Client` over `StreamableHTTPClientTransport` with (or without) the bearer token.
 *
 * @module
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { MAIN_TS, type McpWorld } from "./helpers.ts";

/** A running daemon. */
export interface Daemon extends AsyncDisposable {
  url: string;
  pid: number;
  token: string;
  child: Deno.ChildProcess;
  /** Everything the daemon wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM, then waits for the exit; returns the exit code. */
  stop(): Promise<number>;
}

/** Runs the CLI (memory engine) with `args` in `w`; returns code, stdout, stderr. */
export async function cli(
  w: McpWorld,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", "--quiet", MAIN_TS, ...args],
    cwd: w.repo.root,
    env: { ...w.env, ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Starts `tachikoma mcp --http --json` (extra `args`, `env`) and waits until it listens. */
export async function startDaemon(
  w: McpWorld,
  options: {
    args?: string[];
    /** Replaces the world's environment (default: `w.env`). */
    env?: Record<string, string>;
    /** The entry point (default: the CLI with the memory engine). */
    main?: string;
    cwd?: string;
  } = {},
): Promise<Daemon> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--frozen",
      "--quiet",
      options.main ?? MAIN_TS,
      "--json",
      "mcp",
      "--http",
      "--listen",
      "127.0.0.1:0",
      ...(options.args ?? []),
    ],
    cwd: options.cwd ?? w.repo.root,
    env: options.env ?? w.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let err = "";
  const dec = new TextDecoder();
  const draining = (async () => {
    for await (const chunk of child.stderr) err += dec.decode(chunk, { stream: true });
  })();
  let out = "";
  const reader = child.stdout.getReader();
  const deadline = Date.now() + 60_000;
  let doc: { url: string; pid: number; token_file: string } | undefined;
  while (!doc) {
    if (Date.now() > deadline) throw new Error(`the daemon did not start:\n${err}`);
    const { value, done } = await reader.read();
    if (done) {
      await draining;
      throw new Error(`the daemon exited before listening:\n${out}\n${err}`);
    }
    out += dec.decode(value, { stream: true });
    try {
      doc = JSON.parse(out);
    } catch {
      // not the whole document yet
    }
  }
  reader.releaseLock();
  void child.stdout.cancel().catch(() => {});
  const token = (await Deno.readTextFile(doc.token_file)).trim();
  let exited: number | undefined;
  const status = child.status.then((s) => exited = s.code);
  const stop = async () => {
    if (exited === undefined) {
      try {
        child.kill("SIGTERM");
      } catch {
        // gone
      }
    }
    await status;
    await draining;
    return exited!;
  };
  return {
    url: doc.url,
    pid: doc.pid,
    token,
    child,
    stderr: () => err,
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

/** An SDK client connected to `url` with these headers (e.g. the bearer token). */
export async function httpClient(
  url: string,
  headers: Record<string, string>,
  options: { fetch?: typeof fetch; name?: string } = {},
): Promise<Client & AsyncDisposable> {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const client = new Client({ name: options.name ?? "tachikoma-http-test", version: "1" });
  await client.connect(transport);
  return Object.assign(client, {
    async [Symbol.asyncDispose]() {
      await transport.terminateSession().catch(() => {});
      await client.close();
    },
  });
}

/** The bearer header of `token`. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
