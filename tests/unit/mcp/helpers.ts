/**
 * Helpers of the MCP tests: the tool list, result text, and a stdio harness — a real
 * `deno run main.ts mcp` process driven by the SDK's own `Client` over `StdioClientTransport`,
 * with a file-backed memory world (`TACHIKOMA_TEST_MEMORY_WORLD`), its own config/state dir
 * and home, a real git repo as working directory, and a loopback SSH banner server for boot
 * waits.
 *
 * @module
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { MemorySandbox, MemoryWorldData } from "../../../src/backends/memory/mod.ts";
import { GUEST_CODE_DIR } from "../../../src/provision/shares.ts";
import type { SandboxRecord } from "../../../src/state/schema.ts";
import { StateStore } from "../../../src/state/store.ts";
import { type BannerServer, bannerServer, makeRepo, type TempRepo } from "../core/helpers.ts";

/** Every tool the server publishes. */
export const TOOL_NAMES = [
  "spawn_sandbox",
  "list_sandboxes",
  "sandbox_status",
  "exec_in_sandbox",
  "halt_sandbox",
  "destroy_sandbox",
  "pull_sandbox",
  "read_file",
  "write_file",
  "edit_file",
  "list_files",
  "delete_file",
  "create_checkpoint",
  "list_checkpoints",
  "restore_checkpoint",
  "delete_checkpoint",
  "forward_port",
  "list_ports",
  "remove_port",
  "job_output",
  "job_status",
  "job_kill",
  "network_show",
  "network_set",
  "network_allow",
  "network_deny",
  "network_log",
  "list_bases",
  "build_base",
] as const;

/** The text of a tool result's content blocks. */
export function textOf(result: { content?: unknown }): string {
  const blocks = (result.content ?? []) as { type: string; text?: string }[];
  return blocks.filter((b) => b.type === "text").map((b) => b.text ?? "").join("\n");
}

/** The CLI entry point with the memory engine installed (`tests/testing/memory_main.ts`). */
export const MAIN_TS = new URL("../../testing/memory_main.ts", import.meta.url).pathname;
/** The production entry point (for runs against a real engine). */
export const REAL_MAIN_TS = new URL("../../../main.ts", import.meta.url).pathname;

let denoDir: string | undefined;

/** The DENO_DIR this deno uses (so a child with another HOME still finds the npm cache). */
export async function currentDenoDir(): Promise<string> {
  if (denoDir) return denoDir;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  denoDir = (JSON.parse(new TextDecoder().decode(out.stdout)) as { denoDir: string }).denoDir;
  return denoDir;
}

/** A memory world, a state dir and a repo for `tachikoma mcp` processes. */
export interface McpWorld extends AsyncDisposable {
  repo: TempRepo;
  /** TACHIKOMA_CONFIG_DIR. */
  configDir: string;
  home: string;
  worldPath: string;
  banner: BannerServer;
  store: StateStore;
  /** The environment a `tachikoma mcp` process gets. */
  env: Record<string, string>;
  /** Changes the world file. */
  world(change: (world: MemoryWorldData) => void): Promise<void>;
  /** Adds a sandbox to the world and its record to state. */
  seed(name: string, options: SeedOptions): Promise<SandboxRecord>;
  /** Starts `tachikoma mcp` (with `env`, default {@link McpWorld.env}) and connects to it. */
  connect(
    options?: { cwd?: string; clientVersion?: string; env?: Record<string, string> },
  ): Promise<Connected>;
}

/** A seeded sandbox. */
export interface SeedOptions {
  branch: string;
  state?: MemorySandbox["state"];
  /** Host directory shared as the code dir (default: the repo's main checkout). */
  codeDir?: string;
  provisioned?: SandboxRecord["provisioned"];
}

/** A connected client and the server's stderr. */
export interface Connected extends AsyncDisposable {
  client: Client;
  transport: StdioClientTransport;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
}

/** Creates a world; dispose it to remove everything. */
export async function mcpWorld(): Promise<McpWorld> {
  const repo = await makeRepo("myapp");
  const configDir = await Deno.makeTempDir({ prefix: "tk-mcp-config-" });
  const home = await Deno.makeTempDir({ prefix: "tk-mcp-home-" });
  const worldPath = `${configDir}/world.json`;
  const banner = bannerServer();
  const store = new StateStore(configDir);
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: home,
    DENO_DIR: await currentDenoDir(),
    NO_COLOR: "1",
    TACHIKOMA_CONFIG_DIR: configDir,
    TACHIKOMA_TEST_MEMORY_WORLD: worldPath,
    GIT_CONFIG_GLOBAL: Deno.env.get("GIT_CONFIG_GLOBAL") ?? "/dev/null",
    GIT_CONFIG_NOSYSTEM: "1",
  };
  const initial: MemoryWorldData = {
    sandboxes: {},
    defaults: { ssh: { host: "127.0.0.1", port: banner.port } },
    exec: { mode: "host" },
  };
  await Deno.writeTextFile(worldPath, JSON.stringify(initial, null, 2));
  const world = async (change: (world: MemoryWorldData) => void) => {
    const data = JSON.parse(await Deno.readTextFile(worldPath)) as MemoryWorldData;
    change(data);
    await Deno.writeTextFile(worldPath, JSON.stringify(data, null, 2));
  };
  return {
    repo,
    configDir,
    home,
    worldPath,
    banner,
    store,
    env,
    world,
    async seed(name, options) {
      const codeDir = options.codeDir ?? repo.root;
      const state = options.state ?? "running";
      await world((w) => {
        w.sandboxes[name] = {
          state,
          address_at: state === "running" ? 0 : null,
          created_at: "2026-05-01T12:00:00.000Z",
          shares: [{ name: "code", hostPath: codeDir, guestPath: GUEST_CODE_DIR, readOnly: false }],
          files: {},
          checkpoints: [],
        };
      });
      const record: SandboxRecord = {
        name,
        repo: repo.name,
        branch: options.branch,
        worktree_path: codeDir,
        backend: "memory",
        repo_root: repo.root,
        created_at: "2026-05-01T12:00:00.000Z",
        last_used: "2026-05-01T12:00:00.000Z",
        status: state === "running" ? "running" : "stopped",
        ip: state === "running" ? "127.0.0.1" : null,
        failure: null,
        provisioned: options.provisioned ??
          { version: 999, last_step: "scripts", complete: true },
      };
      await store.put(record);
      return record;
    },
    async connect(options = {}) {
      const transport = new StdioClientTransport({
        command: Deno.execPath(),
        args: [
          "run",
          "-A",
          "--frozen",
          "--quiet",
          (options.env ?? env).TACHIKOMA_TEST_MEMORY_WORLD ? MAIN_TS : REAL_MAIN_TS,
          "mcp",
        ],
        cwd: options.cwd ?? repo.root,
        env: options.env ?? env,
        stderr: "pipe",
      });
      let stderr = "";
      transport.stderr?.on("data", (chunk: Uint8Array) => {
        stderr += new TextDecoder().decode(chunk);
      });
      const client = new Client({ name: "tachikoma-test", version: options.clientVersion ?? "1" });
      await client.connect(transport);
      return {
        client,
        transport,
        stderr: () => stderr,
        async [Symbol.asyncDispose]() {
          await client.close();
        },
      };
    },
    async [Symbol.asyncDispose]() {
      await banner[Symbol.asyncDispose]();
      await repo[Symbol.asyncDispose]();
      await Deno.remove(configDir, { recursive: true }).catch(() => {});
      await Deno.remove(home, { recursive: true }).catch(() => {});
    },
  };
}

/** Polls `check` until it returns true or `ms` pass (then throws `what`). */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  let delay = 5;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 100);
  }
}
