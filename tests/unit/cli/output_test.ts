import { assert, assertEquals } from "@std/assert";
import { Output } from "../../../src/cli/output.ts";
import { renderTable } from "../../../src/lib/table.ts";
import { NotFoundError } from "../../../src/lib/errors.ts";
import { registerSecret } from "../../../src/lib/redact.ts";
import { Logger } from "../../../src/lib/log.ts";

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

Deno.test("guest text in a warning or an error cannot drive the terminal (escapes shown as ?)", () => {
  // What a hostile guest puts in its stderr: a title change, a bell, a clear screen, a C1 CSI.
  const hostile = "ln: \x1b]0;pwned\x07 \x1b[2J\x9b31m done\r";
  const lines: string[] = [];
  const logger = new Logger({ level: "info", sink: (l) => lines.push(l) });
  logger.warn(`cannot link ~/code: ${hostile}\nsecond\tline`);
  assertEquals(lines, ["warning: cannot link ~/code: ln: ?]0;pwned? ?[2J?31m done?\nsecond\tline"]);
  let err = "";
  const human = new Output({
    json: false,
    color: false,
    quiet: false,
    writeErr: (t) => (err += t),
  });
  human.error({ code: "provision", message: `step failed: ${hostile}`, hint: "\x1b[8mhidden" });
  assertEquals(err, "tachikoma: step failed: ln: ?]0;pwned? ?[2J?31m done?\nhint: ?[8mhidden\n");
  let json = "";
  const machine = new Output({
    json: true,
    color: false,
    quiet: false,
    writeErr: (t) => (json += t),
  });
  machine.error({ code: "provision", message: hostile });
  assertEquals(JSON.parse(json).error.message, hostile);
  assert(!json.includes("\x1b"), "JSON escapes the control characters itself");
});
