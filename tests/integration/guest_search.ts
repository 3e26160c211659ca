/**
 * Searching a real guest for a value: every file outside the kernel's pseudo filesystems, and
 * every process environment and command line. The value never appears on a command line or in
 * an environment of the search itself: it travels base64-encoded and reaches grep through a
 * pipe (`-f /dev/fd/3`). {@link searchSelfTest} proves the search can find something.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import type { Backend } from "../../src/backends/backend.ts";
import { toBase64 } from "../../src/lib/shell.ts";

/** Where a value was found in a guest. */
export interface Found {
  /** Files containing it. */
  files: string[];
  /** Process environ/cmdline entries containing it. */
  procs: number;
}

const SEARCH = [
  "set -u",
  'roots=(); for d in /* /.[!.]*; do case "$d" in /proc|/sys|/dev) ;; *) [ -e "$d" ] && roots+=("$d");; esac; done',
  'files=$(grep -rlaF -f /dev/fd/3 "${roots[@]}" 3< <(printf %s "$1" | base64 -d) 2>/dev/null || true)',
  'procs=$(for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr "\\0" "\\n" < "$f"; echo; done 2>/dev/null | grep -caF -f /dev/fd/3 3< <(printf %s "$1" | base64 -d) || true)',
  'printf "PROCS=%s\\n%s\\n" "$procs" "$files"',
].join("\n");

/** Runs a root bash script in the guest. */
async function rootBash(
  backend: Backend,
  name: string,
  script: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await backend.exec(name, {
    argv: ["bash", "-c", script, "bash", ...args],
    user: "root",
    timeoutMs: 180_000,
  });
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** Where `needle` is in the guest. */
export async function searchGuest(backend: Backend, name: string, needle: string): Promise<Found> {
  const r = await rootBash(backend, name, SEARCH, [toBase64(needle)]);
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n").filter((l) => l.length > 0);
  const procs = Number(/^PROCS=(\d+)/.exec(lines[0] ?? "")?.[1] ?? "NaN");
  assert(Number.isFinite(procs), `unexpected search output: ${r.stdout}`);
  return { files: lines.slice(1), procs };
}

/** Proves the search can fail: a marker put in a file and a process environment is found. */
export async function searchSelfTest(backend: Backend, name: string): Promise<void> {
  const marker = `tk-marker-${crypto.randomUUID()}`;
  const placed = await rootBash(
    backend,
    name,
    'printf %s "$1" | base64 -d > /tmp/tk-marker.txt; ' +
      'nohup env TK_MARKER="$(cat /tmp/tk-marker.txt)" sleep 120 >/dev/null 2>&1 & ' +
      "for i in $(seq 100); do pgrep -f 'sleep 120' >/dev/null && break; sleep 0.05; done",
    [toBase64(marker)],
  );
  assertEquals(placed.code, 0, placed.stderr);
  const found = await searchGuest(backend, name, marker);
  assert(found.files.includes("/tmp/tk-marker.txt"), `self-test: file not found: ${found.files}`);
  assert(found.procs >= 1, "self-test: process environment not searched");
  await rootBash(backend, name, "rm -f /tmp/tk-marker.txt; pkill -f 'sleep 120' || true", []);
}
