import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { runCli } from "./helpers.ts";
import { buildProgram, COMMAND_STATUS } from "../../../src/cli/program.ts";
import type { CommandContext, GlobalOptions } from "../../../src/commands/context.ts";

const REQUIRED = [
  "spawn",
  "enter",
  "exec",
  "halt",
  "suspend",
  "destroy",
  "list",
  "status",
  "cd",
  "pr",
  "prune",
  "image",
  "checkpoint",
  "network",
  "doctor",
  "config",
  "ssh",
  "proxy",
  "mcp",
  "completions",
  "version",
];

function tree() {
  return buildProgram(() => {
    throw new Error("no actions in this test");
  });
}

Deno.test("every command is registered with help text, aliases as specified", () => {
  const program = tree();
  const names = program.commands.map((c) => c.name());
  for (const name of REQUIRED) {
    assert(names.includes(name), `missing command ${name}`);
    const cmd = program.commands.find((c) => c.name() === name)!;
    assert(cmd.description().length > 8, `${name} has no real help text`);
  }
  const alias = (n: string) => program.commands.find((c) => c.name() === n)!.aliases();
  assertEquals(alias("halt"), ["stop"]);
  assertEquals(alias("destroy"), ["delete"]);
  assertEquals(alias("list"), ["ls"]);
  for (const name of REQUIRED) assert(COMMAND_STATUS[name], `no status for ${name}`);
});

Deno.test("global flags are accepted before and after the subcommand", async () => {
  const seen: GlobalOptions[] = [];
  const program = buildProgram((globals) => {
    seen.push(globals);
    return { out: { raw() {}, result() {} } } as unknown as CommandContext;
  });
  program.exitOverride();
  await program.parseAsync(["--json", "-v", "version"], { from: "user" });
  const p2 = buildProgram((globals) => {
    seen.push(globals);
    return { out: { raw() {}, result() {} } } as unknown as CommandContext;
  });
  p2.exitOverride();
  await p2.parseAsync(["version", "--json", "--backend", "incus", "--no-color", "-q"], {
    from: "user",
  });
  assertEquals(seen[0].json, true);
  assertEquals(seen[0].verbose, true);
  assertEquals(seen[1], {
    json: true,
    verbose: false,
    quiet: true,
    color: false,
    backend: "incus",
  });
});

Deno.test("unimplemented commands exit 70 with one line on stderr", async () => {
  const unimplemented = Object.entries(COMMAND_STATUS).filter(([, s]) => s === "not implemented");
  for (const [name] of unimplemented) {
    const args = name === "image"
      ? ["image", "list"]
      : name === "checkpoint"
      ? ["checkpoint", "list"]
      : name === "network"
      ? ["network", "show"]
      : name === "ssh"
      ? ["ssh", "install"]
      : name === "proxy"
      ? ["proxy", "status"]
      : [name];
    const r = await runCli(args);
    assertEquals(r.code, 70, `${args.join(" ")}: ${r.stderr}`);
    assertEquals(r.stdout, "");
    assertMatch(r.stderr.trim(), /^tachikoma: '[a-z ]+' is not implemented yet$/);
  }
});

Deno.test("usage errors exit 2; --json errors are one JSON document on stderr", async () => {
  const r = await runCli(["list", "--bogus"]);
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "unknown option '--bogus'");
  const j = await runCli(["--json", "completions", "tcsh"]);
  assertEquals(j.code, 2);
  assertEquals(j.stdout, "");
  const doc = JSON.parse(j.stderr);
  assertEquals(doc.error.code, "usage");
  assertStringIncludes(doc.error.message, "tcsh");
  const bad = await runCli(["prune", "--days", "ten"]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, "--days must be a whole number, got 'ten'");
});

Deno.test("--help and --version print to stdout and exit 0", async () => {
  const h = await runCli(["--help"]);
  assertEquals(h.code, 0);
  assertStringIncludes(h.stdout, "Usage: tachikoma");
  assertEquals(h.stderr, "");
  const v = await runCli(["--version"]);
  assertEquals(v.code, 0);
  assertMatch(v.stdout, /^\d+\.\d+\.\d+/);
  const j = await runCli(["version", "--json"]);
  assertEquals(typeof JSON.parse(j.stdout).version, "string");
});

Deno.test("errors never use color with NO_COLOR or --no-color", async () => {
  const a = await runCli(["mcp"], { env: { NO_COLOR: "1" } });
  assert(!a.stderr.includes("\x1b["));
  const b = await runCli(["mcp", "--no-color"]);
  assert(!b.stderr.includes("\x1b["));
});
