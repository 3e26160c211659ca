/**
 * Runs a command line against the tree (`program.ts`) with the `@stricli/core` parser.
 *
 * Stricli parses each command's flags and arguments, prints help and suggests corrections. This
 * module adds what the tree promises on top: global flags before the command's name (they are
 * ordinary flags of every command after it), the group default (`tachikoma [branch]` is
 * `tachikoma spawn [branch]`), `-V/--version`, and errors as {@link UsageError} (exit 2) instead
 * of text on stderr. Everything after `--` is an argument, never a flag.
 *
 * @module
 */
import {
  type Application,
  type ApplicationText,
  ArgumentScannerError,
  buildApplication,
  buildCommand,
  buildRouteMap,
  type CommandContext as StricliContext,
  formatMessageForArgumentScannerError,
  type RouteMap,
  run,
  type StricliProcess,
  text_en,
} from "@stricli/core";
import type { CommandContext, GlobalOptions } from "../commands/context.ts";
import { NotImplementedError, UsageError } from "../lib/errors.ts";
import { versionLine } from "../lib/version.ts";
import { GLOBAL_FLAGS, VERSION_FLAG } from "./global_flags.ts";
import { type Arg, type CommandNode, type Flag, flagText, type GroupNode, kebab } from "./tree.ts";

/** What a run needs from the caller. */
export interface RunOptions {
  /** Builds the context once the global flags are known. */
  makeContext(globals: GlobalOptions): CommandContext;
  /** Writes help and the version to stdout. */
  stdout(text: string): void;
}

type GlobalValues = Partial<Record<keyof typeof GLOBAL_FLAGS, unknown>>;

/** The command line once the part before the command's name is read. */
interface Prescan {
  /** Global flags given before the command's name. */
  globals: GlobalValues;
  /** `-V`/`--version` was given. */
  version: boolean;
  /** What Stricli gets: those global flags left out, a group's default route put in. */
  argv: string[];
  /** The route names typed (or defaulted) from the root, e.g. `["checkpoint", "create"]`. */
  path: string[];
  /** The part of `path` that was typed: whose help the error hints point to. */
  typed: string[];
  /** Where the path ends: a command, or a group when help was asked or a name is unknown. */
  node: CommandNode | GroupNode;
}

const HELP = new Set(["-h", "--help", "-H", "--helpAll", "--help-all"]);

/** Runs `argv`; throws UsageError for bad usage and whatever the command throws. */
export async function runCommandLine(
  tree: GroupNode,
  argv: readonly string[],
  options: RunOptions,
): Promise<void> {
  const pre = prescan(tree, argv);
  if (pre.version) {
    options.stdout(`${versionLine()}\n`);
    return;
  }
  if (pre.node.kind === "group" && pre.argv.length === pre.path.length) {
    const names = Object.keys(pre.node.routes).join(", ");
    throw new UsageError(`'${pre.path.join(" ")}' needs a command: ${names}`, {
      hint: seeHelp(pre.path),
    });
  }
  const errors: string[] = [];
  let failure: { error: unknown } | undefined;
  const context: RunContext = {
    process: {
      stdout: { write: (text) => options.stdout(text) },
      stderr: { write: (text) => errors.push(text.trimEnd()) },
      env: {},
    },
    async invoke(node, path, flags, args) {
      try {
        if (node.notImplemented) throw new NotImplementedError(path.join(" "));
        const ctx = options.makeContext(globalOptions(pre.globals, flags));
        const own = Object.fromEntries(Object.keys(node.flags).map((k) => [k, flags[k]]));
        // Stricli hands a variadic argument's words one by one; the tree wants them as one list.
        await node.run(ctx, own, ...(node.args.at(-1)?.variadic ? [args] : args));
      } catch (error) {
        failure = { error };
      }
    },
  };
  await run(application(tree), pre.argv, context);
  if (failure) throw failure.error;
  if (errors.length) {
    throw new UsageError(errors.join("; "), { hint: seeHelp(pre.typed) });
  }
}

function seeHelp(path: readonly string[]): string {
  return `see \`${["tachikoma", ...path].join(" ")} --help\``;
}

/** The context Stricli hands to every command function. */
interface RunContext extends StricliContext {
  readonly process: StricliProcess;
  invoke(
    node: CommandNode,
    path: string[],
    flags: Record<string, unknown>,
    args: unknown[],
  ): Promise<void>;
}

// --- before the command's name ---------------------------------------------------------------

/** Reads global flags and route names up to the command, and applies group defaults. */
export function prescan(tree: GroupNode, argv: readonly string[]): Prescan {
  const globals: GlobalValues = {};
  let version = false;
  const out: string[] = [];
  const path: string[] = [];
  let node: CommandNode | GroupNode = tree;
  let i = 0;
  while (i < argv.length && node.kind === "group") {
    const word = argv[i];
    if (word === "--") break;
    if (word.startsWith("-") && word.length > 1) {
      if (word === "-V" || word === "--version") {
        version = true;
        i++;
        continue;
      }
      const used = readGlobal(argv, i, globals);
      if (used === 0) break; // a flag of the default command, or help
      i += used;
      continue;
    }
    const name = routeName(node, word);
    if (!name) break;
    out.push(word);
    path.push(name);
    node = node.routes[name];
    i++;
  }
  const typed = [...path];
  if (node.kind === "group" && node.default && !HELP.has(argv[i] ?? "")) {
    out.push(node.default);
    path.push(node.default);
    node = node.routes[node.default];
  }
  return { globals, version, argv: [...out, ...argv.slice(i)], path, typed, node };
}

function routeName(group: GroupNode, word: string): string | undefined {
  if (Object.hasOwn(group.routes, word)) return word;
  return Object.entries(group.routes).find(([, n]) => n.aliases?.includes(word))?.[0];
}

/** Reads the global flag at `argv[i]` into `into`; returns the words used (0: not global). */
function readGlobal(argv: readonly string[], i: number, into: GlobalValues): number {
  const word = argv[i];
  const flags = Object.entries(GLOBAL_FLAGS) as [keyof typeof GLOBAL_FLAGS, Flag<unknown>][];
  if (!word.startsWith("--")) {
    // -v, -q, or several together (-qv)
    const letters = [...word.slice(1)];
    const found = letters.map((l) => flags.find(([, f]) => f.short === l && f.kind === "boolean"));
    if (found.some((f) => !f)) return 0;
    for (const [name] of found as [keyof typeof GLOBAL_FLAGS, Flag<unknown>][]) into[name] = true;
    return 1;
  }
  const eq = word.indexOf("=");
  const typed = eq === -1 ? word : word.slice(0, eq);
  for (const [name, flag] of flags) {
    if (flag.kind === "boolean") {
      if (eq !== -1) continue;
      if (typed === `--${kebab(name)}`) into[name] = true;
      else if (flag.negated && typed === `--no-${kebab(name)}`) into[name] = false;
      else continue;
      return 1;
    }
    if (typed !== `--${kebab(name)}`) continue;
    const value = eq === -1 ? argv[i + 1] : word.slice(eq + 1);
    if (value === undefined) throw new UsageError(`${typed} needs a value`, { hint: seeHelp([]) });
    if (flag.choices && !flag.choices.includes(value)) {
      throw new UsageError(`${typed} must be one of ${flag.choices.join(", ")}, got '${value}'`, {
        hint: seeHelp([]),
      });
    }
    into[name] = value;
    return eq === -1 ? 2 : 1;
  }
  return 0;
}

/** Global flags given before the command's name, overridden by those given after it. */
function globalOptions(before: GlobalValues, after: Record<string, unknown>): GlobalOptions {
  return {
    json: before.json === true || after.json === true,
    verbose: before.verbose === true || after.verbose === true,
    quiet: before.quiet === true || after.quiet === true,
    color: before.color !== false && after.color !== false,
    backend: (after.backend ?? before.backend) as GlobalOptions["backend"],
  };
}

// --- the Stricli application -----------------------------------------------------------------

const built = new WeakMap<GroupNode, Application<RunContext>>();

function application(tree: GroupNode): Application<RunContext> {
  let app = built.get(tree);
  if (!app) {
    app = buildApplication(routeMap(tree, []) as RouteMap<RunContext>, {
      name: "tachikoma",
      scanner: { caseStyle: "allow-kebab-for-camel", allowArgumentEscapeSequence: true },
      documentation: { disableAnsiColor: true, onlyRequiredInUsageLine: true },
      localization: { text: TEXT },
    });
    built.set(tree, app);
  }
  return app;
}

/** Stricli's English text, with one-line errors that name the flag or argument. */
const TEXT: ApplicationText = {
  ...text_en,
  noCommandRegisteredForInput: ({ input, corrections }) =>
    `unknown command '${input}'` +
    didYouMean(corrections.map((c) => `'${c.replaceAll("`", "")}'`)),
  exceptionWhileParsingArguments(exc, ansiColor) {
    if (!(exc instanceof ArgumentScannerError)) {
      return text_en.exceptionWhileParsingArguments.call(this, exc, ansiColor);
    }
    return formatMessageForArgumentScannerError(exc, {
      FlagNotFoundError: (e) =>
        `unknown flag --${e.input}` + didYouMean(e.corrections.map((c) => `--${c}`)),
      AliasNotFoundError: (e) => `unknown flag -${e.input}`,
      ArgumentParseError: (e) => e.exception instanceof Error ? e.exception.message : String(e),
      EnumValidationError: (e) =>
        `--${e.externalFlagName} must be one of ${e.values.join(", ")}, got '${e.input}'`,
      UnsatisfiedFlagError: (e) => `--${e.externalFlagName} needs a value`,
      UnsatisfiedPositionalError: (e) => `missing argument <${e.placeholder}>`,
      UnexpectedPositionalError: (e) => `unexpected argument '${e.input}'`,
    });
  },
};

function didYouMean(corrections: readonly string[]): string {
  return corrections.length ? `; did you mean ${corrections.join(" or ")}?` : "";
}

function routeMap(group: GroupNode, path: string[]) {
  const routes: Record<string, unknown> = {};
  const aliases: Record<string, string> = {};
  const hideRoute: Record<string, boolean> = {};
  for (const [name, node] of Object.entries(group.routes)) {
    const here = [...path, name];
    routes[name] = node.kind === "group" ? routeMap(node, here) : stricliCommand(node, here);
    for (const alias of node.aliases ?? []) aliases[alias] = name;
    if (node.hidden) hideRoute[name] = true;
  }
  return buildRouteMap({
    routes: routes as never,
    aliases: aliases as never,
    docs: {
      brief: listed(group),
      fullDescription: path.length ? group.description : rootHelp(group),
      hideRoute: hideRoute as never,
    },
  });
}

/** The line a node gets in its parent's list of commands: its brief and its aliases. */
function listed(node: CommandNode | GroupNode): string {
  return node.aliases?.length ? `${node.brief} (alias: ${node.aliases.join(", ")})` : node.brief;
}

function rootHelp(tree: GroupNode): string {
  const rows = [["-V", "--version", VERSION_FLAG.brief]];
  for (const [name, flag] of Object.entries(GLOBAL_FLAGS) as [string, Flag<unknown>][]) {
    const value = flag.kind === "value" ? ` <${flag.placeholder ?? "value"}>` : "";
    const choices = flag.choices ? ` (${flag.choices.join(", ")})` : "";
    rows.push([
      flag.short ? `-${flag.short}` : "",
      flagText(name, flag) + value,
      flag.brief + choices,
    ]);
  }
  const width = Math.max(...rows.map((r) => r[1].length));
  const lines = rows.map(([s, l, b]) => `  ${s.padEnd(2)} ${l.padEnd(width)}  ${b}`);
  return `${tree.description ?? tree.brief}\n\nGLOBAL FLAGS (before or after the command)\n${
    lines.join("\n")
  }`;
}

function stricliCommand(node: CommandNode, path: string[]) {
  const flags: Record<string, unknown> = {};
  const aliases: Record<string, string> = {};
  const all = { ...node.flags, ...GLOBAL_FLAGS } as Record<string, Flag<unknown>>;
  for (const [name, flag] of Object.entries(all)) {
    if (name in GLOBAL_FLAGS && name in node.flags) {
      throw new Error(`${path.join(" ")}: flag --${name} is a global flag`);
    }
    flags[name] = stricliFlag(name, flag);
    if (flag.short) aliases[flag.short] = name;
  }
  return buildCommand({
    func: async function (this: RunContext, values: Record<string, unknown>, ...args: unknown[]) {
      await this.invoke(node, path, values, args);
    },
    parameters: {
      flags: flags as never,
      aliases: aliases as never,
      positional: positional(node.args) as never,
    },
    docs: { brief: listed(node), fullDescription: node.description ?? node.brief },
  });
}

function stricliFlag(name: string, flag: Flag<unknown>): unknown {
  if (flag.kind === "boolean") {
    return flag.negated
      ? { kind: "boolean", brief: flag.brief, default: true, withNegated: true }
      : { kind: "boolean", brief: flag.brief, default: false, withNegated: false };
  }
  if (flag.choices) {
    return { kind: "enum", brief: flag.brief, values: flag.choices, optional: true };
  }
  const typed = flagText(name, flag);
  return {
    kind: "parsed",
    brief: flag.brief,
    optional: true,
    placeholder: flag.placeholder ?? kebab(name),
    parse: flag.parse ? (text: string) => flag.parse!(text, typed) : (text: string) => text,
  };
}

function positional(args: readonly Arg<unknown>[]): unknown {
  const last = args.at(-1);
  if (last?.variadic) {
    if (args.length > 1) throw new Error(`<${last.name}...> must be the only argument`);
    return {
      kind: "array",
      parameter: { brief: last.brief, parse: (t: string) => t, placeholder: last.name },
      minimum: last.optional ? 0 : 1,
    };
  }
  return {
    kind: "tuple",
    parameters: args.map((a) => ({
      brief: a.brief,
      placeholder: a.name,
      optional: a.optional || undefined,
      parse: a.choices ? choice(a) : (t: string) => t,
    })),
  };
}

function choice(a: Arg<unknown>) {
  return (text: string): string => {
    if (a.choices!.includes(text)) return text;
    throw new Error(`<${a.name}> must be one of ${a.choices!.join(", ")}, got '${text}'`);
  };
}
