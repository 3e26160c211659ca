import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { ConfigError } from "../../../src/lib/errors.ts";
import { clearSecrets, redact } from "../../../src/lib/redact.ts";
import { defaultConfig } from "../../../src/config/default_config.ts";
import { git, load, makeWorld, trust, type World } from "./helpers.ts";

/** The user config path of a world (HOME-based, no TACHIKOMA_CONFIG_DIR). */
function globalFile(w: World): string {
  return `${w.configDir}/config.toml`;
}

Deno.test("load: no files and no variables gives the defaults (linux: incus, macOS: tart)", async () => {
  const w = makeWorld();
  try {
    const linux = await load(w);
    assertEquals(linux.config, defaultConfig("linux"));
    assertEquals(linux.config.backend, "incus");
    assertEquals(linux.sources.vm_cpus, { kind: "default" });
    assertEquals(linux.sources["incus.socket"], { kind: "default" });
    assertEquals(linux.repoRoot, w.repo);
    assertEquals(linux.mainRepoRoot, w.repo);
    assertEquals(linux.warnings, []);
    const mac = await load(w, {}, { os: "darwin" });
    assertEquals(mac.config.backend, "tart");
  } finally {
    w.cleanup();
  }
});

Deno.test("load: precedence defaults < global < repo < local < env < flag, per key", async () => {
  const w = makeWorld();
  try {
    w.write(
      globalFile(w),
      'vm_cpus = 2\nvm_memory = 2048\nssh_user = "g"\nbase_image = "g"\n' +
        '[incus]\nproject = "global"\nnetwork = "gnet"\n',
    );
    w.write(
      "repo/.tachikoma.toml",
      'vm_memory = 4096\nssh_user = "r"\nbase_image = "r"\n' +
        '[incus]\nproject = "repo"\n',
    );
    w.write("repo/.tachikoma.local.toml", 'ssh_user = "l"\nbase_image = "l"\n');
    await trust(w, ".tachikoma.toml", ".tachikoma.local.toml");
    const loaded = await load(w, { TACHIKOMA_BASE_IMAGE: "e", TACHIKOMA_BACKEND: "truenas" }, {
      flags: { backend: "tart" },
    });
    const c = loaded.config;
    assertEquals(c.vm_cpus, 2);
    assertEquals(c.vm_memory, 4096);
    assertEquals(c.ssh_user, "l");
    assertEquals(c.base_image, "e");
    assertEquals(c.backend, "tart");
    assertEquals(c.incus.project, "repo");
    assertEquals(c.incus.network, "gnet"); // sections merge per key
    assertEquals(c.incus.socket, "/var/lib/incus/unix.socket");
    assertEquals(c.ssh_port, 22);
    const s = loaded.sources;
    assertEquals(s.vm_cpus, { kind: "global", file: globalFile(w) });
    assertEquals(s.vm_memory, { kind: "repo", file: `${w.repo}/.tachikoma.toml` });
    assertEquals(s.ssh_user, { kind: "local", file: `${w.repo}/.tachikoma.local.toml` });
    assertEquals(s.base_image, { kind: "env", variable: "TACHIKOMA_BASE_IMAGE" });
    assertEquals(s.backend, { kind: "flag", flag: "--backend" });
    assertEquals(s["incus.network"], { kind: "global", file: globalFile(w) });
    assertEquals(s.ssh_port, { kind: "default" });
  } finally {
    w.cleanup();
  }
});

Deno.test("load: arrays replace, they do not merge", async () => {
  const w = makeWorld();
  try {
    w.write(globalFile(w), 'share_claude_dirs = ["rules", "agents"]\n');
    w.write("repo/.tachikoma.toml", 'share_claude_dirs = ["skills"]\n');
    await trust(w, ".tachikoma.toml");
    assertEquals((await load(w)).config.share_claude_dirs, ["skills"]);
  } finally {
    w.cleanup();
  }
});

Deno.test("load: TACHIKOMA_CONFIG_DIR relocates the user config; XDG_CONFIG_HOME is honoured", async () => {
  const w = makeWorld();
  try {
    w.write(globalFile(w), "vm_cpus = 2\n");
    w.write("elsewhere/config.toml", "vm_cpus = 3\n");
    w.write("xdg/tachikoma/config.toml", "vm_cpus = 5\n");
    assertEquals((await load(w)).config.vm_cpus, 2);
    const relocated = await load(w, { TACHIKOMA_CONFIG_DIR: `${w.root}/elsewhere` });
    assertEquals(relocated.config.vm_cpus, 3);
    assertEquals(relocated.files.global, `${w.root}/elsewhere/config.toml`);
    assertEquals((await load(w, { XDG_CONFIG_HOME: `${w.root}/xdg` })).config.vm_cpus, 5);
  } finally {
    w.cleanup();
  }
});

Deno.test("load: repo layers are read only inside a repo; from a subdirectory too", async () => {
  const w = makeWorld();
  try {
    w.write("repo/.tachikoma.toml", "vm_cpus = 6\n");
    Deno.mkdirSync(`${w.repo}/deep/er`, { recursive: true });
    assertEquals((await load(w, {}, { cwd: `${w.repo}/deep/er` })).config.vm_cpus, 6);
    const outside = await load(w, {}, { cwd: w.home });
    assertEquals(outside.config.vm_cpus, 4);
    assertEquals(outside.repoRoot, null);
    assertEquals(outside.files.repo, null);
  } finally {
    w.cleanup();
  }
});

Deno.test("load: in a linked worktree the repo files come from the main checkout, never the worktree", async () => {
  const w = makeWorld();
  try {
    w.write("repo/README", "x\n");
    git(w.repo, "add", "README");
    git(w.repo, "commit", "-q", "-m", "init");
    const wt = `${w.root}/repo-feat`;
    git(w.repo, "worktree", "add", "-q", "-b", "feat", wt);
    w.write("repo/.tachikoma.toml", "vm_cpus = 2\n");
    w.write("repo-feat/.tachikoma.toml", "vm_cpus = 3\n");
    w.write("repo-feat/.tachikoma.local.toml", "vm_memory = 1024\n");
    const loaded = await load(w, {}, { cwd: `${wt}` });
    assertEquals(loaded.repoRoot, wt);
    assertEquals(loaded.mainRepoRoot, w.repo);
    assertEquals(loaded.files.repo, `${w.repo}/.tachikoma.toml`);
    assertEquals(loaded.files.local, `${w.repo}/.tachikoma.local.toml`);
    assertEquals(loaded.files.worktree, wt);
    assertEquals(loaded.config.vm_cpus, 2);
    assertEquals(loaded.config.vm_memory, 8192);
    assertEquals(loaded.sources.vm_cpus, { kind: "repo", file: `${w.repo}/.tachikoma.toml` });
    assert(
      loaded.logged.includes(
        `debug: not reading ${wt}/.tachikoma.toml, ${wt}/.tachikoma.local.toml: a worktree's ` +
          `own config files are never read (repo config comes from ${w.repo})`,
      ),
      loaded.logged.join("\n"),
    );
    assertEquals(loaded.warnings, []);
  } finally {
    w.cleanup();
  }
});

Deno.test("load: a wrong type names the file (with ~), the line, the key, the expected type and the value", async () => {
  const w = makeWorld();
  try {
    w.write(globalFile(w), '# cores\n\nvm_cpus = "four"\n');
    const e = await assertRejects(() => load(w), ConfigError);
    assertEquals(
      e.message,
      '~/.config/tachikoma/config.toml:3: vm_cpus: expected integer, got string "four"',
    );
    assertEquals(e.exitCode, 2);
  } finally {
    w.cleanup();
  }
});

Deno.test("load: more wrong values, in sections and arrays, with their lines", async () => {
  const w = makeWorld();
  try {
    const cases: [string, string][] = [
      ["[incus]\nproject = 'p'\nsocket = 42\n", "3: incus.socket: expected string, got integer 42"],
      [
        "share_claude_dirs = [\n  'ok',\n  '../etc',\n]\n",
        '1: share_claude_dirs[1]: must contain only alphanumeric characters, hyphens, or underscores (got "../etc")',
      ],
      [
        "backend = 'vmware'\n",
        '1: backend: expected one of "tart", "incus", "truenas", got "vmware"',
      ],
      [
        "credential_proxy_bind = '0.0.0.0'\n",
        "1: credential_proxy_bind: must not be 0.0.0.0 or ::",
      ],
      ["ssh_port = 70000\n", "1: ssh_port: expected a value <= 65535, got 70000"],
      ["sync_gh_auth = 'yes'\n", '1: sync_gh_auth: expected boolean, got string "yes"'],
      ["incus = 'x'\n", '1: incus: expected table, got string "x"'],
      [
        "[truenas]\napi_key = 12345678\n",
        "2: truenas.api_key: expected string, got integer (value hidden)",
      ],
      [
        "vm_cpus = 'a'\nvm_memory = 'b'\n",
        '1: vm_cpus: expected integer, got string "a" (and 1 more problem)',
      ],
    ];
    for (const [text, expected] of cases) {
      w.write("repo/.tachikoma.local.toml", text);
      const e = await assertRejects(() => load(w), ConfigError);
      assertStringIncludes(e.message, `${w.repo}/.tachikoma.local.toml:${expected}`);
      assert(!e.message.includes("\n"), "one line");
    }
  } finally {
    w.cleanup();
  }
});

Deno.test("load: a TOML syntax error names file, line and column", async () => {
  const w = makeWorld();
  try {
    w.write("repo/.tachikoma.toml", 'vm_cpus = 4\nssh_user = = "x"\n');
    const e = await assertRejects(() => load(w), ConfigError);
    assertEquals(e.message, `${w.repo}/.tachikoma.toml:2:12: TOML syntax error: invalid value`);
  } finally {
    w.cleanup();
  }
});

Deno.test("load: an unreadable config path is a config error naming it", async () => {
  const w = makeWorld();
  try {
    Deno.mkdirSync(`${w.repo}/.tachikoma.toml`); // a directory where a file should be
    const e = await assertRejects(() => load(w), ConfigError);
    assertStringIncludes(e.message, `${w.repo}/.tachikoma.toml: cannot read:`);
  } finally {
    w.cleanup();
  }
});

Deno.test("load: unknown keys and sections are warnings with a did-you-mean, and are dropped", async () => {
  const w = makeWorld();
  try {
    w.write(globalFile(w), "vm_cpu = 8\nsocket = '/s'\n[incus]\nsockett = '/x'\n[incsu]\na = 1\n");
    const loaded = await load(w);
    const g = "~/.config/tachikoma/config.toml";
    assertEquals(loaded.warnings, [
      `${g}:1: unknown key vm_cpu, ignored (did you mean vm_cpus?)`,
      `${g}:2: unknown key socket, ignored (did you mean incus.socket?)`,
      `${g}:4: unknown key incus.sockett, ignored (did you mean incus.socket?)`,
      `${g}:5: unknown section [incsu], ignored (did you mean [incus]?)`,
    ]);
    assertEquals(loaded.logged, loaded.warnings.map((m) => `warning: ${m}`));
    assertEquals(loaded.config.vm_cpus, 4);
    assert(!("vm_cpu" in loaded.config));
    assertEquals(loaded.config.incus.socket, "/var/lib/incus/unix.socket");
  } finally {
    w.cleanup();
  }
});

Deno.test("load: environment values are coerced to the key's type", async () => {
  const w = makeWorld();
  try {
    const loaded = await load(w, {
      TACHIKOMA_VM_CPUS: "16",
      TACHIKOMA_SYNC_GH_AUTH: "yes",
      TACHIKOMA_CREDENTIAL_PROXY: "0",
      TACHIKOMA_SHARE_CLAUDE_DIRS: "rules, skills",
      TACHIKOMA_EGRESS_ALLOW: '["pypi.org", "a,b.example"]',
      TACHIKOMA_INCUS_SOCKET: "/run/incus/unix.socket",
      TACHIKOMA_TRUENAS_PORT: "8443",
      TACHIKOMA_CONFIG_DIR: `${w.root}/cfg`,
      TACHIKOMA_TEST_WHATEVER: "1",
    });
    const c = loaded.config;
    assertEquals(c.vm_cpus, 16);
    assertEquals(c.sync_gh_auth, true);
    assertEquals(c.credential_proxy, false);
    assertEquals(c.share_claude_dirs, ["rules", "skills"]);
    assertEquals(c.egress_allow, ["pypi.org", "a,b.example"]);
    assertEquals(c.incus.socket, "/run/incus/unix.socket");
    assertEquals(c.truenas.port, 8443);
    assertEquals(loaded.sources["truenas.port"], {
      kind: "env",
      variable: "TACHIKOMA_TRUENAS_PORT",
    });
    assertEquals(loaded.warnings, []);
  } finally {
    w.cleanup();
  }
});

Deno.test("load: environment errors name the variable", async () => {
  const w = makeWorld();
  try {
    const cases: [Record<string, string>, string][] = [
      [{ TACHIKOMA_VM_CPUS: "four" }, 'TACHIKOMA_VM_CPUS: expected integer, got "four"'],
      [{ TACHIKOMA_VM_CPUS: "0" }, "TACHIKOMA_VM_CPUS: expected a value >= 1, got 0"],
      [
        { TACHIKOMA_SYNC_GH_AUTH: "maybe" },
        'TACHIKOMA_SYNC_GH_AUTH: expected boolean (true/false/1/0/yes/no), got "maybe"',
      ],
      [
        { TACHIKOMA_BACKEND: "docker" },
        'TACHIKOMA_BACKEND: expected one of "tart", "incus", "truenas", got "docker"',
      ],
      [
        { TACHIKOMA_SHARE_CLAUDE_DIRS: "ok,../x" },
        "TACHIKOMA_SHARE_CLAUDE_DIRS[1]: must contain only",
      ],
    ];
    for (const [vars, expected] of cases) {
      const e = await assertRejects(() => load(w, vars), ConfigError);
      assertStringIncludes(e.message, expected);
      assertEquals(e.exitCode, 2);
    }
  } finally {
    w.cleanup();
  }
});

Deno.test("load: a misspelt TACHIKOMA_ variable is a warning with a did-you-mean", async () => {
  const w = makeWorld();
  try {
    const loaded = await load(w, { TACHIKOMA_VM_CPU: "8" });
    assertEquals(loaded.warnings, [
      "environment variable TACHIKOMA_VM_CPU is not a tachikoma setting (did you mean TACHIKOMA_VM_CPUS?); ignored",
    ]);
    assertEquals(loaded.config.vm_cpus, 4);
  } finally {
    w.cleanup();
  }
});

Deno.test("load: paths expand ~ and resolve against the file's directory (env: the cwd)", async () => {
  const w = makeWorld();
  try {
    w.write(globalFile(w), "worktree_dir = '~/wt'\n[incus]\nclient_cert = 'certs/client.crt'\n");
    w.write(
      "repo/.tachikoma.toml",
      "provision_scripts = ['scripts/setup.sh', '/abs/x.sh']\n" +
        "[tart]\nbinary = 'tart'\n",
    );
    w.write("repo/.tachikoma.local.toml", "[tart]\nbinary = 'bin/tart'\n");
    await trust(w, ".tachikoma.toml", ".tachikoma.local.toml");
    Deno.mkdirSync(`${w.repo}/sub`);
    const c = (await load(w, {}, { cwd: `${w.repo}/sub` })).config;
    assertEquals(c.worktree_dir, `${w.home}/wt`);
    assertEquals(c.incus.client_cert, `${w.configDir}/certs/client.crt`);
    assertEquals(c.provision_scripts, [`${w.repo}/scripts/setup.sh`, "/abs/x.sh"]);
    assertEquals(c.tart.binary, `${w.repo}/bin/tart`);
    w.write("repo/.tachikoma.local.toml", "[tart]\nbinary = 'tart'\n");
    await trust(w, ".tachikoma.local.toml");
    assertEquals((await load(w)).config.tart.binary, "tart"); // a bare command stays a PATH lookup
    const env = await load(w, { TACHIKOMA_WORKTREE_DIR: "../trees" }, { cwd: `${w.repo}/sub` });
    assertEquals(env.config.worktree_dir, `${w.repo}/trees`);
  } finally {
    w.cleanup();
  }
});

Deno.test("load: hostile string values pass through unchanged", async () => {
  const w = makeWorld();
  try {
    const hostile = `it's "$(touch /tmp/pwned)" \`id\`\nünï 🚀`;
    w.write("repo/.tachikoma.local.toml", `ssh_user = ${JSON.stringify(hostile)}\n`);
    assertEquals((await load(w)).config.ssh_user, hostile);
    assertEquals((await load(w, { TACHIKOMA_BASE_IMAGE: hostile })).config.base_image, hostile);
  } finally {
    w.cleanup();
  }
});

Deno.test("load: comment-only files count as empty; the api key is registered as a secret", async () => {
  const w = makeWorld();
  try {
    w.write(globalFile(w), "# nothing yet\n\n   # really\n");
    assertEquals((await load(w)).config, defaultConfig("linux"));
    const key = "1-abcdefghijklmnopqrstuvwxyz";
    w.write("repo/.tachikoma.local.toml", `[truenas]\napi_key = "${key}"\n`);
    await trust(w, ".tachikoma.local.toml");
    clearSecrets();
    assertEquals((await load(w)).config.truenas.api_key, key);
    assertEquals(redact(`token ${key}`), "token [REDACTED]");
    clearSecrets();
  } finally {
    w.cleanup();
  }
});

Deno.test("load: on macOS the old ~/Library/Application Support file is read when the new one is absent, with a warning once", async () => {
  const w = makeWorld();
  try {
    const legacy = w.write(
      "home/Library/Application Support/tachikoma/config.toml",
      "vm_cpus = 7\n",
    );
    const first = await load(w, {}, { os: "darwin" });
    assertEquals(first.config.vm_cpus, 7);
    assertEquals(first.sources.vm_cpus, { kind: "global", file: legacy });
    assertEquals(first.files.legacyGlobal, legacy);
    assertEquals(first.warnings.length, 1);
    assertStringIncludes(
      first.warnings[0],
      "reading ~/Library/Application Support/tachikoma/config.toml",
    );
    assertStringIncludes(
      first.warnings[0],
      "mkdir -p ~/.config/tachikoma && mv ~/'Library/Application Support/tachikoma/config.toml' ~/.config/tachikoma/config.toml",
    );
    assertEquals(first.logged.length, 1);
    // The same process does not repeat it.
    const second = await load(w, {}, { os: "darwin" });
    assertEquals(second.logged, []);
    assertEquals(second.warnings.length, 1);

    // Not on Linux, not with TACHIKOMA_CONFIG_DIR, not once the new file exists.
    assertEquals((await load(w, {}, { os: "linux" })).config.vm_cpus, 4);
    const relocated = await load(w, { TACHIKOMA_CONFIG_DIR: `${w.root}/c` }, { os: "darwin" });
    assertEquals(relocated.config.vm_cpus, 4);
    w.write(globalFile(w), "vm_cpus = 9\n");
    const moved = await load(w, {}, { os: "darwin" });
    assertEquals(moved.config.vm_cpus, 9);
    assertEquals(moved.files.legacyGlobal, null);
    assertEquals(moved.warnings, []);
  } finally {
    w.cleanup();
  }
});
