/**
 * Runs a command line against the tree (`program.ts`). An in-repo parser: no command-line
 * library fits the startup target (see bench/README.md for the numbers).
 *
 * - Route names (and aliases) lead from the root to a command; a group's `default` route runs
 *   when the next word names none of its routes (`tachikoma [branch]` = `tachikoma spawn`).
 * - Global flags (`global_flags.ts`) are accepted anywhere before `--`: before the command's
 *   name, between a group and its subcommand, and among the command's own flags. Flags given
 *   after the command's name win over those before it.
 * - `--flag value`, `--flag=value`, `-f value`, `-fvalue`, `-ab` (short booleans together),
 *   `--no-<flag>` for negated booleans. Everything after `--` is an argument, never a flag.
 * - `-h`/`--help` prints help (stdout) for where it stands; `-V`/`--version` before the command.
 * - Bad usage throws {@link UsageError} (exit 2): one line naming the flag, argument or command,
 *   with a suggestion when the word is close to a known one, and a hint to the right `--help`.
 *
 * @module
 */
import type { CommandContext, GlobalOptions } from "../commands/context.ts";
import { suggestionSuffix } from "../config/suggest.ts";
import { NotImplementedError, UsageError } from "../lib/errors.ts";
import { GLOBAL_FLAGS } from "./global_flags.ts";
import { commandNames, helpText } from "./help.ts";
import { type Arg, type CommandNode, type Flag, flagText, type GroupNode, kebab } from "./tree.ts";

/** What a run needs from the caller. */
export interface RunOptions {
  /** Builds the context once the global flags are known. */
  makeContext(globals: GlobalOptions): CommandContext;
  /** Writes help and the version to stdout. */
  stdout(text: string): void;
  /** The version line `-V` prints (read only when asked). */
  version?: () => string;
}

type GlobalName = keyof typeof GLOBAL_FLAGS;
type GlobalValues = Partial<Record<GlobalName, unknown>>;

/** The command line once the part up to the command's name is read. */
export interface Prescan {
  /** Global flags given before the command's name. */
  globals: GlobalValues;
  /** `-V`/`--version` was given. */
  version: boolean;
  /** `-h`/`--help` was given before the command's name. */
  help: boolean;
  /** The route names from the root, e.g. `["checkpoint", "create"]` (defaults included). */
  path: string[];
  /** The part of `path` that was typed: whose help the error hints point to. */
  typed: string[];
  /** Where the path ends: a command, or a group (help asked, a name unknown or missing). */
  node: CommandNode | GroupNode;
  /** The words after the command's name (or the first word no route matched). */
  rest: string[];
}

const HELP = new Set(["-h", "--help"]);

/** Runs `argv`; throws UsageError for bad usage and whatever the command throws. */
export async function runCommandLine(
  tree: GroupNode,
  argv: readonly string[],
  options: RunOptions,
): Promise<void> {
  const pre = prescan(tree, argv);
  if (pre.version) {
    const line = options.version?.() ??
      (await import("../lib/version.ts")).versionLine();
    options.stdout(`${line}\n`);
    return;
  }
  const node = pre.node;
  if (node.kind === "group") {
    if (pre.help) return options.stdout(helpText(tree, pre.path, node));
    const word = pre.rest[0];
    if (word === undefined) {
      throw new UsageError(
        `'${pre.path.join(" ")}' needs a command: ${commandNames(node).join(", ")}`,
        { hint: seeHelp(pre.path) },
      );
    }
    const names = Object.entries(node.routes).flatMap(([n, c]) => [n, ...c.aliases ?? []]);
    const what = word.startsWith("-") ? `unknown flag ${word}` : `unknown command '${word}'`;
    throw new UsageError(what + suggestionSuffix(word, names), { hint: seeHelp(pre.typed) });
  }
  const parsed = parseCommand(node, pre.rest, pre.typed);
  if (pre.help || parsed.help) return options.stdout(helpText(tree, pre.path, node));
  if (node.notImplemented) throw new NotImplementedError(pre.path.join(" "));
  const ctx = options.makeContext(globalOptions(pre.globals, parsed.globals));
  await node.run(ctx, parsed.flags, parsed.args);
}

function seeHelp(path: readonly string[]): string {
  return `see \`${["tachikoma", ...path].join(" ")} --help\``;
}

// --- up to the command's name ----------------------------------------------------------------

/** Reads global flags and route names up to the command, and applies group defaults. */
export function prescan(tree: GroupNode, argv: readonly string[]): Prescan {
  const globals: GlobalValues = {};
  let version = false;
  let help = false;
  const path: string[] = [];
  let node: CommandNode | GroupNode = tree;
  let i = 0;
  while (i < argv.length && node.kind === "group") {
    const word = argv[i];
    if (word === "--") break;
    if (word === "-V" || word === "--version") {
      version = true;
      i++;
    } else if (HELP.has(word)) {
      help = true;
      i++;
    } else if (word.startsWith("-") && word.length > 1) {
      const used = readGlobal(argv.slice(i, i + 2), globals, []);
      if (used === 0) break; // a flag of the default command (or unknown)
      i += used;
    } else {
      const name = routeName(node, word);
      if (!name) break;
      path.push(name);
      node = node.routes[name];
      i++;
    }
  }
  const typed = [...path];
  if (node.kind === "group" && node.default && !help) {
    path.push(node.default);
    node = node.routes[node.default];
  }
  return { globals, version, help, path, typed, node, rest: argv.slice(i) };
}

function routeName(group: GroupNode, word: string): string | undefined {
  if (Object.hasOwn(group.routes, word)) return word;
  return Object.entries(group.routes).find(([, n]) => n.aliases?.includes(word))?.[0];
}

/**
 * Reads the global flag at `words[0]` (its value may be `words[1]`) into `into`; returns how
 * many words it used (0: not a global flag).
 */
function readGlobal(
  words: readonly string[],
  into: GlobalValues,
  path: readonly string[],
): number {
  const flags = GLOBAL_FLAGS as Record<GlobalName, Flag<unknown>>;
  const word = words[0];
  if (!word.startsWith("--")) {
    const found = [...word.slice(1)].map((l) =>
      (Object.keys(flags) as GlobalName[]).find((n) =>
        flags[n].short === l && flags[n].kind === "boolean"
      )
    );
    if (found.some((n) => n === undefined)) return 0;
    for (const name of found as GlobalName[]) into[name] = true;
    return 1;
  }
  const eq = word.indexOf("=");
  const typed = eq === -1 ? word : word.slice(0, eq);
  for (const name of Object.keys(flags) as GlobalName[]) {
    const flag = flags[name];
    if (flag.kind === "boolean") {
      if (typed !== flagText(name, flag)) continue;
      if (eq !== -1) throw new UsageError(`${typed} takes no value`, { hint: seeHelp(path) });
      into[name] = !flag.negated;
      return 1;
    }
    if (typed !== `--${kebab(name)}`) continue;
    const value = eq === -1 ? words[1] : word.slice(eq + 1);
    into[name] = flagValue({ name, flag }, value, path);
    return eq === -1 ? 2 : 1;
  }
  return 0;
}

/** The value of the flag `named.flag` (spelt `named.name`) given as `value`, parsed. */
function flagValue(
  named: { name: string; flag: Flag<unknown> },
  value: string | undefined,
  path: readonly string[],
): unknown {
  const { name, flag } = named;
  const typed = flagText(name, flag);
  if (value === undefined) throw new UsageError(`${typed} needs a value`, { hint: seeHelp(path) });
  if (flag.choices && !flag.choices.includes(value)) {
    throw new UsageError(
      `${typed} must be one of ${flag.choices.join(", ")}, got '${value}'`,
      { hint: seeHelp(path) },
    );
  }
  try {
    return flag.parse ? flag.parse(value, typed) : value;
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error), {
      hint: seeHelp(path),
    });
  }
}

/** Global flags given before the command's name, overridden by those given after it. */
function globalOptions(before: GlobalValues, after: GlobalValues): GlobalOptions {
  const pick = (name: GlobalName) => after[name] ?? before[name];
  return {
    json: pick("json") === true,
    verbose: pick("verbose") === true,
    quiet: pick("quiet") === true,
    color: pick("color") !== false,
    backend: pick("backend") as GlobalOptions["backend"],
  };
}

// --- the command's flags and arguments -------------------------------------------------------

interface Parsed {
  flags: Record<string, unknown>;
  globals: GlobalValues;
  args: unknown[];
  help: boolean;
}

/** Parses the words after a command's name. */
function parseCommand(node: CommandNode, words: readonly string[], path: string[]): Parsed {
  const own = node.flags as Record<string, Flag<unknown>>;
  const flags: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(own)) {
    flags[name] = flag.kind === "boolean" ? !!flag.negated : undefined;
  }
  const globals: GlobalValues = {};
  const positional: string[] = [];
  let help = false;
  const unknown = (word: string) => {
    const known = Object.entries({ ...own, ...GLOBAL_FLAGS }).map(([n, f]) => flagText(n, f));
    return new UsageError(`unknown flag ${word}${suggestionSuffix(word, known)}`, {
      hint: seeHelp(path),
    });
  };
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    if (word === "--") {
      positional.push(...words.slice(i + 1));
      break;
    }
    if (HELP.has(word)) {
      help = true;
    } else if (word.startsWith("--")) {
      const eq = word.indexOf("=");
      const typed = eq === -1 ? word : word.slice(0, eq);
      const hit = Object.entries(own).find(([n, f]) => typed === flagText(n, f));
      if (hit) {
        const [name, flag] = hit;
        if (flag.kind === "boolean") {
          if (eq !== -1) throw new UsageError(`${typed} takes no value`, { hint: seeHelp(path) });
          flags[name] = !flag.negated;
        } else {
          const value = eq === -1 ? words[++i] : word.slice(eq + 1);
          flags[name] = flagValue({ name, flag }, value, path);
        }
      } else {
        const used = readGlobal(words.slice(i, i + 2), globals, path);
        if (used === 0) throw unknown(typed);
        i += used - 1;
      }
    } else if (word.startsWith("-") && word.length > 1) {
      i += shortFlags(words, i, { own, flags, globals, path, unknown });
    } else {
      positional.push(word);
    }
  }
  return { flags, globals, args: help ? [] : bind(node.args, positional, path), help };
}

/** What parsing a command's words fills in, and what it checks them against. */
interface CommandScan {
  /** The command's own flags. */
  own: Record<string, Flag<unknown>>;
  /** The values of its flags so far. */
  flags: Record<string, unknown>;
  /** The global flags given after the command's name. */
  globals: GlobalValues;
  path: string[];
  /** The error for an unknown flag. */
  unknown: (word: string) => UsageError;
}

/** Reads `-a`, `-ab`, `-n value`, `-nvalue` at `words[i]`; returns the extra words used. */
function shortFlags(words: readonly string[], i: number, scan: CommandScan): number {
  const { own, flags, globals, path, unknown } = scan;
  const word = words[i];
  for (let j = 1; j < word.length; j++) {
    const letter = word[j];
    const hit = Object.entries(own).find(([, f]) => f.short === letter);
    if (!hit) {
      if (readGlobal([`-${letter}`], globals, path) === 0) throw unknown(`-${letter}`);
      continue;
    }
    const [name, flag] = hit;
    if (flag.kind === "boolean") {
      flags[name] = !flag.negated;
      continue;
    }
    const inline = word.slice(j + 1);
    flags[name] = flagValue({ name, flag }, inline || words[i + 1], path);
    return inline ? 0 : 1;
  }
  return 0;
}

/** Matches the positional words to the command's arguments. */
function bind(args: readonly Arg<unknown>[], words: string[], path: string[]): unknown[] {
  const values: unknown[] = [];
  for (const [k, a] of args.entries()) {
    if (a.variadic) {
      if (!a.optional && words.length <= k) throw missing(a, path);
      values.push(words.slice(k));
      return values;
    }
    const word = words[k];
    if (word === undefined) {
      if (!a.optional) throw missing(a, path);
      values.push(undefined);
      continue;
    }
    if (a.choices && !a.choices.includes(word)) {
      throw new UsageError(
        `<${a.name}> must be one of ${a.choices.join(", ")}, got '${word}'`,
        { hint: seeHelp(path) },
      );
    }
    values.push(word);
  }
  if (words.length > args.length) {
    throw new UsageError(`unexpected argument '${words[args.length]}'`, { hint: seeHelp(path) });
  }
  return values;
}

function missing(a: Arg<unknown>, path: string[]): UsageError {
  return new UsageError(`missing argument <${a.name}>`, { hint: seeHelp(path) });
}
