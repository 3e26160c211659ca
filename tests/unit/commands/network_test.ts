/**
 * `tachikoma network …` as a user runs it: the real CLI in a subprocess over a file-backed
 * memory world: show/set/allow/deny with --json and text, bad input (one line, exit 2/3,
 * nothing changed), and the egress log.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { NAME, oneSandboxWorld } from "./one_sandbox.ts";
import { FileEgressLog } from "../../../src/proxy/egress_log.ts";

const world = oneSandboxWorld;

Deno.test("tachikoma network show/set/allow/deny/log through the CLI", async () => {
  await using w = await world();
  const shown = await w.cli("--json", "network", "show");
  assertEquals(shown.code, 0, shown.stderr);
  const doc = JSON.parse(shown.stdout);
  assertEquals([doc.name, doc.mode, doc.source], [NAME, "agent", "config"]);

  const set = await w.cli("--json", "network", "set", "feat", "allowlist");
  assertEquals(set.code, 0, set.stderr);
  assertEquals(JSON.parse(set.stdout).mode, "allowlist");
  assertEquals(JSON.parse(set.stdout).changed, true);
  const allow = await w.cli("network", "allow", NAME, "*.Example.com:443");
  assertEquals(allow.code, 0, allow.stderr);
  assertStringIncludes(allow.stdout, "allowed *.Example.com:443");
  assertStringIncludes(allow.stdout, "allow: *.example.com:443");
  const state = () => Deno.readTextFile(`${w.configDir}/state.json`);
  assertEquals(JSON.parse(await state()).vms[0].egress, {
    mode: "allowlist",
    allow: ["*.example.com:443"],
  });

  const before = await state();
  for (
    const [args, code, line] of [
      [["network", "set", NAME, "open"], 2, "got 'open'"],
      [["network", "allow", NAME, "$(touch /tmp/x) `id`"], 2, "invalid host"],
      [["network", "allow", NAME, "10.0.0.0/33"], 2, "invalid host"],
      [["network", "set", "no-such-sandbox", "none"], 3, "no-such-sandbox"],
      [["network", "show", "no-such-sandbox"], 3, "no-such-sandbox"],
    ] as const
  ) {
    const r = await w.cli(...args);
    assertEquals(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assertEquals(r.stdout, "");
    assertStringIncludes(r.stderr.split("\n")[0], line);
  }
  assertEquals(await state(), before, "nothing changed");

  const deny = await w.cli("--json", "network", "deny", NAME, "*.example.com:443");
  assertEquals(JSON.parse(deny.stdout).allow, []);

  const empty = await w.cli("network", "log");
  assertEquals(empty.stdout, `No egress through the proxy recorded for ${NAME}.\n`);
  await new FileEgressLog(w.configDir).record({
    time: "2026-05-01T12:00:00.000Z",
    sandbox: NAME,
    method: "CONNECT",
    host: "evil.example",
    port: 443,
    verdict: "refused",
    reason: "not on the egress allowlist",
  });
  const logged = await w.cli("--json", "network", "log", "feat");
  assertEquals(logged.code, 0, logged.stderr);
  const entries = JSON.parse(logged.stdout).entries;
  assertEquals(entries.map((e: { host: string }) => e.host), ["evil.example"]);
  const text = await w.cli("network", "log");
  assert(text.stdout.includes("refused  CONNECT evil.example:443"), text.stdout);
});
