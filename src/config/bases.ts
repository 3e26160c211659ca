/**
 * The cross-entry rules of `[bases.NAME]`, checked when the configuration is loaded: each base
 * has exactly one of `image` and `from`, at most one of `setup` and `setup_script`, `from` names
 * a configured base, and the `from` links form no cycle. Every problem is one line naming the
 * base (and the file that set the bases, when known).
 *
 * @module
 */
import { ConfigError } from "../lib/errors.ts";
import { BASE_NAME_RE } from "./defaults.ts";

/** One base as configured (the fields the rules look at). */
export interface BaseEntry {
  image?: string;
  from?: string;
  setup?: string;
  setup_script?: string;
  description?: string;
}

/**
 * Throws a {@link ConfigError} naming the base for the first broken rule; `where` prefixes the
 * message (e.g. the config file).
 */
export function checkBases(bases: Readonly<Record<string, BaseEntry>>, where?: string): void {
  const at = (name: string, problem: string) =>
    new ConfigError(`${where ? `${where}: ` : ""}bases.${name}: ${problem}`, {
      hint: "see docs/configuration.md (Bases)",
    });
  for (const [name, base] of Object.entries(bases)) {
    if ((base.image === undefined) === (base.from === undefined)) {
      throw at(name, "set exactly one of image (a stock image) and from (another base)");
    }
    if (base.setup !== undefined && base.setup_script !== undefined) {
      throw at(name, "set at most one of setup (inline script) and setup_script (a file)");
    }
    if (base.from !== undefined && !Object.hasOwn(bases, base.from)) {
      const known = Object.keys(bases).sort();
      throw at(
        name,
        `from = ${JSON.stringify(base.from)}: no such base (configured: ${
          known.length ? known.join(", ") : "none"
        })`,
      );
    }
  }
  for (const name of Object.keys(bases)) {
    const seen: string[] = [];
    for (let at0: string | undefined = name; at0 !== undefined; at0 = bases[at0].from) {
      const i = seen.indexOf(at0);
      if (i >= 0) {
        throw at(name, `from makes a cycle: ${[...seen.slice(i), at0].join(" → ")}`);
      }
      seen.push(at0);
    }
  }
}

/** The chain of `name`, root first (`name` last). The bases must have passed {@link checkBases}. */
export function baseChain(bases: Readonly<Record<string, BaseEntry>>, name: string): string[] {
  const chain: string[] = [];
  for (let at: string | undefined = name; at !== undefined; at = bases[at]?.from) {
    if (chain.includes(at)) break;
    chain.unshift(at);
  }
  return chain;
}

/** The engine sandbox of a build of base `name` with recipe `hash`: `tkb-<name>-<10 hex>`. */
export function baseSandboxName(name: string, hash: string): string {
  return `tkb-${name}-${hash.slice(0, 10)}`;
}

/** The base a build sandbox's name holds (`tkb-<name>-<10 hex>`), or null for any other name. */
export function baseOfBuild(sandbox: string): string | null {
  const m = /^tkb-(.+)-([0-9a-f]{10})$/.exec(sandbox);
  return m && BASE_NAME_RE.test(m[1]) ? m[1] : null;
}
