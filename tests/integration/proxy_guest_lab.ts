/**
 * Helpers of the proxy lab tests: running scripts in a lab guest, searching a guest's whole
 * filesystem and every process for a value without ever putting it on a command line (and a
 * self-test proving the search can find), and a read-only "dumb HTTP" git server for clones
 * through the proxy.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import type { Backend } from "../../src/backends/backend.ts";
import { toBase64 } from "../../src/lib/shell.ts";

const decoder = new TextDecoder();

/** Runs `script` with bash in the guest; returns exit code and output. */
export type GuestRun = (
  script: string,
  options?: { env?: Record<string, string>; root?: boolean; args?: string[] },
) => Promise<{ code: number; stdout: string; stderr: string }>;

/** A {@link GuestRun} for sandbox `name` of `backend`. */
export function guestRunner(backend: Backend, name: string): GuestRun {
  return async (script, options = {}) => {
    const r = await backend.exec(name, {
      argv: ["bash", "-c", script, "bash", ...(options.args ?? [])],
      env: options.env,
      user: options.root ? "root" : "user",
      timeoutMs: 120_000,
    });
    return { code: r.code, stdout: decoder.decode(r.stdout), stderr: decoder.decode(r.stderr) };
  };
}

/**
 * Searches the guest for `needle` without ever putting it on a command line or in an
 * environment: it travels base64-encoded and reaches grep through a pipe (`-f /dev/fd/3`).
 * Returns the files that contain it and the number of process environ/cmdline entries that do.
 */
export async function searchGuest(
  run: GuestRun,
  needle: string,
): Promise<{ files: string[]; procs: number }> {
  const script = [
    "set -u",
    // Every top-level directory but the kernel's pseudo filesystems (/proc, /sys, /dev).
    'roots=(); for d in /* /.[!.]*; do case "$d" in /proc|/sys|/dev) ;; *) [ -e "$d" ] && roots+=("$d");; esac; done',
    'files=$(grep -rlaF -f /dev/fd/3 "${roots[@]}" 3< <(printf %s "$1" | base64 -d) 2>/dev/null || true)',
    'procs=$(for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr "\\0" "\\n" < "$f"; echo; done 2>/dev/null | grep -caF -f /dev/fd/3 3< <(printf %s "$1" | base64 -d) || true)',
    'printf "PROCS=%s\\n%s\\n" "$procs" "$files"',
  ].join("\n");
  const r = await run(script, { root: true, args: [toBase64(needle)] });
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n").filter((l) => l.length > 0);
  const procs = Number(/^PROCS=(\d+)/.exec(lines[0] ?? "")?.[1] ?? "NaN");
  assert(Number.isFinite(procs), `unexpected search output: ${r.stdout}`);
  return { files: lines.slice(1), procs };
}

/** Proves the search can fail: a marker placed in a file and a process environment is found. */
export async function searchSelfTest(run: GuestRun): Promise<void> {
  const marker = `tk-marker-${crypto.randomUUID()}`;
  const placed = await run(
    'printf %s "$1" | base64 -d > /tmp/tk-marker.txt; ' +
      'nohup env TK_MARKER="$(cat /tmp/tk-marker.txt)" sleep 120 >/dev/null 2>&1 & sleep 0.2',
    { root: true, args: [toBase64(marker)] },
  );
  assertEquals(placed.code, 0, placed.stderr);
  const found = await searchGuest(run, marker);
  assert(found.files.includes("/tmp/tk-marker.txt"), `self-test: file not found: ${found.files}`);
  assert(found.procs >= 1, "self-test: process environment not searched");
  await run("rm -f /tmp/tk-marker.txt; pkill -f 'sleep 120' || true", { root: true });
}

/** A read-only "dumb HTTP" git server for one bare repository. */
export interface GitHttpServer {
  /** `http://host:port/repo.git`. */
  url: string;
  port: number;
  /** The commit the repository's main branch points at. */
  head: string;
  close(): Promise<void>;
}

/** Serves a fresh one-commit repository over dumb HTTP on `hostname`. */
export async function gitHttpServer(hostname: string): Promise<GitHttpServer> {
  const dir = await Deno.makeTempDir({ prefix: "tk-git-http-" });
  const git = async (args: string[], cwd: string) => {
    const out = await new Deno.Command("git", {
      args: ["-c", "user.name=t", "-c", "user.email=t@example.invalid", ...args],
      cwd,
      env: { GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.success, decoder.decode(out.stderr));
    return decoder.decode(out.stdout).trim();
  };
  await git(["init", "-q", "-b", "main", `${dir}/work`], dir);
  await Deno.writeTextFile(`${dir}/work/README`, "cloned through the proxy\n");
  await git(["add", "README"], `${dir}/work`);
  await git(["commit", "-q", "-m", "init"], `${dir}/work`);
  await git(["clone", "-q", "--bare", `${dir}/work`, `${dir}/repo.git`], dir);
  await git(["update-server-info"], `${dir}/repo.git`);
  const head = await git(["rev-parse", "HEAD"], `${dir}/work`);
  const server = Deno.serve({ hostname, port: 0, onListen: () => {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (!path.startsWith("/repo.git/") || path.includes("..")) {
      return new Response("no", { status: 404 });
    }
    try {
      return new Response(await Deno.readFile(`${dir}${path}`));
    } catch {
      return new Response("missing", { status: 404 });
    }
  });
  const port = server.addr.port;
  return {
    url: `http://${hostname}:${port}/repo.git`,
    port,
    head,
    async close() {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
