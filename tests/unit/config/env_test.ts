import { assertEquals, assertThrows } from "@std/assert";
import {
  coerce,
  CoercionError,
  envVarName,
  misspeltEnvVars,
  readEnv,
} from "../../../src/config/env.ts";
import { parseTomlArray } from "../../../src/config/validate.ts";
import { didYouMean, editDistance } from "../../../src/config/suggest.ts";
import { envOf } from "./helpers.ts";

const bool = { type: "boolean" } as const;
const int = { type: "integer" } as const;
const list = { type: "string[]" } as const;
const str = { type: "string" } as const;

Deno.test("env: variable names are TACHIKOMA_ + upper-cased key, sections joined by _", () => {
  assertEquals(envVarName("vm_cpus"), "TACHIKOMA_VM_CPUS");
  assertEquals(envVarName("incus.socket"), "TACHIKOMA_INCUS_SOCKET");
  assertEquals(
    envVarName("truenas.insecure_skip_verify"),
    "TACHIKOMA_TRUENAS_INSECURE_SKIP_VERIFY",
  );
});

Deno.test("env: booleans accept true/false/1/0/yes/no in any case", () => {
  for (const v of ["true", "TRUE", "1", "yes", "Yes", " true "]) {
    assertEquals(coerce(v, bool, parseTomlArray), true, v);
  }
  for (const v of ["false", "False", "0", "no", "NO"]) {
    assertEquals(coerce(v, bool, parseTomlArray), false, v);
  }
  const e = assertThrows(() => coerce("maybe", bool, parseTomlArray), CoercionError);
  assertEquals(e.message, 'expected boolean (true/false/1/0/yes/no), got "maybe"');
});

Deno.test("env: integers", () => {
  assertEquals(coerce("8", int, parseTomlArray), 8);
  assertEquals(coerce(" 16 ", int, parseTomlArray), 16);
  assertEquals(coerce("-3", int, parseTomlArray), -3);
  assertEquals(coerce("1_000", int, parseTomlArray), 1000);
  for (const bad of ["four", "4.5", "0x10", "", "9007199254740993"]) {
    const e = assertThrows(() => coerce(bad, int, parseTomlArray), CoercionError);
    assertEquals(e.message, `expected integer, got ${JSON.stringify(bad)}`);
  }
});

Deno.test("env: arrays as a TOML array literal or comma-separated", () => {
  assertEquals(coerce('["a b", "c,d"]', list, parseTomlArray), ["a b", "c,d"]);
  assertEquals(coerce("[]", list, parseTomlArray), []);
  assertEquals(coerce("a.sh, b.sh,,c.sh ", list, parseTomlArray), ["a.sh", "b.sh", "c.sh"]);
  assertEquals(coerce("one", list, parseTomlArray), ["one"]);
  const e = assertThrows(() => coerce('["unterminated', list, parseTomlArray), CoercionError);
  assertEquals(e.message, 'expected a TOML array like ["a", "b"], got "[\\"unterminated"');
});

Deno.test("env: strings are taken as they are, hostile text included", () => {
  const hostile = `it's "$(rm -rf /)" \`id\`\nnext line ünïcødé`;
  assertEquals(coerce(hostile, str, parseTomlArray), hostile);
});

Deno.test("env: readEnv finds set configuration variables, skipping empty ones", () => {
  const found = readEnv(envOf({
    TACHIKOMA_VM_CPUS: "8",
    TACHIKOMA_INCUS_SOCKET: "/s",
    TACHIKOMA_VM_MEMORY: "",
    TACHIKOMA_CONFIG_DIR: "/x",
    TACHIKOMA_TEST_FOO: "1",
  }));
  assertEquals(found, [
    { key: "vm_cpus", variable: "TACHIKOMA_VM_CPUS", raw: "8" },
    { key: "incus.socket", variable: "TACHIKOMA_INCUS_SOCKET", raw: "/s" },
  ]);
});

Deno.test("env: a misspelt TACHIKOMA_ variable gets a did-you-mean; reserved ones are ignored", () => {
  assertEquals(misspeltEnvVars(["TACHIKOMA_VM_CPU", "PATH", "TACHIKOMA_VM_CPUS"]), [
    "environment variable TACHIKOMA_VM_CPU is not a tachikoma setting (did you mean TACHIKOMA_VM_CPUS?); ignored",
  ]);
  assertEquals(
    misspeltEnvVars([
      "TACHIKOMA_CONFIG_DIR",
      "TACHIKOMA_TEST_VM_CPU",
      "TACHIKOMA_LAB_SOCKET",
      "TACHIKOMA_SOMETHING_ELSE_ENTIRELY",
    ]),
    [],
  );
});

Deno.test("suggest: edit distance and did-you-mean", () => {
  assertEquals(editDistance("kitten", "sitting"), 3);
  assertEquals(editDistance("", "abc"), 3);
  assertEquals(didYouMean("vm_cpu", ["vm_cpus", "vm_memory"]), "vm_cpus");
  assertEquals(didYouMean("socket", ["vm_cpus", "incus.socket"]), "incus.socket");
  assertEquals(didYouMean("zzzzzz", ["vm_cpus", "incus.socket"]), undefined);
});
