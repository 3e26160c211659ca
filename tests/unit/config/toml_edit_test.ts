import { assert, assertEquals } from "@std/assert";
import { parse } from "smol-toml";
import { setTomlValue, tomlString, tomlValue } from "../../../src/config/toml_edit.ts";
import { findKeyLine, scanToml } from "../../../src/config/toml_scan.ts";

const DOC = `# tachikoma settings
# (keep this comment)

vm_cpus = 4          # cores
share_claude_dirs = [
  "rules",   # first
  "agents",
]
description = """
multi
line = not a key
"""

[incus]
# the socket
socket = "/var/lib/incus/unix.socket"
project = 'default'

[truenas]
host = "nas.local"
`;

Deno.test("scan: lines of keys, including in sections, arrays and multi-line strings", () => {
  assertEquals(findKeyLine(DOC, ["vm_cpus"]), 4);
  assertEquals(findKeyLine(DOC, ["share_claude_dirs"]), 5);
  assertEquals(findKeyLine(DOC, ["description"]), 9);
  assertEquals(findKeyLine(DOC, ["incus", "socket"]), 16);
  assertEquals(findKeyLine(DOC, ["incus", "project"]), 17);
  assertEquals(findKeyLine(DOC, ["truenas", "host"]), 20);
  assertEquals(findKeyLine(DOC, ["incus"]), 14); // the header
  assertEquals(findKeyLine(DOC, ["line"]), undefined); // inside the multi-line string
  assertEquals(findKeyLine(DOC, ["nope"]), undefined);
});

Deno.test("scan: dotted, quoted and inline-table keys; dates with a space", () => {
  const doc = `incus.socket = "/a"\n"vm_cpus" = 2\ntruenas = { host = "h", port = 8443 }\n` +
    `when = 1979-05-27 07:32:00Z\n'ssh_user' = "x" # c\n`;
  assertEquals(findKeyLine(doc, ["incus", "socket"]), 1);
  assertEquals(findKeyLine(doc, ["vm_cpus"]), 2);
  assertEquals(findKeyLine(doc, ["truenas", "port"]), 3);
  assertEquals(findKeyLine(doc, ["when"]), 4);
  assertEquals(findKeyLine(doc, ["ssh_user"]), 5);
  assertEquals(scanToml(doc).entries.map((e) => e.path.join(".")), [
    "incus.socket",
    "vm_cpus",
    "truenas.host",
    "truenas.port",
    "truenas",
    "when",
    "ssh_user",
  ]);
});

Deno.test("set: replacing a value keeps everything else byte for byte", () => {
  const out = setTomlValue(DOC, ["vm_cpus"], "8");
  assertEquals(out, DOC.replace("vm_cpus = 4 ", "vm_cpus = 8 "));
  const arr = setTomlValue(DOC, ["share_claude_dirs"], '["skills"]');
  assertEquals(
    arr,
    DOC.replace('[\n  "rules",   # first\n  "agents",\n]', '["skills"]'),
  );
  const sock = setTomlValue(DOC, ["incus", "socket"], '"/run/incus.sock"');
  assertEquals(sock, DOC.replace('"/var/lib/incus/unix.socket"', '"/run/incus.sock"'));
  assertEquals((parse(sock) as { incus: { socket: string } }).incus.socket, "/run/incus.sock");
});

Deno.test("set: a new top-level key goes after the last top-level key, before the sections", () => {
  const out = setTomlValue(DOC, ["ssh_user"], '"ubuntu"');
  assertEquals(
    out,
    DOC.replace('line = not a key\n"""\n', 'line = not a key\n"""\nssh_user = "ubuntu"\n'),
  );
  const parsed = parse(out) as Record<string, unknown>;
  assertEquals(parsed.ssh_user, "ubuntu");
  assertEquals((parsed.incus as Record<string, unknown>).project, "default");
});

Deno.test("set: a new key in an existing section goes after that section's last key", () => {
  const out = setTomlValue(DOC, ["incus", "network"], '"tkbr0"');
  assertEquals(
    out,
    DOC.replace("project = 'default'\n", "project = 'default'\nnetwork = \"tkbr0\"\n"),
  );
  const empty = setTomlValue("[tart]\n\n[incus]\n", ["tart", "resolver"], '"arp"');
  assertEquals(empty, '[tart]\nresolver = "arp"\n\n[incus]\n');
});

Deno.test("set: a missing section is appended; an empty or missing file is created", () => {
  assertEquals(
    setTomlValue("vm_cpus = 2\n", ["tart", "resolver"], '"arp"'),
    'vm_cpus = 2\n\n[tart]\nresolver = "arp"\n',
  );
  assertEquals(setTomlValue("vm_cpus = 2", ["ssh_port"], "2222"), "vm_cpus = 2\nssh_port = 2222\n");
  assertEquals(setTomlValue("", ["vm_cpus"], "2"), "vm_cpus = 2\n");
  assertEquals(setTomlValue("", ["incus", "project"], '"p"'), '[incus]\nproject = "p"\n');
  assertEquals(
    setTomlValue('# only a comment\n\n[incus]\nproject = "p"\n', ["vm_cpus"], "2"),
    '# only a comment\n\nvm_cpus = 2\n\n[incus]\nproject = "p"\n',
  );
});

Deno.test("set: inline tables and root dotted keys are extended in place", () => {
  assertEquals(
    setTomlValue('truenas = { host = "h" }\n', ["truenas", "port"], "8443"),
    'truenas = { host = "h", port = 8443 }\n',
  );
  assertEquals(
    setTomlValue('truenas = { host = "h" }\n', ["truenas", "host"], '"n"'),
    'truenas = { host = "n" }\n',
  );
  assertEquals(
    setTomlValue('incus.socket = "/a"\nvm_cpus = 1\n', ["incus", "project"], '"p"'),
    'incus.socket = "/a"\nincus.project = "p"\nvm_cpus = 1\n',
  );
});

Deno.test("set: CRLF files stay CRLF", () => {
  const out = setTomlValue(
    'vm_cpus = 2\r\n[incus]\r\nproject = "a"\r\n',
    ["incus", "network"],
    '"n"',
  );
  assertEquals(out, 'vm_cpus = 2\r\n[incus]\r\nproject = "a"\r\nnetwork = "n"\r\n');
});

Deno.test("values: hostile strings round-trip through tomlString and a real parser", () => {
  const hostile = [
    `it's "quoted"`,
    "$(rm -rf /) `id`",
    "back\\slash",
    "new\nline\r\ttab",
    "ünïcødé 🚀",
    "\x00\x1b\x7f",
    "# not a comment",
  ];
  for (const s of hostile) {
    const text = setTomlValue("# keep\n", ["ssh_user"], tomlString(s));
    assertEquals((parse(text) as { ssh_user: string }).ssh_user, s);
    assertEquals(text.split("\n").length, 3, "one line per value");
  }
  assertEquals(tomlValue(["a", 'b"c']), '["a", "b\\"c"]');
  assertEquals(tomlValue(true), "true");
  assertEquals(tomlValue(8), "8");
});

Deno.test("scan: malformed input ends, offsets stay inside the text, keys keep their lines", () => {
  // [text, where `a` is set (or undefined), other keys and their lines]
  const cases: [string, number | undefined, [string[], number][]][] = [
    ["a = [}\n", 1, []],
    ["a = {]\n", 1, []],
    ["[[[\n", undefined, []],
    ["= = =", undefined, []],
    ['a = "unterminated\nb = 1', 1, [[["b"], 2]]],
    ["a = 'unterminated\nb = 1", 1, [[["b"], 2]]],
    ["a = '''never closed", 1, []],
    ["a = [1, 2", 1, []],
    ["é = 1\n[sec\nx=1", undefined, [[["sec"], 2], [["sec", "x"], 3]]],
    ["a = { b = [ { c = ", 1, [[["a", "b"], 1]]],
    ["[t]]]\na = 1\n", undefined, [[["t"], 1], [["t", "a"], 2]]],
  ];
  for (const [text, aLine, others] of cases) {
    const lines = text.split("\n").length;
    const scan = scanToml(text);
    for (const e of scan.entries) {
      const where = `${JSON.stringify(text)}: ${JSON.stringify(e)}`;
      assert(e.valueStart <= e.valueEnd && e.valueEnd <= e.lineEnd, where);
      assert(e.lineEnd <= text.length, where);
      assert(e.line >= 1 && e.line <= lines, where);
    }
    for (const t of scan.tables) {
      assert(t.start < t.headerEnd && t.headerEnd <= text.length, JSON.stringify(t));
    }
    assertEquals(findKeyLine(text, ["a"]), aLine, JSON.stringify(text));
    for (const [path, line] of others) {
      assertEquals(findKeyLine(text, path), line, `${JSON.stringify(text)} ${path}`);
    }
  }
});
