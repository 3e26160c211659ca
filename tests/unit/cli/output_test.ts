import { assertEquals } from "@std/assert";
import { Output } from "../../../src/cli/output.ts";
import { renderTable } from "../../../src/lib/table.ts";
import { NotFoundError } from "../../../src/lib/errors.ts";
import { registerSecret } from "../../../src/lib/redact.ts";

Deno.test("tables align, use - for empty cells and have no trailing spaces", () => {
  const text = renderTable(
    [{ header: "NAME", value: (r: { n: string; ip?: string }) => r.n }, {
      header: "IP",
      value: (r) => r.ip,
    }],
    [{ n: "tachikoma-a-main", ip: "10.0.0.2" }, { n: "b" }],
  );
  assertEquals(text, "NAME              IP\ntachikoma-a-main  10.0.0.2\nb                 -");
});

Deno.test("json mode prints one document; errors go to stderr as JSON with a hint", () => {
  let out = "";
  let err = "";
  const o = new Output({
    json: true,
    color: false,
    quiet: false,
    write: (t) => (out += t),
    writeErr: (t) => (err += t),
  });
  o.result({ a_b: 1 }, () => "human");
  assertEquals(JSON.parse(out), { a_b: 1 });
  o.error(new NotFoundError("no sandbox 'x'", { hint: "tachikoma list" }));
  assertEquals(JSON.parse(err), {
    error: { code: "not_found", message: "no sandbox 'x'", hint: "tachikoma list" },
  });
});

Deno.test("errors are redacted", () => {
  registerSecret("sk-ant-supersecretvalue123");
  let err = "";
  const o = new Output({ json: false, color: false, quiet: false, writeErr: (t) => (err += t) });
  o.error({ code: "x", message: "upstream said sk-ant-supersecretvalue123 is bad" });
  assertEquals(err, "tachikoma: upstream said [REDACTED] is bad\n");
});
