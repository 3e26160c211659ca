/** Small pieces of the TrueNAS backend: job events (§4), job errors (§3), the first-boot script. */
import { assertEquals, assertMatch } from "@std/assert";
import { JobTracker } from "../../../../src/backends/truenas/jobs.ts";
import { formatJobError } from "../../../../src/backends/truenas/rpc_errors.ts";
import { bootstrapFiles, rcLocal } from "../../../../src/backends/truenas/bootstrap.ts";
import { parseVersion } from "../../../../src/backends/truenas/client.ts";

Deno.test("§4 an event whose error is neither string nor null is dropped; RUNNING waits", async () => {
  const jobs = new JobTracker();
  const waiting = jobs.wait(5, false);
  jobs.event(5, { state: "RUNNING", error: null });
  jobs.event(5, { state: "FAILED", error: { nested: true } });
  jobs.event("5", { state: "SUCCESS", error: null });
  jobs.event(5, { state: "SUCCESS", result: 42, error: null });
  assertEquals(await waiting, {
    kind: "done",
    row: { state: "SUCCESS", result: 42, error: null, logs_excerpt: null },
  });
});

Deno.test("§4 the last 100 finished jobs are kept; a lost socket wakes every waiter", async () => {
  const jobs = new JobTracker();
  for (let i = 1; i <= 101; i++) jobs.event(i, { state: "SUCCESS", result: i });
  assertEquals((await jobs.wait(101, false)).kind, "done");
  assertEquals((await jobs.wait(1, true)).kind, "disconnected");
  const w = jobs.wait(500, false);
  jobs.disconnected();
  assertEquals(await w, { kind: "disconnected" });
});

Deno.test("§3 job errors: status prefix and traceback dropped, code kept, log excerpt added", () => {
  assertEquals(
    formatJobError(
      "Process exited with status 2: [ENOENT] pool: tank not found\nTraceback (most recent call last):\n x",
      "line one\nline two",
    ),
    "[ENOENT] pool: tank not found (something it needs does not exist on the server) — log: line one …",
  );
  assertEquals(formatJobError(null), "job failed without an error message");
});

Deno.test("§2 version strings: three parts required, build number optional", () => {
  assertEquals(parseVersion("TrueNAS-25.04.2.4")?.minor, 4);
  assertEquals(parseVersion("TrueNAS-SCALE-25.10.1")?.minor, 10);
  assertEquals(parseVersion("TrueNAS-25.04"), null);
});

Deno.test("the first-boot script is valid sh and quotes the user; the key file is 0600 uid 1000", async () => {
  const script = rcLocal("dev");
  const r = await new Deno.Command("sh", { args: ["-n", "-c", script], stderr: "piped" }).output();
  assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
  assertMatch(script, /^user='dev'$/m);
  const [key, rc] = bootstrapFiles("dev", "ssh-ed25519 AAAA k\n");
  assertEquals([key.path, key.mode, key.uid, key.content], [
    "/home/dev/.ssh/authorized_keys",
    0o600,
    1000,
    "ssh-ed25519 AAAA k\n",
  ]);
  assertEquals([rc.path, rc.mode, rc.uid], ["/etc/rc.local", 0o755, -1]);
});
