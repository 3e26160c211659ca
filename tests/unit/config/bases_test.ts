/**
 * `[bases.NAME]`: the schema (names, fields) and the load-time rules (image xor from, setup xor
 * setup_script, from names a base, no cycle), each one line naming the base; `setup_script`
 * resolved against the file that sets it; the table merged by base name across layers.
 */
import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { baseChain, checkBases } from "../../../src/config/bases.ts";
import { buildConfig } from "../../../src/config/validate.ts";
import { ConfigError } from "../../../src/lib/errors.ts";

function load(text: string, more: string[] = []) {
  return buildConfig({
    os: "linux",
    files: [text, ...more].map((t, i) => ({
      kind: "global" as const,
      file: `/cfg/${i}/config.toml`,
      text: t,
    })),
    env: [],
    flags: {},
    cwd: "/work",
    display: (p) => p,
  }).config;
}

Deno.test("bases: a DAG loads; setup_script is resolved against its file; layers merge by name", () => {
  const config = load(
    '[bases.dev]\nimage = "images:debian/12"\nsetup = "apt-get install -y jq"\n' +
      'description = "tools"\n[bases.py]\nfrom = "dev"\nsetup_script = "py.sh"\n',
    ['[bases.node]\nfrom = "dev"\n'],
  );
  assertEquals(Object.keys(config.bases).sort(), ["dev", "node", "py"]);
  assertEquals(config.bases.py.setup_script, "/cfg/0/py.sh");
  assertEquals(config.bases.dev.description, "tools");
  assertEquals(baseChain(config.bases, "py"), ["dev", "py"]);
  assertEquals(load("").bases, {});
});

Deno.test("bases: each broken rule is one config error naming the base (and the file)", () => {
  const cases: [string, string][] = [
    ['[bases.a]\nimage = "x"\nfrom = "b"\n[bases.b]\nimage = "y"\n', "bases.a: set exactly one"],
    ["[bases.a]\ndescription = 'nothing'\n", "bases.a: set exactly one of image"],
    ['[bases.a]\nimage = "x"\nsetup = "s"\nsetup_script = "/f"\n', "bases.a: set at most one"],
    ['[bases.a]\nfrom = "ghost"\n', 'bases.a: from = "ghost": no such base'],
    [
      '[bases.a]\nfrom = "b"\n[bases.b]\nfrom = "c"\n[bases.c]\nfrom = "a"\n',
      "bases.a: from makes a cycle: a → b → c → a",
    ],
    ['[bases.self]\nfrom = "self"\n', "bases.self: from makes a cycle: self → self"],
  ];
  for (const [toml, expected] of cases) {
    const error = assertThrows(() => load(toml), ConfigError);
    assertStringIncludes(error.message, expected, toml);
    assertStringIncludes(error.message, "/cfg/0/config.toml", toml);
    assertEquals(error.message.split("\n").length, 1);
  }
  const badName = assertThrows(() => load('[bases."Bad Name"]\nimage = "x"\n'), ConfigError);
  assertStringIncludes(badName.message, "bases");
  assertStringIncludes(badName.message, "Bad Name");
  const unknown = assertThrows(() => load('[bases.a]\nimage = "x"\nparent = "y"\n'), ConfigError);
  assertStringIncludes(unknown.message, '"parent"');
});

Deno.test("bases: checkBases alone (no file) names the base", () => {
  const error = assertThrows(() => checkBases({ x: { from: "y" } }), ConfigError);
  assertEquals(error.message, 'bases.x: from = "y": no such base (configured: x)');
});
