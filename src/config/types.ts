/**
 * Types shared by loading and validation: where a value came from, and a config file's text.
 *
 * @module
 */

/** Where a value came from. */
export type ConfigSourceKind = "default" | "global" | "repo" | "local" | "env" | "flag";

/** The source of one value. */
export interface ConfigSource {
  kind: ConfigSourceKind;
  /** The file, for `global`, `repo` and `local`. */
  file?: string;
  /** The variable, for `env`. */
  variable?: string;
  /** The command-line flag, for `flag`. */
  flag?: string;
}

/** One config file's text, ready to be validated. */
export interface FileLayer {
  kind: "global" | "repo" | "local";
  /** Absolute path. */
  file: string;
  text: string;
}
