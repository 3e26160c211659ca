import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { NotImplementedError } from "../../../src/lib/errors.ts";
import { runCli } from "./helpers.ts";
import { COMMAND_STATUS, TREE } from "../../../src/cli/program.ts";
import { runCommandLine } from "../../../src/cli/parser.ts";
import { command, group, walk } from "../../../src/cli/tree.ts";
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
  "setup",
  "config",
  "ssh",
  "proxy",
  "mcp",
  "completions",
  "version",
];

const ALIASES: Record<string, string[]> = {
  halt: ["stop"],
  destroy: ["delete"],
  list: ["ls"],
  checkpoint: ["cp"],
};

Deno.test("every command is registered with help text, aliases as specified", () => {
  const names = Object.keys(TREE.routes);
  for (const name of REQUIRED) {
    assert(names.includes(name), `missing command ${name}`);
    assert(TREE.routes[name].brief.length > 8, `${name} has no real help text`);
    assertEquals(TREE.routes[name].aliases ?? [], ALIASES[name] ?? [], name);
    assert(COMMAND_STATUS[name], `no status for ${name}`);
  }
  for (const { path, node } of walk(TREE)) {
    assert(node.brief.length > 3, `${path.join(" ")} has no help text`);
  }
});

Deno.test("`tachikoma --help` lists every command, every alias and the global flags", async () => {
  const h = await runCli(["--help"]);
  assertEquals(h.code, 0);
  assertEquals(h.stderr, "");
  assertStringIncludes(
    h.stdout,
    "Usage: tachikoma <command> [flags]\n       tachikoma [flags] [branch]",
  );
  for (const name of REQUIRED) {
    const names = [name, ...ALIASES[name] ?? []].join("|");
    assertMatch(h.stdout, new RegExp(`^  ${names.replace("|", "\\|")}[ <\\[]`, "m"), name);
  }
  for (const flag of ["-V, --version", "--json", "-v, --verbose", "-q, --quiet", "--no-color"]) {
    assertStringIncludes(h.stdout, flag);
  }
  assertStringIncludes(h.stdout, "--backend <name>  sandbox engine to use (tart, incus, truenas)");
  assertStringIncludes(h.stdout, "--no-attach");
});

Deno.test("every command and group has its own --help (in process, nothing runs)", async () => {
  let out = "";
  const options = {
    makeContext: (): CommandContext => {
      throw new Error("--help must not run a command");
    },
    stdout: (t: string) => void (out += t),
  };
  for (const { path, node } of walk(TREE)) {
    out = "";
    await runCommandLine(TREE, [...path, "--help"], options);
    const names = [...path.slice(0, -1), [path.at(-1), ...node.aliases ?? []].join("|")];
    assertStringIncludes(out, `Usage: tachikoma ${names.join(" ")} `, path.join(" "));
    assertStringIncludes(out, node.description ?? node.brief, path.join(" "));
    if (node.kind === "command") assertStringIncludes(out, "--json", path.join(" "));
  }
});

Deno.test("global flags are accepted before and after the command (the real tree)", async () => {
  const seen: GlobalOptions[] = [];
  const options = {
    makeContext: (globals: GlobalOptions) => {
      seen.push(globals);
      return { out: { raw() {}, result() {} } } as unknown as CommandContext;
    },
    stdout: () => {},
  };
  await runCommandLine(TREE, ["--json", "-v", "version"], options);
  await runCommandLine(
    TREE,
    ["version", "--json", "--backend", "incus", "--no-color", "-q"],
    options,
  );
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

Deno.test("every command of the tree is built; an unbuilt one exits 70 with one line", async () => {
  const todo = [...walk(TREE)].filter(({ node }) => node.kind === "command" && node.notImplemented);
  assertEquals(todo.map(({ path }) => path.join(" ")), []);
  for (const [name, status] of Object.entries(COMMAND_STATUS)) {
    assertEquals(status === "not implemented", !!TREE.routes[name].notImplemented, name);
  }
  // The mechanism, on a tree with a command listed but not built: help says so, running it is
  // NotImplementedError (exit 70) before any context is made.
  const tree = group({
    brief: "a test tree",
    routes: {
      later: command({
        brief: "comes later",
        notImplemented: true,
        run: () => Promise.reject(new Error("must not run")),
      }),
    },
  });
  let out = "";
  const options = {
    makeContext: (): CommandContext => {
      throw new Error("no context for an unbuilt command");
    },
    stdout: (t: string) => void (out += t),
  };
  await runCommandLine(tree, ["--help"], options);
  assertStringIncludes(out, "(not implemented yet)");
  const e = await assertRejects(
    () => runCommandLine(tree, ["later", "--json"], options),
    NotImplementedError,
    "'later' is not implemented yet",
  );
  assertEquals(e.exitCode, 70);
});

Deno.test("usage errors exit 2 with one line and a hint; --json errors are one JSON document", async () => {
  const r = await runCli(["list", "--bogus"]);
  assertEquals(r.code, 2);
  assertEquals(r.stdout, "");
  assertEquals(r.stderr, "tachikoma: unknown flag --bogus\nhint: see `tachikoma list --help`\n");
  const typo = await runCli(["checkpoint", "craete"]);
  assertEquals(typo.code, 2);
  assertStringIncludes(typo.stderr, "unknown command 'craete' (did you mean create?)");
  const j = await runCli(["--json", "completions", "tcsh"]);
  assertEquals(j.code, 2);
  assertEquals(j.stdout, "");
  const doc = JSON.parse(j.stderr);
  assertEquals(doc.error.code, "usage");
  assertEquals(doc.error.message, "<shell> must be one of bash, zsh, fish, got 'tcsh'");
  assertEquals(doc.error.hint, "see `tachikoma completions --help`");
  const after = await runCli(["prune", "--days", "ten", "--json"]);
  assertEquals(after.code, 2);
  assertEquals(JSON.parse(after.stderr).error.message, "--days must be a whole number, got 'ten'");
  const port = await runCli(["proxy", "start", "--port", "80x"]);
  assertEquals(port.code, 2);
  assertStringIncludes(port.stderr, "--port must be a whole number, got '80x'");
  const backend = await runCli(["--backend", "vbox", "list"]);
  assertEquals(backend.code, 2);
  assertStringIncludes(backend.stderr, "--backend must be one of tart, incus, truenas, got 'vbox'");
});

Deno.test("--help and --version print to stdout and exit 0", async () => {
  const h = await runCli(["list", "--help"]);
  assertEquals(h.code, 0);
  assertStringIncludes(h.stdout, "Usage: tachikoma list|ls [flags]");
  assertEquals(h.stderr, "");
  for (const flag of ["-V", "--version"]) {
    const v = await runCli([flag]);
    assertEquals(v.code, 0);
    assertMatch(v.stdout, /^\d+\.\d+\.\d+/);
    assertEquals(v.stderr, "");
  }
  const j = await runCli(["version", "--json"]);
  assertEquals(typeof JSON.parse(j.stdout).version, "string");
});

Deno.test("errors never use color with NO_COLOR or --no-color", async () => {
  const a = await runCli(["mcp"], { env: { NO_COLOR: "1" } });
  assert(!a.stderr.includes("\x1b["));
  const b = await runCli(["mcp", "--no-color"]);
  assert(!b.stderr.includes("\x1b["));
});
