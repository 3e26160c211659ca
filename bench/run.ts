/**
 * `make bench`: every benchmark, one after the other (they must not share the machine), each
 * printing its JSON lines; the Incus one only when the lab is up. Exits non-zero when one fails
 * to run (a missed target is reported in its `pass`/`ratio_to_baseline` fields, not here).
 *
 * Run: deno run -A --frozen bench/run.ts
 *
 * @module
 */
import { labEnv } from "../tests/integration/lab.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const benches = ["startup_bench.ts", "spawn_bench.ts", "proxy_bench.ts"];
if (labEnv()) benches.push("incus_bench.ts");
else console.error("bench: the Incus lab is not up; incus_bench.ts skipped (make lab)");

let failed = 0;
for (const bench of benches) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", `${ROOT}bench/${bench}`],
    stdin: "null",
  }).output();
  if (!out.success) {
    console.error(`bench: ${bench} exited ${out.code}`);
    failed++;
  }
}
Deno.exit(failed ? 1 : 0);
