/**
 * Streamed stdin (src/lib/stdin.ts) through the real process runner: the command sees data
 * before the input ends, and a command that stops reading ends the run even though the input
 * stays open (it is cancelled, never waited for).
 */
import { assertEquals } from "@std/assert";
import { DenoCommandRunner } from "../../../src/lib/process.ts";
import { pumpStdin } from "../../../src/lib/stdin.ts";

const enc = new TextEncoder();

/** A stream the test writes to by hand; `cancelled` resolves when its reader gives up. */
function manualStream() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let onCancel!: () => void;
  const cancelled = new Promise<void>((r) => (onCancel = r));
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel() {
      onCancel();
    },
  });
  return {
    stream,
    cancelled,
    push: (text: string) => controller.enqueue(enc.encode(text)),
    end: () => controller.close(),
  };
}

Deno.test("stdin: a stream reaches the command as it is written; EOF ends it", async () => {
  const dir = await Deno.makeTempDir();
  const fifo = `${dir}/progress`;
  const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assertEquals(made.code, 0);
  const input = manualStream();
  // Safety net only: a runner that waited for EOF never lets the command report; unblock the
  // reader after a generous delay so the assertion fails instead of hanging.
  const safety = setTimeout(() => {
    Deno.writeTextFile(fifo, "the command never saw its first line\n").catch(() => {});
  }, 30_000);
  try {
    const running = new DenoCommandRunner().run(
      "sh",
      ["-c", 'read a; echo "got:$a" > "$1"; read b; echo "then:$b"', "sh", fifo],
      { stdin: input.stream },
    );
    input.push("one\n");
    // Returns when the command has written its progress line: stdin is still open here.
    assertEquals(await Deno.readTextFile(fifo), "got:one\n");
    input.push("two\n");
    input.end();
    const r = await running;
    assertEquals([r.code, r.stdout], [0, "then:two\n"]);
  } finally {
    clearTimeout(safety);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stdin: a command that stops reading ends the run; the open input is cancelled", async () => {
  const input = manualStream();
  input.push("abcdefgh");
  const r = await new DenoCommandRunner().run("head", ["-c", "3"], { stdin: input.stream });
  assertEquals([r.code, r.stdout], [0, "abc"]);
  await input.cancelled; // never closed by the test: the runner let go of it
});

Deno.test("stdin: pumpStdin delivers bytes/text at once, streams chunk by chunk, ends once", async () => {
  const got: string[] = [];
  let ends = 0;
  const sink = {
    write: (c: Uint8Array) => void got.push(new TextDecoder().decode(c)),
    end: () => void ends++,
  };
  await pumpStdin("text", sink);
  await pumpStdin(enc.encode("bytes"), sink);
  const input = manualStream();
  const pumping = pumpStdin(input.stream, sink);
  input.push("a");
  input.push("b");
  input.end();
  await pumping;
  assertEquals([got, ends], [["text", "bytes", "a", "b"], 3]);
  // Stopped (the command ended): the stream is cancelled and the sink ended.
  const open = manualStream();
  const stop = new AbortController();
  const stopped = pumpStdin(open.stream, sink, stop.signal);
  stop.abort();
  await Promise.all([stopped, open.cancelled]);
  assertEquals(ends, 4);
});
