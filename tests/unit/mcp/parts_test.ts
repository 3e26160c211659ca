/** The MCP server's small parts: capped output, the progress reporter, error results. */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { CappedOutput } from "../../../src/mcp/capped.ts";
import { type ProgressParams } from "../../../src/mcp/progress.ts";
import { CallTracker, errorResult, McpProgressReporter } from "../../../src/mcp/mod.ts";
import { NotFoundError, RuntimeError } from "../../../src/lib/errors.ts";
import { clearSecrets, registerSecret } from "../../../src/lib/redact.ts";
import { FakeClock } from "../../testing/fake_clock.ts";

const enc = new TextEncoder();

Deno.test("CappedOutput keeps everything under the cap", () => {
  const c = new CappedOutput(10);
  c.push(enc.encode("abc"));
  c.push(enc.encode("def"));
  assertEquals([c.text(), c.total, c.truncated], ["abcdef", 6, false]);
  c.push(enc.encode("ghij"));
  assertEquals([c.text(), c.truncated], ["abcdefghij", false]);
});

Deno.test("CappedOutput keeps head and tail across chunk sizes and counts the rest", () => {
  for (const chunk of [1, 3, 7, 1000]) {
    const c = new CappedOutput(10);
    const all = "0123456789".repeat(10) + "END";
    for (let i = 0; i < all.length; i += chunk) c.push(enc.encode(all.slice(i, i + chunk)));
    assertEquals(c.total, 103);
    assert(c.truncated);
    assertEquals(c.text(), "01234\n[… 93 bytes omitted …]\n89END", `chunk ${chunk}`);
  }
  const c = new CappedOutput(10);
  c.push(enc.encode("x".repeat(50)));
  c.reset();
  c.push(enc.encode("fresh"));
  assertEquals([c.text(), c.total], ["fresh", 5]);
});

Deno.test("McpProgressReporter: one increasing notification per event, only with a token", () => {
  const sent: ProgressParams[] = [];
  const clock = new FakeClock(0);
  const reporter = new McpProgressReporter("tok", (p) => {
    sent.push(p);
    return Promise.resolve();
  }, () => clock.now());
  const step = reporter.step("waiting for boot");
  clock.advance(1500);
  step.done("10.0.0.2");
  reporter.note("created branch x");
  reporter.step("provision: keys").fail("boom");
  assertEquals(sent.map((p) => [p.progressToken, p.progress, p.message]), [
    ["tok", 1, "waiting for boot"],
    ["tok", 2, "waiting for boot: done (10.0.0.2) — 1.5 s"],
    ["tok", 3, "created branch x"],
    ["tok", 4, "provision: keys"],
    ["tok", 5, "provision: keys: failed (boom) — 0 ms"],
  ]);
  const silent = new McpProgressReporter(undefined, () => {
    throw new Error("must not send");
  });
  silent.step("x").done();
  assertEquals(silent.count, 0);
});

Deno.test("McpProgressReporter: a failing send never breaks the work; secrets are redacted", async () => {
  registerSecret("sk-ant-secret-value-123");
  try {
    const sent: string[] = [];
    const reporter = new McpProgressReporter(7, (p) => {
      sent.push(p.message);
      return Promise.reject(new Error("client gone"));
    });
    reporter.note("using key sk-ant-secret-value-123");
    await Promise.resolve();
    assertEquals(sent.length, 1);
    assert(!sent[0].includes("sk-ant-secret-value-123"), sent[0]);
  } finally {
    clearSecrets();
  }
});

Deno.test("errorResult: message, hint and code for typed errors; plain message otherwise", () => {
  const typed = errorResult(new NotFoundError("no sandbox matches 'x'", { hint: "list them" }));
  assertEquals(typed.isError, true);
  const text = (typed.content[0] as { text: string }).text;
  assertEquals(text, "no sandbox matches 'x'\nhint: list them\n(error code: not_found)");
  const plain = errorResult(new Error("boom"));
  assertEquals((plain.content[0] as { text: string }).text, "boom");
  registerSecret("hunter2-very-secret");
  try {
    const leaky = errorResult(new RuntimeError("x", "token hunter2-very-secret rejected"));
    assertStringIncludes((leaky.content[0] as { text: string }).text, "rejected");
    assert(!(leaky.content[0] as { text: string }).text.includes("hunter2-very-secret"));
  } finally {
    clearSecrets();
  }
});

Deno.test("CallTracker: stop aborts running calls and waits for them", async () => {
  const tracker = new CallTracker();
  let sawAbort = false;
  const running = tracker.track(() =>
    new Promise<void>((resolve) => {
      tracker.signal.addEventListener("abort", () => {
        sawAbort = true;
        resolve();
      });
    })
  );
  assertEquals(tracker.size, 1);
  const clock = new FakeClock(0);
  await tracker.stop(5000, (ms, signal) => clock.sleep(ms, signal));
  await running;
  assert(sawAbort);
  assertEquals(tracker.size, 0);
});
