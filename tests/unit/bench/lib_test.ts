/**
 * bench/lib.ts: a target is a ratio against its same-run baseline, an added-time budget turns
 * into the equivalent ratio, and the JSON line bench/run.ts reads says pass or fail.
 */
import { assertEquals } from "@std/assert";
import { budgetRatio, target } from "../../../bench/lib.ts";

Deno.test("bench: target lines carry the ratio, the limit and the verdict", () => {
  const printed: string[] = [];
  const log = console.log;
  console.log = (line: string) => printed.push(line);
  try {
    const ok = target({
      bench: "b",
      target: "t",
      measured_ms: 130,
      baseline_ms: 100,
      max_ratio: 1.3,
    });
    const late = target({
      bench: "b",
      target: "u",
      measured_ms: 131,
      baseline_ms: 100,
      max_ratio: 1.3,
    });
    const broken = target({
      bench: "b",
      target: "v",
      measured_ms: 1,
      baseline_ms: 0,
      max_ratio: 2,
    });
    assertEquals([ok.ratio, ok.pass, late.pass, broken.pass], [1.3, true, false, false]);
    assertEquals(JSON.parse(printed[1]), { ...late, kind: "target", ratio: 1.31, pass: false });
  } finally {
    console.log = log;
  }
  // "At most 1 ms added" to a 0.4 ms baseline: 1.4 ms is the limit, i.e. ratio 3.5.
  assertEquals(budgetRatio(0.4, 1), 3.5);
});
