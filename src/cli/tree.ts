/**
 * The vocabulary of the command tree: commands, groups, flags and positional arguments as plain
 * data. `program.ts` writes the tree with it; `parse.ts` turns the tree into a Stricli
 * application; `completions.ts` and the tests walk it. This module imports nothing, so walking
 * the tree costs no parser.
 *
 * @module
 */
import type { CommandContext } from "../commands/context.ts";

/** A one-letter alias of a flag (`-n`): one ASCII letter. */
export type Letter = string;

/**
 * A flag. Its name is its key in the command's `flags` (camelCase; typed kebab-case:
 * `dryRun` is `--dry-run`). `T` is the value the command receives.
 */
export interface Flag<T> {
  /** `boolean`: present or not; `value`: takes the next word (or `--flag=value`). */
  readonly kind: "boolean" | "value";
  /** One line of help. */
  readonly brief: string;
  /** One-letter alias. */
  readonly short?: Letter;
  /** A value flag's placeholder in help (`--port <port>`). */
  readonly placeholder?: string;
  /** The only values a value flag accepts (help, validation, completions). */
  readonly choices?: readonly string[];
  /** A boolean flag that is on unless `--no-<name>` is given. */
  readonly negated?: boolean;
  /** Converts a value flag's text; throws an Error whose message names the flag. */
  readonly parse?: (text: string, flag: string) => T;
  /** Type marker only (never set). */
  readonly type?: T;
}

/** A positional argument. `T` is the value the command receives. */
export interface Arg<T> {
  /** Name in help (`<name>`, `[name]`). */
  readonly name: string;
  /** One line of help. */
  readonly brief: string;
  /** May be left out. */
  readonly optional: boolean;
  /** Takes every remaining word (at least one unless optional). */
  readonly variadic?: boolean;
  /** The only values accepted (help, validation, completions). */
  readonly choices?: readonly string[];
  /** Type marker only (never set). */
  readonly type?: T;
}

/** Flags of a command, by name. */
// deno-lint-ignore no-explicit-any
export type Flags = Record<string, Flag<any>>;
/** Positional arguments of a command, in order. */
// deno-lint-ignore no-explicit-any
export type Args = readonly Arg<any>[];

/** The values a command receives for its flags. */
export type FlagValues<F extends Flags> = {
  [K in keyof F]: F[K] extends Flag<infer T> ? T : never;
};
/** The values a command receives for its positional arguments. */
export type ArgValues<A extends Args> = { [I in keyof A]: A[I] extends Arg<infer T> ? T : never };

/** A command: what it accepts and what runs it. */
export interface CommandNode<F extends Flags = Flags, A extends Args = Args> {
  readonly kind: "command";
  /** One line of help (also the completion description). */
  readonly brief: string;
  /** More help, shown by `<command> --help` under the brief. */
  readonly description?: string;
  /** Other names of the command. */
  readonly aliases?: readonly string[];
  /** Shown in help, but only throws NotImplementedError (exit 70). */
  readonly notImplemented?: boolean;
  /** Left out of help (still runs). */
  readonly hidden?: boolean;
  readonly flags: F;
  readonly args: A;
  /**
   * Runs the command with its flags and its positional arguments (one tuple, in `args`' order).
   * The implementation module is imported here, on use.
   */
  readonly run: (ctx: CommandContext, flags: FlagValues<F>, args: ArgValues<A>) => Promise<void>;
}

/** A group of subcommands (`checkpoint create`), optionally with a default subcommand. */
export interface GroupNode {
  readonly kind: "group";
  readonly brief: string;
  readonly description?: string;
  readonly aliases?: readonly string[];
  readonly notImplemented?: boolean;
  readonly hidden?: boolean;
  /** Subcommands and subgroups, by name, in help order. */
  readonly routes: Readonly<Record<string, Node>>;
  /**
   * The route that runs when the next word names none of the routes: `tachikoma config` is
   * `tachikoma config show`, `tachikoma feature-x` is `tachikoma spawn feature-x`.
   */
  readonly default?: string;
}

/** A node of the tree. */
// deno-lint-ignore no-explicit-any
export type Node = CommandNode<any, any> | GroupNode;

/** Declares a command (type inference for `flags` and `args` happens here). */
export function command<const F extends Flags = Record<never, never>, const A extends Args = []>(
  spec: {
    brief: string;
    description?: string;
    aliases?: readonly string[];
    notImplemented?: boolean;
    hidden?: boolean;
    flags?: F;
    args?: A;
    run: (ctx: CommandContext, flags: FlagValues<F>, args: ArgValues<A>) => Promise<void>;
  },
): CommandNode<F, A> {
  return { kind: "command", flags: {} as F, args: [] as unknown as A, ...spec };
}

/** Declares a group of subcommands. */
export function group(spec: Omit<GroupNode, "kind">): GroupNode {
  return { kind: "group", ...spec };
}

/** A boolean flag, off unless given. */
export function bool(brief: string, short?: Letter): Flag<boolean> {
  return { kind: "boolean", brief, short };
}

/** A boolean flag, on unless `--no-<name>` is given. */
export function negated(brief: string): Flag<boolean> {
  return { kind: "boolean", brief, negated: true };
}

/** A flag taking a text value. */
export function text(
  brief: string,
  options: { placeholder?: string; short?: Letter } = {},
): Flag<string | undefined> {
  return { kind: "value", brief, ...options };
}

/** A flag taking a whole number (`--days 7`); anything else is a usage error naming the flag. */
export function wholeNumber(brief: string, placeholder: string): Flag<number | undefined> {
  return {
    kind: "value",
    brief,
    placeholder,
    parse: (value, flag) => {
      if (!/^\d+$/.test(value)) throw new Error(`${flag} must be a whole number, got '${value}'`);
      return Number(value);
    },
  };
}

/** A flag taking one of `choices`. */
export function oneOf<const C extends string>(
  brief: string,
  choices: readonly C[],
  placeholder: string,
): Flag<C | undefined> {
  return { kind: "value", brief, choices, placeholder };
}

/** A required positional argument. */
export function arg(name: string, brief = ""): Arg<string> {
  return { name, brief, optional: false };
}

/** An optional positional argument. */
export function optionalArg(name: string, brief = ""): Arg<string | undefined> {
  return { name, brief, optional: true };
}

/** A required positional argument taking one of `choices`. */
export function choiceArg<const C extends string>(
  name: string,
  brief: string,
  choices: readonly C[],
): Arg<C> {
  return { name, brief, optional: false, choices };
}

/** One or more words, the rest of the line (put them after `--`). */
export function rest(name: string, brief: string): Arg<string[]> {
  return { name, brief, optional: false, variadic: true };
}

/** Every remaining positional argument, none at all allowed. */
export function optionalRest(name: string, brief: string): Arg<string[]> {
  return { name, brief, optional: true, variadic: true };
}

/** `dryRun` → `dry-run`. */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** How a flag is typed on the command line (`--dry-run`, `--no-attach`). */
export function flagText(name: string, flag: Flag<unknown>): string {
  return flag.negated ? `--no-${kebab(name)}` : `--${kebab(name)}`;
}

/** Every node below `group`, with its path of names from the root (depth first, help order). */
export function* walk(
  group: GroupNode,
  path: readonly string[] = [],
): Generator<{ path: string[]; node: Node }> {
  for (const [name, node] of Object.entries(group.routes)) {
    const here = [...path, name];
    yield { path: here, node };
    if (node.kind === "group") yield* walk(node, here);
  }
}
