/**
 * The version, read from deno.json, and the git commit it was built from.
 *
 * A compiled binary carries `build_info.json` (written by `make compile`, embedded with
 * `deno compile --include`); running from a git checkout asks git. Nothing is computed unless
 * the version is asked for.
 *
 * @module
 */
import meta from "../../deno.json" with { type: "json" };

/** The release version from deno.json. */
export const VERSION: string = meta.version;

/** The commit this build came from, or undefined when unknown. */
export function buildCommit(): string | undefined {
  try {
    const info = JSON.parse(
      Deno.readTextFileSync(new URL("./build_info.json", import.meta.url)),
    ) as { commit?: unknown };
    if (typeof info.commit === "string" && info.commit) return info.commit;
  } catch {
    // not a compiled build: fall through to git
  }
  const root = new URL("..", import.meta.url);
  if (root.protocol !== "file:") return undefined;
  try {
    const out = new Deno.Command("git", {
      args: ["-C", root.pathname, "rev-parse", "--short=12", "HEAD"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const commit = new TextDecoder().decode(out.stdout).trim();
    return out.success && commit ? commit : undefined;
  } catch {
    return undefined;
  }
}

/** `0.3.0` or `0.3.0 (abc123def456)`. */
export function versionLine(): string {
  const commit = buildCommit();
  return commit ? `${VERSION} (${commit})` : VERSION;
}
