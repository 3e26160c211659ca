/**
 * The parser (`src/cli/parser.ts`) against a small tree of its own: what reaches a command, the
 * global flags wherever they are, `--`, group defaults, help and every kind of usage error.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { prescan, runCommandLine } from "../../../src/cli/parser.ts";
import {
  arg,
  bool,
  choiceArg,
  command,
  group,
  negated,
  optionalArg,
  rest,
  text,
  wholeNumber,
} from "../../../src/cli/tree.ts";
import type { CommandContext, GlobalOptions } from "../../../src/commands/context.ts";
import { NotFoundError, NotImplementedError, UsageError } from "../../../src/lib/errors.ts";

interface Call {
  command: string;
  globals: GlobalOptions;
  flags: Record<string, unknown>;
  args: unknown[];
}

function harness() {
  const calls: Call[] = [];
  let globals: GlobalOptions | undefined;
  const record =
    (name: string) => (_ctx: CommandContext, flags: object, args: readonly unknown[]) => {
      calls.push({ command: name, globals: globals!, flags: { ...flags }, args: [...args] });
      return Promise.resolve();
    };
  const tree = group({
    brief: "test tree",
    description: "A test tree.",
    default: "spawn",
    routes: {
      spawn: command({
        brief: "spawn a branch",
        flags: { attach: negated("do not attach"), reprovision: bool("again") },
        args: [optionalArg("branch", "the branch")],
        run: record("spawn"),
      }),
      exec: command({
        brief: "run a command",
        flags: { name: text("sandbox", { short: "n" }), workdir: text("dir", { short: "w" }) },
        args: [rest("command", "command and arguments")],
        run: record("exec"),
      }),
      list: command({
        brief: "list things",
        aliases: ["ls"],
        flags: { all: bool("everything", "a"), days: wholeNumber("age", "days") },
        run: record("list"),
      }),
      completions: command({
        brief: "a script",
        args: [choiceArg("shell", "target shell", ["bash", "zsh", "fish"])],
        run: record("completions"),
      }),
      fail: command({
        brief: "always fails",
        run: () => Promise.reject(new NotFoundError("no sandbox matches 'x'")),
      }),
      checkpoint: group({
        brief: "checkpoints",
        aliases: ["cp"],
        routes: {
          create: command({
            brief: "take one",
            args: [optionalArg("name")],
            run: record("cp create"),
          }),
          restore: command({
            brief: "restore one",
            args: [arg("name"), arg("label")],
            run: record("cp restore"),
          }),
        },
      }),
      config: group({
        brief: "configuration",
        default: "show",
        routes: {
          show: command({ brief: "show it", hidden: true, run: record("config show") }),
          get: command({ brief: "one value", args: [arg("key")], run: record("config get") }),
        },
      }),
      image: group({
        brief: "images",
        notImplemented: true,
        routes: {
          list: command({ brief: "list images", notImplemented: true, run: record("image list") }),
        },
      }),
    },
  });
  let stdout = "";
  const options = {
    makeContext: (g: GlobalOptions) => {
      globals = g;
      return {} as CommandContext;
    },
    stdout: (t: string) => void (stdout += t),
  };
  return {
    calls,
    tree,
    stdout: () => stdout,
    run: (argv: string[]) => runCommandLine(tree, argv, options),
    usage: (argv: string[]) => assertRejects(() => runCommandLine(tree, argv, options), UsageError),
  };
}

const DEFAULTS: GlobalOptions = {
  json: false,
  verbose: false,
  quiet: false,
  color: true,
  backend: undefined,
};

Deno.test("parser: the bare form runs the default command, with its flags and argument", async () => {
  const h = harness();
  await h.run([]);
  await h.run(["feature-x"]);
  await h.run(["--no-attach", "feat/ünï code", "--reprovision"]);
  await h.run(["--json", "feature-y"]);
  assertEquals(h.calls.map((c) => [c.command, c.flags, c.args]), [
    ["spawn", { attach: true, reprovision: false }, [undefined]],
    ["spawn", { attach: true, reprovision: false }, ["feature-x"]],
    ["spawn", { attach: false, reprovision: true }, ["feat/ünï code"]],
    ["spawn", { attach: true, reprovision: false }, ["feature-y"]],
  ]);
  assertEquals(h.calls[3].globals.json, true);
  const ls = prescan(h.tree, ["ls", "-a"]);
  assertEquals([ls.path, ls.rest], [["list"], ["-a"]]);
  const bare = prescan(h.tree, ["--json", "-x"]);
  assertEquals([bare.path, bare.typed, bare.rest, bare.globals], [["spawn"], [], ["-x"], {
    json: true,
  }]);
});

Deno.test("parser: global flags before or after the command, merged; never after --", async () => {
  const h = harness();
  await h.run(["--json", "-v", "list"]);
  await h.run(["list", "--json", "--backend", "incus", "--no-color", "-q"]);
  await h.run(["-qv", "--backend=tart", "list", "--backend=incus"]);
  await h.run(["cp", "--json", "create", "x"]);
  await h.run(["exec", "-n", "e", "--", "ls", "-la", "--json", "-v", "--", "$(id)"]);
  await h.run(["--json", "exec", "--", "true"]);
  assertEquals(h.calls[0].globals, { ...DEFAULTS, json: true, verbose: true });
  assertEquals(h.calls[1].globals, {
    json: true,
    verbose: false,
    quiet: true,
    color: false,
    backend: "incus",
  });
  // The later --backend wins; -qv sets both.
  assertEquals(h.calls[2].globals, { ...DEFAULTS, quiet: true, verbose: true, backend: "incus" });
  // Global flags between a group and its subcommand.
  assertEquals([h.calls[3].command, h.calls[3].globals.json, h.calls[3].args], [
    "cp create",
    true,
    ["x"],
  ]);
  // Everything after -- is the command, words that look like flags included.
  assertEquals(h.calls[4].args, [["ls", "-la", "--json", "-v", "--", "$(id)"]]);
  assertEquals(h.calls[4].flags, { name: "e", workdir: undefined });
  assertEquals(h.calls[4].globals, DEFAULTS);
  assertEquals(h.calls[5].globals.json, true);
  assertEquals(h.calls[5].args, [["true"]]);
});

Deno.test("parser: aliases of commands and groups; a group's default route", async () => {
  const h = harness();
  await h.run(["ls", "-a"]);
  await h.run(["cp", "restore", "s", "l"]);
  await h.run(["config"]);
  await h.run(["config", "--json"]);
  await h.run(["config", "get", "vm_cpus"]);
  assertEquals(h.calls.map((c) => [c.command, c.args]), [
    ["list", []],
    ["cp restore", ["s", "l"]],
    ["config show", []],
    ["config show", []],
    ["config get", ["vm_cpus"]],
  ]);
  assertEquals(h.calls[0].flags, { all: true, days: undefined });
  assertEquals(h.calls[3].globals.json, true);
});

Deno.test("parser: usage errors are UsageErrors with one line and a hint to the right help", async () => {
  const h = harness();
  const cases: [string[], RegExp, string][] = [
    [["list", "--bogus"], /^unknown flag --bogus$/, "tachikoma list --help"],
    [["list", "--al"], /^unknown flag --al \(did you mean --all\?\)$/, "tachikoma list --help"],
    [["list", "--days", "ten"], /^--days must be a whole number, got 'ten'$/, "tachikoma list"],
    [["list", "--days"], /^--days needs a value$/, "tachikoma list --help"],
    [["list", "extra"], /^unexpected argument 'extra'$/, "tachikoma list --help"],
    [
      ["completions", "tcsh"],
      /^<shell> must be one of bash, zsh, fish, got 'tcsh'$/,
      "completions",
    ],
    [["exec"], /^missing argument <command>$/, "tachikoma exec --help"],
    [["cp", "restore", "s"], /^missing argument <label>$/, "tachikoma checkpoint restore --help"],
    [
      ["checkpoint", "craete"],
      /^unknown command 'craete' \(did you mean create\?\)$/,
      "checkpoint",
    ],
    [["checkpoint"], /^'checkpoint' needs a command: create, restore$/, "checkpoint --help"],
    [
      ["--backend", "foo", "list"],
      /^--backend must be one of tart, incus, truenas, got 'foo'$/,
      "",
    ],
    [
      ["list", "--backend", "foo"],
      /^--backend must be one of tart, incus, truenas, got 'foo'$/,
      "",
    ],
    [["--backend"], /^--backend needs a value$/, "tachikoma --help"],
    [["--bogus"], /^unknown flag --bogus$/, "tachikoma --help"],
    [["list", "--all=yes"], /^--all takes no value$/, "tachikoma list --help"],
    [["--json=1", "list"], /^--json takes no value$/, "tachikoma --help"],
    [["config", "bogus"], /^unexpected argument 'bogus'$/, "tachikoma config --help"],
  ];
  for (const [argv, message, hint] of cases) {
    const e = await h.usage(argv);
    assertMatch(e.message, message, argv.join(" "));
    assert(!e.message.includes("\n"), e.message);
    assertStringIncludes(e.hint ?? "", hint, argv.join(" "));
    assertEquals(e.exitCode, 2);
  }
  assertEquals(h.calls, []);
  assertEquals(h.stdout(), "");
});

Deno.test("parser: a command's own error comes through unchanged; not implemented is exit 70", async () => {
  const h = harness();
  const e = await assertRejects(() => h.run(["fail"]), NotFoundError);
  assertEquals(e.message, "no sandbox matches 'x'");
  const ni = await assertRejects(() => h.run(["image", "list"]), NotImplementedError);
  assertEquals(ni.message, "'image list' is not implemented yet");
  assertEquals(ni.exitCode, 70);
  assertEquals(h.calls, []);
});

Deno.test("parser: --help at every level prints help and runs nothing; -V prints the version", async () => {
  const h = harness();
  await h.run(["--help"]);
  const root = h.stdout();
  for (const word of ["Usage: tachikoma <command>", "Commands:", "spawn [branch]", "list|ls"]) {
    assertStringIncludes(root, word);
  }
  for (const flag of ["--json", "-v, --verbose", "-q, --quiet", "--backend <name>", "--no-color"]) {
    assertStringIncludes(root, flag);
  }
  await h.run(["config", "--help"]);
  assert(!/^ {2}show /m.test(h.stdout().slice(root.length)), "a hidden route is not listed");
  assertStringIncludes(h.stdout().slice(root.length), "  get <key>");
  assertStringIncludes(root, "checkpoint|cp <command>");
  for (
    const argv of [
      ["-h"],
      ["list", "-h"],
      ["ls", "--help"],
      ["cp", "--help"],
      ["cp", "create", "-h"],
      ["config", "--help"],
      ["--json", "--help"],
    ]
  ) {
    const before = h.stdout().length;
    await h.run(argv);
    assert(h.stdout().length > before, argv.join(" "));
    assertStringIncludes(h.stdout().slice(before), "Usage: tachikoma");
  }
  const list = await (async () => {
    const before = h.stdout().length;
    await h.run(["list", "--help"]);
    return h.stdout().slice(before);
  })();
  for (const word of ["-a, --all", "--days <days>", "--json", "--backend <name>", "list|ls"]) {
    assertStringIncludes(list, word);
  }
  assertEquals(h.calls, []);
  const before = h.stdout().length;
  await h.run(["-V"]);
  assertMatch(h.stdout().slice(before), /^\d+\.\d+\.\d+( \([0-9a-f]+(-dirty)?\))?\n$/);
  assertEquals(h.calls, []);
});
