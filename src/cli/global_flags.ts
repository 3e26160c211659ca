/**
 * The flags every command accepts, as data: the parser, the help and the completions read
 * them from here.
 *
 * @module
 */
import { BACKENDS } from "../config/defaults.ts";
import { bool, negated, oneOf } from "./tree.ts";

/** Flags every command accepts, before or after the command's name (never after `--`). */
export const GLOBAL_FLAGS = {
  json: bool("print results as one JSON document on stdout"),
  verbose: bool("log more detail (every external command, step timings) to stderr", "v"),
  quiet: bool("only log errors", "q"),
  backend: oneOf("sandbox engine to use", BACKENDS, "name"),
  color: negated("never use colors (NO_COLOR is honoured too)"),
};

/** `-V, --version`: accepted before any command name. */
export const VERSION_FLAG = bool("print the version (and the git commit it was built from)", "V");
