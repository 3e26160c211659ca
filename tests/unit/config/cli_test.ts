/** The real CLI (`deno run main.ts config …`) in a temp repo with a temp config directory. */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { runCli } from "../cli/helpers.ts";
import { makeWorld } from "./helpers.ts";

Deno.test("cli: config --json prints one JSON document; a bad file exits 2 with one line", async () => {
  const w = makeWorld();
  try {
    const env = { HOME: w.home, TACHIKOMA_CONFIG_DIR: `${w.root}/cfg` };
    w.write("repo/.tachikoma.toml", "vm_cpus = 6\n");
    const ok = await runCli(["config", "--json"], { cwd: w.repo, env });
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals(ok.stderr, "");
    const doc = JSON.parse(ok.stdout);
    assertEquals(doc.config.vm_cpus, 6);
    assertEquals(doc.sources.vm_cpus, { kind: "repo", file: `${w.repo}/.tachikoma.toml` });

    w.write("cfg/config.toml", "# user\nvm_memory = 'lots'\n");
    for (const args of [["config"], ["config", "--json"]]) {
      const bad = await runCli(args, { cwd: w.repo, env });
      assertEquals(bad.code, 2);
      assertEquals(bad.stdout, "");
      const lines = bad.stderr.trimEnd().split("\n");
      assertEquals(lines.length, 1, bad.stderr);
      const expected =
        `${w.root}/cfg/config.toml:2: vm_memory: expected integer, got string "lots"`;
      if (args.includes("--json")) {
        assertEquals(JSON.parse(lines[0]), { error: { code: "config", message: expected } });
      } else assertEquals(lines[0], `tachikoma: ${expected}`);
    }

    w.write("cfg/config.toml", "vm_memory = [\n");
    const syntax = await runCli(["config", "get", "vm_cpus"], { cwd: w.repo, env });
    assertEquals(syntax.code, 2);
    assertStringIncludes(syntax.stderr, `${w.root}/cfg/config.toml:2:1: TOML syntax error`);
    // `config path` and `config edit` still work while the file is broken.
    const where = await runCli(["config", "path", "--json"], { cwd: w.repo, env });
    assertEquals(where.code, 0, where.stderr);
    assertEquals(JSON.parse(where.stdout).global.exists, true);
  } finally {
    w.cleanup();
  }
});

Deno.test("cli: config set then get, env and --backend override, edit with $VISUAL", async () => {
  const w = makeWorld();
  try {
    const env = { HOME: w.home, TACHIKOMA_CONFIG_DIR: `${w.root}/cfg` };
    const set = await runCli(["config", "set", "incus.project", "lab", "--local"], {
      cwd: w.repo,
      env,
    });
    assertEquals(set.code, 0, set.stderr);
    assertEquals(set.stdout, `set incus.project = "lab" in ${w.repo}/.tachikoma.local.toml\n`);
    const get = await runCli(["config", "get", "incus.project"], { cwd: w.repo, env });
    assertEquals(get.stdout, "lab\n");

    const flags = await runCli(["--backend", "truenas", "config", "get", "backend", "--json"], {
      cwd: w.repo,
      env: { ...env, TACHIKOMA_BACKEND: "tart" },
    });
    assertEquals(JSON.parse(flags.stdout), {
      key: "backend",
      value: "truenas",
      source: { kind: "flag", flag: "--backend" },
    });
    const fromEnv = await runCli(["config", "get", "backend"], {
      cwd: w.repo,
      env: { ...env, TACHIKOMA_BACKEND: "tart" },
    });
    assertEquals(fromEnv.stdout, "tart\n");

    const unknown = await runCli(["config", "set", "vm_cpu", "2"], { cwd: w.repo, env });
    assertEquals(unknown.code, 2);
    assertStringIncludes(unknown.stderr, "did you mean vm_cpus?");

    const editor = w.write("bin/ed.sh", "#!/bin/sh\necho 'vm_cpus = 3' > \"$1\"\n");
    Deno.chmodSync(editor, 0o755);
    const edited = await runCli(["config", "edit"], {
      cwd: w.repo,
      env: { ...env, VISUAL: editor },
    });
    assertEquals(edited.code, 0, edited.stderr);
    assertEquals(Deno.readTextFileSync(`${w.root}/cfg/config.toml`), "vm_cpus = 3\n");
    const broken = w.write("bin/broken.sh", '#!/bin/sh\necho \'vm_cpus = "x"\' > "$1"\n');
    Deno.chmodSync(broken, 0o755);
    const bad = await runCli(["config", "edit"], { cwd: w.repo, env: { ...env, VISUAL: broken } });
    assertEquals(bad.code, 2);
    assertStringIncludes(bad.stderr, `config.toml:1: vm_cpus: expected integer, got string "x"`);
    assert(bad.stderr.includes("tachikoma config edit"), "hint to edit again");
  } finally {
    w.cleanup();
  }
});

Deno.test("cli: concurrent `config set`s of different keys all land (locked read-edit-write)", async () => {
  const w = makeWorld();
  try {
    const env = { HOME: w.home, TACHIKOMA_CONFIG_DIR: `${w.root}/cfg` };
    w.write("cfg/config.toml", "# mine\n");
    const sets: [string, string][] = [
      ["vm_cpus", "5"],
      ["vm_memory", "4096"],
      ["ssh_port", "2222"],
      ["incus.project", "p"],
      ["tart.resolver", "arp"],
      ["truenas.port", "8443"],
    ];
    const results = await Promise.all(
      sets.map(([k, v]) => runCli(["config", "set", k, v], { cwd: w.repo, env })),
    );
    for (const r of results) assertEquals(r.code, 0, r.stderr);
    const text = Deno.readTextFileSync(`${w.root}/cfg/config.toml`);
    assert(text.startsWith("# mine\n"));
    const shown = await runCli(["config", "--json"], { cwd: w.repo, env });
    const sources = JSON.parse(shown.stdout).sources;
    for (const [k] of sets) assertEquals(sources[k].kind, "global", `${k} lost:\n${text}`);
  } finally {
    w.cleanup();
  }
});
