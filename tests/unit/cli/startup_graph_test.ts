/**
 * Startup guard (bench/startup_bench.ts measures it): what `deno run main.ts` loads before any
 * command runs. Read from `deno info --json`: the modules main.ts imports statically, following
 * static imports only (a command's implementation is a dynamic import, loaded when it runs).
 */
import { assert, assertEquals } from "@std/assert";

const ROOT = new URL("../../../", import.meta.url);

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier: string }; isDynamic?: boolean }[];
}

async function staticGraph(entry: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--frozen", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: InfoModule[];
    redirects: Record<string, string>;
  };
  const byName = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const todo = [...info.roots];
  while (todo.length) {
    const s = todo.pop()!;
    const name = info.redirects[s] ?? s;
    if (seen.has(name)) continue;
    seen.add(name);
    for (const d of byName.get(name)?.dependencies ?? []) {
      if (d.code && !d.isDynamic) todo.push(d.code.specifier);
    }
  }
  return [...seen].map((s) => s.replace(ROOT.href, ""));
}

Deno.test("startup: main.ts loads no npm package, no node: module and no command before it runs", async () => {
  const graph = await staticGraph("main.ts");
  assertEquals(graph.filter((s) => s.startsWith("npm:") || s.startsWith("node:")), []);
  assertEquals(graph.filter((s) => s.startsWith("src/commands/") && !s.endsWith("context.ts")), []);
  const heavy = ["src/core/", "src/backends/", "src/state/", "src/config/load.ts"];
  assertEquals(graph.filter((s) => heavy.some((h) => s.startsWith(h))), []);
  assert(graph.length < 25, `main.ts loads ${graph.length} modules: ${graph.join(", ")}`);
});

Deno.test("startup: deno run loads dynamic imports lazily; the binary is built without that", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  assert(
    (config.unstable ?? []).includes("lazy-dynamic-imports"),
    "deno.json must keep `unstable: [lazy-dynamic-imports]`: without it `deno run` reads every " +
      "module a command could import before running anything (bench/README.md)",
  );
  const compile = await Deno.readTextFile(new URL("scripts/compile.sh", ROOT));
  assert(compile.includes("--config .deno.compile.json"), "compile.sh must drop the setting");
});
