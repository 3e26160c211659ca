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
  /**
   * Repo files: whether the user trusted exactly this content. Gated keys of an untrusted
   * repo file are ignored. (The user config is never gated.)
   */
  trusted?: boolean;
}

/** A value of a gated key that was ignored because its repo file is not trusted. */
export interface IgnoredSetting {
  key: string;
  /** The value the file sets (validated; paths resolved). */
  value: unknown;
  kind: "repo" | "local";
  file: string;
}
