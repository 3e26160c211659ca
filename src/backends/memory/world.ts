/**
 * The memory backend's world: every sandbox it holds, plus the knobs tests turn (failures,
 * delays, addresses, SSH endpoints, exec mode). It lives either in this process
 * ({@link InMemoryStorage}) or in a JSON file shared by several processes
 * ({@link FileStorage}, locked and replaced atomically), so CLI subprocess tests and benches
 * see one world. The file format is documented in `src/backends/memory/README.md`.
 *
 * @module
 */
import type { Capabilities, EgressPolicy, SandboxState, Share, SshEndpoint } from "../backend.ts";
import {
  ConflictError,
  NotFoundError,
  RuntimeError,
  TachikomaError,
  TimeoutError,
  UnreachableError,
  UnsupportedError,
} from "../../lib/errors.ts";

/** A file inside a memory sandbox. */
export interface MemoryFile {
  /** Standard base64 of the content. */
  data: string;
  mode?: number;
  owner?: "root" | "user";
}

/** A checkpoint of a memory sandbox: its files at that time. */
export interface MemoryCheckpoint {
  name: string;
  created_at: string;
  files: Record<string, MemoryFile>;
}

/** One sandbox of the memory world. */
export interface MemorySandbox {
  state: SandboxState;
  /** Address it gets once running (default `127.0.0.1`). */
  address?: string;
  /** Clock time (ms) at which the address appears after a start; null: never. */
  address_at?: number | null;
  /** Where SSH reaches it (default: `<address>:22`). */
  ssh?: SshEndpoint | null;
  image?: string;
  created_at: string;
  cpus?: number;
  memory_mb?: number;
  disk_gb?: number;
  /** Shares of the last start. */
  shares?: Share[];
  /** Whether `mountShares` ran since the last start. */
  mounted?: boolean;
  files?: Record<string, MemoryFile>;
  checkpoints?: MemoryCheckpoint[];
  egress?: EgressPolicy;
  /** How many times it was started. */
  starts?: number;
}

/** Error kinds a failure injection can raise. */
export type FailureKind =
  | "not_found"
  | "conflict"
  | "unreachable"
  | "timeout"
  | "unsupported"
  | "runtime";

/** An injected failure for one backend method. */
export interface FailureSpec {
  kind: FailureKind;
  message?: string;
  /** Fail this many more calls, then succeed (absent: every call). */
  times?: number;
  /** Only calls for this sandbox. */
  name?: string;
}

/** A canned exec result (world-file `exec.mode = "canned"`). */
export interface CannedExec {
  /** Matches when the request's argv equals this exactly… */
  argv?: string[];
  /** …or when argv[0] equals this. Neither: matches everything. */
  argv0?: string;
  code?: number;
  stdout?: string;
  stderr?: string;
}

/** How exec behaves in a world file. */
export type ExecMode =
  | { mode: "host" }
  | { mode: "canned"; results: CannedExec[] }
  | { mode: "ok" };

/** One recorded backend call. */
export interface CallRecord {
  method: string;
  name?: string;
  /** Clock time of the call (ms). */
  at: number;
  /** Process that made it. */
  pid?: number;
  detail?: Record<string, unknown>;
}

/** The whole world. Every field but `sandboxes` is optional. */
export interface MemoryWorldData {
  capabilities?: Partial<Capabilities>;
  sandboxes: Record<string, MemorySandbox>;
  defaults?: {
    /** Address new sandboxes get (default `127.0.0.1`). */
    address?: string;
    /** SSH endpoint of sandboxes that set none. */
    ssh?: SshEndpoint | null;
    /** Milliseconds from start until the address appears (default 0). */
    address_delay_ms?: number;
    /** Sandboxes never get an address. */
    never_address?: boolean;
  };
  failures?: Record<string, FailureSpec>;
  /** Milliseconds each method waits before acting. */
  delays?: Record<string, number>;
  exec?: ExecMode;
  calls?: CallRecord[];
}

/** Makes the typed error a failure spec describes. */
export function failureError(method: string, spec: FailureSpec): TachikomaError {
  const message = spec.message ?? `injected ${spec.kind} failure in ${method}`;
  switch (spec.kind) {
    case "not_found":
      return new NotFoundError(message);
    case "conflict":
      return new ConflictError(message);
    case "unreachable":
      return new UnreachableError(message);
    case "timeout":
      return new TimeoutError(message);
    case "unsupported":
      return new UnsupportedError(message);
    default:
      return new RuntimeError("memory_failure", message);
  }
}

/** Where the world lives. `transact` runs `fn` with exclusive access and persists its changes. */
export interface WorldStorage {
  transact<T>(fn: (world: MemoryWorldData) => T): Promise<T>;
}

/** A world held in this process. */
export class InMemoryStorage implements WorldStorage {
  readonly world: MemoryWorldData;
  constructor(world: MemoryWorldData = { sandboxes: {} }) {
    this.world = world;
  }
  transact<T>(fn: (world: MemoryWorldData) => T): Promise<T> {
    try {
      return Promise.resolve(fn(this.world));
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/**
 * A world in a JSON file, shared between processes: every transaction holds an exclusive
 * `flock` on `<path>.lock`, reads the file (missing: an empty world), applies `fn` and writes
 * the result atomically (temp file + rename). A transaction that throws writes nothing.
 */
export class FileStorage implements WorldStorage {
  readonly path: string;
  constructor(path: string) {
    this.path = path;
  }

  async transact<T>(fn: (world: MemoryWorldData) => T): Promise<T> {
    const lock = await Deno.open(`${this.path}.lock`, {
      read: true,
      write: true,
      create: true,
      mode: 0o600,
    });
    try {
      await lock.lock(true);
      const world = await readWorldFile(this.path);
      const before = JSON.stringify(world);
      const result = fn(world);
      if (JSON.stringify(world) !== before) {
        const temp = `${this.path}.tmp-${Deno.pid}`;
        await Deno.writeTextFile(temp, JSON.stringify(world, null, 2) + "\n", { mode: 0o600 });
        await Deno.rename(temp, this.path);
      }
      return result;
    } finally {
      lock.close();
    }
  }
}

/** Reads a world file; a missing file is an empty world. */
export async function readWorldFile(path: string): Promise<MemoryWorldData> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { sandboxes: {} };
    throw error;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new RuntimeError(
      "memory_world",
      `memory world ${path} is not valid JSON: ${(error as Error).message}`,
    );
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new RuntimeError("memory_world", `memory world ${path} must be a JSON object`);
  }
  const world = data as MemoryWorldData;
  world.sandboxes ??= {};
  return world;
}
