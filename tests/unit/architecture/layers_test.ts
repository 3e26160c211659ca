/**
 * The import graph of `src/` keeps the layers of `layers.ts`: no import points up or sideways
 * between folders, and no file imports itself through others. The graph is Deno's own
 * (`deno info --json`), with static, dynamic and type-only imports.
 */
import { assert, assertEquals } from "@std/assert";
import { forbidden, LAYERS } from "./layers.ts";

const ROOT = new URL("../../../", import.meta.url);
const SRC = new URL("src/", ROOT).href;

/** A file-to-file import. */
export interface Edge {
  from: string;
  to: string;
  dynamic: boolean;
}

/** Every `.ts` file under `dir` (a file URL), recursively. */
async function tsFiles(dir: URL): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const url = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) out.push(...await tsFiles(url));
    else if (e.name.endsWith(".ts")) out.push(url.href);
  }
  return out;
}

interface InfoDependency {
  code?: { specifier?: string };
  type?: { specifier?: string };
  isDynamic?: boolean;
}

/** The import edges between files of `src/` (paths relative to it), from `deno info`. */
export async function importGraph(srcDir: string = SRC): Promise<Edge[]> {
  const files = await tsFiles(new URL(srcDir));
  const root = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(root, files.map((f) => `import ${JSON.stringify(f)};\n`).join(""));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--no-lock", root],
      cwd: new URL(ROOT).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: { specifier: string; dependencies?: InfoDependency[] }[];
    };
    const edges: Edge[] = [];
    for (const m of info.modules) {
      if (!m.specifier.startsWith(srcDir)) continue;
      for (const d of m.dependencies ?? []) {
        for (const target of new Set([d.code?.specifier, d.type?.specifier])) {
          if (!target?.startsWith(srcDir)) continue;
          edges.push({
            from: m.specifier.slice(srcDir.length),
            to: target.slice(srcDir.length),
            dynamic: d.isDynamic === true,
          });
        }
      }
    }
    return edges;
  } finally {
    await Deno.remove(root);
  }
}

/** Folder violations: one line per forbidden file-to-file import. */
export function layerViolations(edges: Edge[]): string[] {
  const folder = (path: string) => path.includes("/") ? path.slice(0, path.indexOf("/")) : "";
  const out: string[] = [];
  for (const e of edges) {
    const why = forbidden(folder(e.from), folder(e.to));
    if (why) out.push(`src/${e.from} imports src/${e.to}${e.dynamic ? " (dynamic)" : ""}: ${why}`);
  }
  return out;
}

/** Import cycles between files (each as a path of files), found with Tarjan's algorithm. */
export function cycles(edges: Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    if (e.from === e.to) continue;
    next.set(e.from, [...next.get(e.from) ?? [], e.to]);
  }
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], on = new Set<string>(), found: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of next.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) found.push(scc.sort());
    }
  };
  for (const v of next.keys()) if (!idx.has(v)) visit(v);
  return found;
}

Deno.test("layers: every folder of src/ is in exactly one layer", async () => {
  const folders: string[] = [];
  for await (const e of Deno.readDir(new URL("src/", ROOT))) {
    if (e.isDirectory) folders.push(e.name);
  }
  const listed = LAYERS.flat();
  assertEquals(listed.length, new Set(listed).size, "a folder is in two layers");
  assertEquals(folders.filter((f) => !listed.includes(f)).sort(), [], "folders in no layer");
  assertEquals(listed.filter((f) => !folders.includes(f)).sort(), [], "layers naming no folder");
});

Deno.test("layers: no import points up or sideways, and no file is in an import cycle", async () => {
  const edges = await importGraph();
  assert(edges.length > 300, `the graph looks incomplete: ${edges.length} edges`);
  assertEquals(layerViolations(edges), []);
  assertEquals(cycles(edges).map((c) => c.join(" → ")), []);
});

Deno.test("layers: the checks catch a planted upward import and a planted cycle", () => {
  const planted: Edge[] = [
    { from: "lib/errors.ts", to: "core/spawn.ts", dynamic: false },
    { from: "core/a.ts", to: "core/b.ts", dynamic: false },
    { from: "core/b.ts", to: "core/a.ts", dynamic: true },
    { from: "backends/x.ts", to: "credentials/y.ts", dynamic: false },
  ];
  assertEquals(layerViolations(planted), [
    "src/lib/errors.ts imports src/core/spawn.ts: src/lib/ is below src/core/",
    "src/backends/x.ts imports src/credentials/y.ts: src/backends/ and src/credentials/ are in the same layer",
  ]);
  assertEquals(cycles(planted), [["core/a.ts", "core/b.ts"]]);
});
