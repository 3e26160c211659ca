/**
 * Runs `max_params_plugin.ts` through `deno lint` over a folder: the functions with more than
 * three parameters, as `path#name` relative to the repository.
 *
 * @module
 */
import { assertEquals } from "@std/assert";

/** The repository's root. */
export const ROOT = new URL("../../../", import.meta.url);

/** `src/file.ts#name` for every function of `dir` with too many parameters. */
export async function tooManyParams(dir: URL): Promise<string[]> {
  const config = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        lint: {
          plugins: [new URL("./max_params_plugin.ts", import.meta.url).href],
          rules: { tags: [], include: [] },
        },
      }),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["lint", "--json", "--config", config, dir.pathname],
      cwd: ROOT.pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const report = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      diagnostics: { filename: string; code: string; message: string }[];
      errors: { file_path: string; message: string }[];
    };
    assertEquals(report.errors, [], "deno lint could not read every file");
    return report.diagnostics.map((d) => {
      assertEquals(d.code, "tachikoma/max-params");
      const file = new URL(d.filename).pathname.slice(ROOT.pathname.length);
      return `${file}#${d.message.replace(/\(.*$/, "")}`;
    }).sort();
  } finally {
    await Deno.remove(config);
  }
}
