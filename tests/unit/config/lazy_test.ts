/**
 * Startup speed: with no config file and no configuration variable, loading the config must
 * not import zod or smol-toml; with valid values it imports no zod (smol-toml for files). Proved by running loadConfig in a subprocess whose import map
 * points both packages at a module that throws when evaluated.
 *
 * The subprocesses run with their own deno.json (the poisoned import map), so without the
 * project's lock file (`--no-lock`); `--cached-only` makes them resolve every npm package from
 * the local cache, never from the registry.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { makeWorld } from "./helpers.ts";

const LOAD = new URL("../../../src/config/load.ts", import.meta.url).href;
const REAL = JSON.parse(Deno.readTextFileSync(new URL("../../../deno.json", import.meta.url)));
const MOD = new URL("../../../src/config/mod.ts", import.meta.url).href;

async function runPoisoned(
  dir: string,
  env: Record<string, string>,
  poisoned: readonly string[] = ["zod", "zod/mini", "smol-toml"],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const poison = `${dir}/poison.ts`;
  Deno.writeTextFileSync(
    poison,
    "export const z = {}, parse = 0, stringify = 0, TomlError = Error;\n" +
      'throw new Error("POISON: heavy module imported");\n',
  );
  Deno.writeTextFileSync(
    `${dir}/deno.json`,
    JSON.stringify({
      unstable: REAL.unstable,
      imports: {
        ...REAL.imports,
        ...Object.fromEntries(poisoned.map((name) => [name, `file://${poison}`])),
      },
    }),
  );
  Deno.writeTextFileSync(
    `${dir}/probe.ts`,
    `import "${MOD}";\nimport { loadConfig } from "${LOAD}";\n` +
      `const r = await loadConfig({ cwd: Deno.cwd() });\n` +
      `console.log(JSON.stringify({ backend: r.config.backend, vm_cpus: r.config.vm_cpus }));\n`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-lock",
      "--cached-only",
      "--config",
      `${dir}/deno.json`,
      `${dir}/probe.ts`,
    ],
    cwd: dir,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("lazy: zod only for invalid or unknown values; smol-toml only for files", async () => {
  const w = makeWorld({ git: false });
  try {
    const base = { HOME: w.home, TACHIKOMA_CONFIG_DIR: `${w.root}/cfg`, TACHIKOMA_LAB_X: "1" };
    const fast = await runPoisoned(w.root, base);
    assertEquals(fast.stderr, "");
    assertEquals(fast.code, 0);
    assertEquals(JSON.parse(fast.stdout).vm_cpus, 4);

    // Valid values are checked by hand: zod stays out, with a variable or a config file.
    const zodOnly = ["zod", "zod/mini"];
    const viaEnv = await runPoisoned(w.root, { ...base, TACHIKOMA_VM_CPUS: "8" }, zodOnly);
    assertEquals(viaEnv.code, 0, viaEnv.stderr);
    assertEquals(JSON.parse(viaEnv.stdout).vm_cpus, 8);
    // An invalid value does import zod, for its message (so the probe can fail).
    const invalid = await runPoisoned(w.root, { ...base, TACHIKOMA_VM_CPUS: "0" }, zodOnly);
    assert(invalid.code !== 0);
    assertStringIncludes(invalid.stderr, "POISON");
    w.write("cfg/config.toml", 'vm_cpus = 8\n[incus]\nsocket = "/x.sock"\n');
    const withFile = await runPoisoned(w.root, base, zodOnly);
    assertEquals(withFile.code, 0, withFile.stderr);
    assertEquals(JSON.parse(withFile.stdout).vm_cpus, 8);
    // A file needs smol-toml.
    const toml = await runPoisoned(w.root, base, ["smol-toml"]);
    assertStringIncludes(toml.stderr, "POISON");
    // An unknown key imports zod's path, for the warning with its line.
    w.write("cfg/config.toml", "vm_cpu = 8\n");
    const unknown = await runPoisoned(w.root, base, zodOnly);
    assertStringIncludes(unknown.stderr, "POISON");
  } finally {
    w.cleanup();
  }
});

Deno.test("lazy: `--help`, `config`, `config path` and `list --json` do not load zod with no config", async () => {
  const w = makeWorld();
  try {
    const poison = w.write(
      "poison/poison.ts",
      "export const z = {}, parse = 0, stringify = 0, TomlError = Error;\n" +
        'throw new Error("POISON: heavy module imported");\n',
    );
    const config = w.write(
      "poison/deno.json",
      JSON.stringify({
        unstable: REAL.unstable,
        imports: {
          ...REAL.imports,
          zod: `file://${poison}`,
          "zod/mini": `file://${poison}`,
          "smol-toml": `file://${poison}`,
        },
      }),
    );
    const main = new URL("../../../main.ts", import.meta.url).pathname;
    const run = async (args: string[], extra: Record<string, string> = {}) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--no-lock", "--cached-only", "--config", config, main, ...args],
        cwd: w.repo,
        clearEnv: true,
        env: {
          PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
          HOME: w.home,
          TACHIKOMA_CONFIG_DIR: `${w.root}/cfg`,
          DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
          ...extra,
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    };
    for (const args of [["--help"], ["config"], ["config", "path"], ["list", "--json"]]) {
      const r = await run(args);
      assert(!r.stderr.includes("POISON"), `${args.join(" ")}: ${r.stderr}`);
      assertEquals(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    }
    // A valid variable is checked without zod too.
    const valid = await run(["list", "--json"], { TACHIKOMA_VM_CPUS: "8" });
    assertEquals(valid.code, 0, valid.stderr);
    // Control: with an invalid variable, `config` does load zod (for the message).
    const control = await run(["config"], { TACHIKOMA_VM_CPUS: "0" });
    assertStringIncludes(control.stderr, "POISON");
  } finally {
    w.cleanup();
  }
});
