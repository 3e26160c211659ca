/**
 * Help text, generated from the command tree (`program.ts`): the root's, a group's and a
 * command's. Printed on stdout by `--help`/`-h` at any level.
 *
 * @module
 */
import { GLOBAL_FLAGS, VERSION_FLAG } from "./global_flags.ts";
import { type Arg, type Flag, flagText, type GroupNode, type Node } from "./tree.ts";

const HELP_FLAG: [string, string] = ["-h, --help", "show this help"];

/** Help for the node at `path` (the root when `path` is empty). */
export function helpText(_tree: GroupNode, path: readonly string[], node: Node): string {
  const names = path.length ? [...path.slice(0, -1), namesOf(path.at(-1)!, node)] : [];
  const usage = ["tachikoma", ...names];
  const out: string[] = [];
  if (node.kind === "group") {
    out.push(`Usage: ${[...usage, "<command>", "[flags]"].join(" ")}`);
    const bare = node.default ? node.routes[node.default] : undefined;
    if (bare) {
      const flags = bare.kind === "command" && Object.keys(bare.flags).length ? ["[flags]"] : [];
      out.push(`       ${[...usage, ...flags, ...argsUsage(bare)].join(" ")}  (= ${node.default})`);
    }
    out.push("", node.description ?? node.brief, "", "Commands:");
    out.push(...table(commandRows(node)));
    if (bare?.kind === "command" && Object.keys(bare.flags).length) {
      const bareUsage = [...usage, ...argsUsage(bare).map((a) => a)].join(" ");
      out.push("", `Flags of \`${bareUsage}\` (as ${node.default}):`);
      out.push(...table(flagRows(bare.flags)));
    }
  } else {
    out.push(`Usage: ${[...usage, "[flags]", ...argsUsage(node)].join(" ")}`);
    out.push("", node.description ?? node.brief);
    if (node.notImplemented) out.push("(not implemented yet)");
    if (node.args.length) {
      out.push("", "Arguments:");
      out.push(...table(node.args.map((a: Arg<unknown>) => [argUsage(a), argBrief(a)])));
    }
    out.push("", "Flags:", ...table([...flagRows(node.flags), HELP_FLAG]));
  }
  out.push("", "Global flags (before or after the command; never after --):");
  const globals = flagRows(GLOBAL_FLAGS);
  if (!path.length) globals.unshift(flagRow("version", VERSION_FLAG));
  out.push(...table(node.kind === "group" ? [...globals, HELP_FLAG] : globals));
  if (node.kind === "group") {
    out.push("", `\`${["tachikoma", ...path, "<command>"].join(" ")} --help\` shows its flags.`);
  }
  return out.join("\n") + "\n";
}

function namesOf(name: string, node: Node): string {
  return [name, ...node.aliases ?? []].join("|");
}

function commandRows(group: GroupNode): [string, string][] {
  return Object.entries(group.routes).filter(([, n]) => !n.hidden).map(([name, n]) => [
    [namesOf(name, n), ...argsUsage(n)].join(" "),
    n.brief + (n.notImplemented ? " (not implemented yet)" : ""),
  ]);
}

function argsUsage(node: Node): string[] {
  return node.kind === "group" ? ["<command>"] : node.args.map(argUsage);
}

function argUsage(a: Arg<unknown>): string {
  const name = a.variadic ? `${a.name}...` : a.name;
  return a.optional ? `[${name}]` : `<${name}>`;
}

function argBrief(a: Arg<unknown>): string {
  return a.choices ? `${a.brief} (${a.choices.join(", ")})` : a.brief;
}

function flagRows(flags: Readonly<Record<string, Flag<unknown>>>): [string, string][] {
  return Object.entries(flags).map(([name, flag]) => flagRow(name, flag));
}

function flagRow(name: string, flag: Flag<unknown>): [string, string] {
  const short = flag.short ? `-${flag.short}, ` : "    ";
  const value = flag.kind === "value" ? ` <${flag.placeholder ?? name}>` : "";
  const choices = flag.choices ? ` (${flag.choices.join(", ")})` : "";
  return [`${short}${flagText(name, flag)}${value}`, flag.brief + choices];
}

function table(rows: [string, string][]): string[] {
  const width = Math.max(0, ...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`.trimEnd());
}

/** Commands of a node in help order (for "needs a command" errors). */
export function commandNames(group: GroupNode): string[] {
  return Object.entries(group.routes).filter(([, n]) => !n.hidden).map(([name]) => name);
}
