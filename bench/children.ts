/**
 * Child processes of the proxy benches: the local upstream fixture and stopping a child.
 *
 * @module
 */
export { freePort } from "../tests/testing/free_port.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** A child process and how to stop it. */
export interface Child {
  proc: Deno.ChildProcess;
  stop(): Promise<void>;
}

/** Reads `reader` until `done(text so far)`; the stream ending first is an error naming `what`. */
export async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  done: (text: string) => boolean,
  what: string,
): Promise<string> {
  let text = "";
  while (!done(text)) {
    const r = await reader.read();
    if (r.done) throw new Error(`${what} ended early: ${JSON.stringify(text)}`);
    text += r.value;
  }
  return text;
}

/** Stops `proc` with SIGTERM and waits for it; then `after`. */
export function stopper(proc: Deno.ChildProcess, after?: () => Promise<void>): Child {
  return {
    proc,
    async stop() {
      proc.kill("SIGTERM");
      await proc.stdout.cancel().catch(() => {});
      await proc.status;
      await after?.();
    },
  };
}

/** Starts `tests/fixtures/upstream.ts` (its own process, `env` added); its port. */
export async function startUpstream(
  env: Record<string, string> = {},
): Promise<{ child: Child; port: number }> {
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      "--frozen",
      `--config=${ROOT}deno.json`,
      `${ROOT}tests/fixtures/upstream.ts`,
    ],
    env,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const line = await readUntil(reader, (t) => t.includes("\n"), "the upstream fixture");
  reader.releaseLock();
  return { port: JSON.parse(line.split("\n")[0]).port, child: stopper(proc) };
}
