/**
 * "Functions with more than three parameters take an options object", checked on the real
 * source: `deno lint` runs `max_params_plugin.ts` over `src/`. What is reported must be in
 * `PARAMS_DEBT` (the functions not converted yet), and every entry there must still be reported:
 * the list only shrinks.
 */
import { assert, assertEquals } from "@std/assert";
import { ROOT, tooManyParams } from "./max_params.ts";
import { PARAMS_DEBT } from "./params_debt.ts";

Deno.test("params: no new function of src/ takes more than three parameters; the debt only shrinks", async () => {
  const found = await tooManyParams(new URL("src/", ROOT));
  const debt = new Set(PARAMS_DEBT);
  const fresh = found.filter((f) => !debt.has(f));
  assertEquals(fresh, [], "take an options object instead (DEVELOPERS.md)");
  const paid = PARAMS_DEBT.filter((d) => !found.includes(d));
  assertEquals(paid, [], "converted: remove these from tests/unit/architecture/params_debt.ts");
});

Deno.test("params: the check reports a planted four-parameter function, method and arrow", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/planted.ts`,
      [
        "export function four(a: number, b: number, c: number, d: number) { return a + b + c + d; }",
        "export function three(a: number, b: number, c: number) { return a + b + c; }",
        "export class K { m(a: 1, b: 2, c: 3, d: 4) { return [a, b, c, d]; } }",
        "export const arrow = (a: 1, b: 2, c: 3, d: 4) => [a, b, c, d];",
        "export const spread = (a: 1, b: 2, ...[c, d]: [3, 4]) => [a, b, c, d];",
        "export const tuple = (a: 1, b: 2, [c, d]: [3, 4]) => [a, b, c, d];",
      ].join("\n") + "\n",
    );
    const found = await tooManyParams(new URL(`file://${dir}/`));
    assert(found.length === 4, JSON.stringify(found));
    for (const name of ["four", "m", "arrow", "spread"]) {
      assert(found.some((f) => f.endsWith(`planted.ts#${name}`)), `${name}: ${found}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
