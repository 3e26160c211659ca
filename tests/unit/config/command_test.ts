import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { parse } from "smol-toml";
import { edit, get, path, set, show } from "../../../src/commands/config.ts";
import { ConfigError, UsageError } from "../../../src/lib/errors.ts";
import { log } from "../../../src/lib/log.ts";
import { envOf, makeContext, makeWorld, type World } from "./helpers.ts";

log.level = "error"; // the commands warn through the process logger; keep test output clean

function deps(w: World, vars: Record<string, string> = {}) {
  return { env: envOf({ HOME: w.home, ...vars }), os: "linux" as const };
}

Deno.test("config show --json: merged config, sources with kind and file, secret redacted", async () => {
  const w = makeWorld();
  try {
    w.write("repo/.tachikoma.toml", "vm_cpus = 8\n[truenas]\napi_key = 'super-secret-key-123'\n");
    const { ctx, stdout } = makeContext(w, { json: true, vars: { TACHIKOMA_SSH_PORT: "2222" } });
    await show(ctx);
    const doc = JSON.parse(stdout());
    assertEquals(doc.config.vm_cpus, 8);
    assertEquals(doc.config.ssh_port, 2222);
    assertEquals(doc.config.incus.socket, "/var/lib/incus/unix.socket");
    // The repo file is not trusted: its gated api_key is listed as ignored, masked.
    assertEquals(doc.config.truenas.api_key, undefined);
    assertEquals(doc.ignored, [{
      key: "truenas.api_key",
      value: "[REDACTED]",
      kind: "repo",
      file: `${w.repo}/.tachikoma.toml`,
      reason: "not trusted",
    }]);
    assert(!stdout().includes("super-secret-key-123"));
    assertEquals(doc.sources.vm_cpus, { kind: "repo", file: `${w.repo}/.tachikoma.toml` });
    assertEquals(doc.sources.ssh_port, { kind: "env", variable: "TACHIKOMA_SSH_PORT" });
    assertEquals(doc.sources["incus.socket"], { kind: "default" });

    w.write(`${w.configDir}/config.toml`, "[truenas]\napi_key = 'super-secret-key-123'\n");
    const mine = makeContext(w, { json: true });
    await show(mine.ctx);
    assertEquals(JSON.parse(mine.stdout()).config.truenas.api_key, "[REDACTED]");
    assert(!mine.stdout().includes("super-secret-key-123"));
  } finally {
    w.cleanup();
  }
});

Deno.test("config show: an aligned KEY VALUE SOURCE table with - for unset", async () => {
  const w = makeWorld();
  try {
    w.write(
      "repo/.tachikoma.local.toml",
      "vm_cpus = 8\n[truenas]\napi_key = 'super-secret-key-123'\n",
    );
    const { ctx, stdout } = makeContext(w);
    await show(ctx);
    const lines = stdout().trimEnd().split("\n");
    assertEquals(lines[0].split(/\s+/), ["KEY", "VALUE", "SOURCE"]);
    const valueCol = lines[0].indexOf("VALUE");
    for (const line of lines.slice(1)) assertEquals(line[valueCol - 1], " ");
    const row = (k: string) => lines.find((l) => l.startsWith(k + " "))!.split(/\s{2,}/);
    assertEquals(row("vm_cpus"), ["vm_cpus", "8", `local ${w.repo}/.tachikoma.local.toml`]);
    assertEquals(row("worktree_dir"), ["worktree_dir", "-", "default"]);
    assertEquals(row("share_claude_dirs")[1], '["rules","agents","plugins","skills"]');
    // The untrusted file's gated value: its own row, masked, marked ignored.
    const keyRows = lines.filter((l) => l.startsWith("truenas.api_key ")).map((l) =>
      l.split(/\s{2,}/)
    );
    assertEquals(keyRows, [
      ["truenas.api_key", "-", "default"],
      [
        "truenas.api_key",
        "[REDACTED]",
        `ignored: local ${w.repo}/.tachikoma.local.toml (not trusted)`,
      ],
    ]);
    assert(!stdout().includes("super-secret"));
    assert(lines.every((l) => l === l.trimEnd()), "no trailing spaces");
  } finally {
    w.cleanup();
  }
});

Deno.test("config get: plain and dotted keys, a whole section, unset values, --json", async () => {
  const w = makeWorld();
  try {
    w.write("repo/.tachikoma.toml", "[incus]\nimage = 'lab'\n");
    let c = makeContext(w);
    await get(c.ctx, "incus.image");
    assertEquals(c.stdout(), "lab\n");
    c = makeContext(w);
    await get(c.ctx, "vm_cpus");
    assertEquals(c.stdout(), "4\n");
    c = makeContext(w);
    await get(c.ctx, "worktree_dir");
    assertEquals(c.stdout(), "");
    c = makeContext(w, { json: true });
    await get(c.ctx, "incus.image");
    assertEquals(JSON.parse(c.stdout()), {
      key: "incus.image",
      value: "lab",
      source: { kind: "repo", file: `${w.repo}/.tachikoma.toml` },
    });
    c = makeContext(w, { json: true });
    await get(c.ctx, "worktree_dir");
    assertEquals(JSON.parse(c.stdout()).value, null);
    c = makeContext(w, { json: true });
    await get(c.ctx, "incus");
    const section = JSON.parse(c.stdout());
    assertEquals(section.value.image, "lab");
    assertEquals(section.sources["incus.image"].kind, "repo");
    c = makeContext(w);
    await get(c.ctx, "truenas");
    assertStringIncludes(c.stdout(), "truenas.port");
  } finally {
    w.cleanup();
  }
});

Deno.test("config get: an unknown key is a usage error with a did-you-mean", async () => {
  const w = makeWorld();
  try {
    const { ctx } = makeContext(w);
    const e = await assertRejects(() => get(ctx, "incus.sockt"), UsageError);
    assertEquals(e.message, "unknown config key incus.sockt (did you mean incus.socket?)");
    assertEquals(e.exitCode, 2);
  } finally {
    w.cleanup();
  }
});

Deno.test("config set: writes the user config by default (dir 0700, file 0600), creating it", async () => {
  const w = makeWorld();
  try {
    const { ctx, stdout } = makeContext(w);
    await set(ctx, { key: "vm_cpus", value: "8" }, deps(w));
    const file = `${w.configDir}/config.toml`;
    assertEquals(Deno.readTextFileSync(file), "vm_cpus = 8\n");
    assertEquals(Deno.statSync(file).mode! & 0o777, 0o600);
    assertEquals(Deno.statSync(w.configDir).mode! & 0o777, 0o700);
    assertEquals(stdout(), "set vm_cpus = 8 in ~/.config/tachikoma/config.toml\n");
    await set(ctx, { key: "incus.socket", value: "/run/incus.sock", global: true }, deps(w));
    assertEquals(
      Deno.readTextFileSync(file),
      'vm_cpus = 8\n\n[incus]\nsocket = "/run/incus.sock"\n',
    );
    // No temporary files left behind.
    assertEquals(
      Deno.readDirSync(w.configDir).toArray().filter((e) => e.isFile).map((e) => e.name),
      ["config.toml"],
    );
  } finally {
    w.cleanup();
  }
});

Deno.test("config set: preserves comments, order and other sections", async () => {
  const w = makeWorld();
  try {
    const before = "# my settings\nvm_cpus = 2 # small box\n\n[incus]\n# lab\nproject = 'lab'\n\n" +
      "[truenas]\nhost = 'nas'\n";
    const file = w.write("repo/.tachikoma.local.toml", before);
    const { ctx } = makeContext(w);
    await set(ctx, { key: "vm_cpus", value: "6", local: true }, deps(w));
    await set(ctx, { key: "incus.network", value: "tkbr0", local: true }, deps(w));
    await set(ctx, { key: "share_claude_dirs", value: "rules, skills", local: true }, deps(w));
    assertEquals(
      Deno.readTextFileSync(file),
      '# my settings\nvm_cpus = 6 # small box\nshare_claude_dirs = ["rules", "skills"]\n\n' +
        "[incus]\n# lab\nproject = 'lab'\nnetwork = \"tkbr0\"\n\n[truenas]\nhost = 'nas'\n",
    );
  } finally {
    w.cleanup();
  }
});

Deno.test("config set --repo / --local write the repo files; hostile values round-trip", async () => {
  const w = makeWorld();
  try {
    const { ctx } = makeContext(w);
    const hostile = `it's "$(touch /tmp/pwned)" \`id\` ünï 🚀`;
    await set(ctx, { key: "ssh_user", value: hostile, repo: true }, deps(w));
    const repoFile = `${w.repo}/.tachikoma.toml`;
    assertEquals(
      (parse(Deno.readTextFileSync(repoFile)) as { ssh_user: string }).ssh_user,
      hostile,
    );
    assertEquals(Deno.statSync(repoFile).mode! & 0o777, 0o644);
    await set(ctx, { key: "sync_gh_auth", value: "yes", local: true }, deps(w));
    assertEquals(Deno.readTextFileSync(`${w.repo}/.tachikoma.local.toml`), "sync_gh_auth = true\n");
    const c = makeContext(w);
    await get(c.ctx, "ssh_user");
    assertEquals(c.stdout(), hostile + "\n");
  } finally {
    w.cleanup();
  }
});

Deno.test("config set: the value is validated first; the file is left untouched on error", async () => {
  const w = makeWorld();
  try {
    const file = w.write("repo/.tachikoma.local.toml", "# keep\nvm_cpus = 2\n");
    const { ctx } = makeContext(w);
    const cases: [string, string, string][] = [
      ["vm_cpus", "four", 'vm_cpus: expected integer, got "four"'],
      ["vm_cpus", "0", "vm_cpus: expected a value >= 1, got 0"],
      ["backend", "docker", 'backend: expected one of "tart", "incus", "truenas", got "docker"'],
      ["credential_proxy_bind", "0.0.0.0", "credential_proxy_bind: must not be 0.0.0.0 or ::"],
      ["incus.remote", "not a url", 'incus.remote: expected a URL, got "not a url"'],
    ];
    for (const [key, value, message] of cases) {
      const e = await assertRejects(
        () => set(ctx, { key, value, local: true }, deps(w)),
        ConfigError,
      );
      assertStringIncludes(e.message, message);
    }
    assertEquals(Deno.readTextFileSync(file), "# keep\nvm_cpus = 2\n");
  } finally {
    w.cleanup();
  }
});

Deno.test("config set: unknown key, section name, two scopes, no repo, broken file", async () => {
  const w = makeWorld();
  try {
    const { ctx } = makeContext(w);
    let e: Error = await assertRejects(
      () => set(ctx, { key: "vm_cpu", value: "2" }, deps(w)),
      UsageError,
    );
    assertEquals(e.message, "unknown config key vm_cpu (did you mean vm_cpus?)");
    e = await assertRejects(() => set(ctx, { key: "incus", value: "x" }, deps(w)), UsageError);
    assertStringIncludes(e.message, "incus is a section");
    e = await assertRejects(
      () => set(ctx, { key: "vm_cpus", value: "2", repo: true, local: true }, deps(w)),
      UsageError,
    );
    assertEquals(e.message, "use only one of --repo, --local");
    const outside = makeContext(w, { cwd: w.home });
    e = await assertRejects(
      () => set(outside.ctx, { key: "vm_cpus", value: "2", repo: true }, deps(w)),
      UsageError,
    );
    assertStringIncludes(e.message, "--repo needs a git repository");
    w.write("repo/.tachikoma.toml", "vm_cpus = = 2\n");
    e = await assertRejects(
      () => set(ctx, { key: "vm_cpus", value: "2", repo: true }, deps(w)),
      ConfigError,
    );
    assertEquals(e.message, `${w.repo}/.tachikoma.toml:1:11: TOML syntax error: invalid value`);
  } finally {
    w.cleanup();
  }
});

Deno.test("config set: a symlinked config file stays a symlink", async () => {
  const w = makeWorld();
  try {
    const real = w.write("dotfiles/tachikoma.toml", "vm_cpus = 2\n");
    Deno.mkdirSync(w.configDir, { recursive: true });
    Deno.symlinkSync(real, `${w.configDir}/config.toml`);
    const { ctx } = makeContext(w);
    await set(ctx, { key: "vm_cpus", value: "3" }, deps(w));
    assert(Deno.lstatSync(`${w.configDir}/config.toml`).isSymlink);
    assertEquals(Deno.readTextFileSync(real), "vm_cpus = 3\n");
  } finally {
    w.cleanup();
  }
});

Deno.test("config path: files and whether each exists (--json and table)", async () => {
  const w = makeWorld();
  try {
    w.write("repo/.tachikoma.toml", "");
    let c = makeContext(w, { json: true });
    await path(c.ctx, deps(w));
    assertEquals(JSON.parse(c.stdout()), {
      dir: w.configDir,
      global: { path: `${w.configDir}/config.toml`, exists: false },
      legacy_global: null,
      repo: { path: `${w.repo}/.tachikoma.toml`, exists: true },
      local: { path: `${w.repo}/.tachikoma.local.toml`, exists: false },
      repo_root: w.repo,
      main_repo_root: w.repo,
    });
    c = makeContext(w, { cwd: w.home });
    await path(c.ctx, deps(w));
    assertEquals(c.stdout().split("\n").map((l) => l.split(/\s+/)), [
      ["SCOPE", "PATH", "EXISTS"],
      ["global", "~/.config/tachikoma/config.toml", "no"],
      ["repo", "-", "-"],
      ["local", "-", "-"],
      [""],
    ]);
  } finally {
    w.cleanup();
  }
});

Deno.test("config edit: creates dir and file, runs $VISUAL over $EDITOR, validates the result", async () => {
  const w = makeWorld();
  try {
    const visual = w.write("bin/visual", "#!/bin/sh\nprintf 'vm_cpus = 12\\n' >> \"$1\"\n");
    const editor = w.write("bin/editor", "#!/bin/sh\nprintf 'vm_cpus = 13\\n' >> \"$1\"\n");
    Deno.chmodSync(visual, 0o755);
    Deno.chmodSync(editor, 0o755);
    const { ctx, stdout } = makeContext(w);
    await edit(ctx, {}, deps(w, { VISUAL: visual, EDITOR: editor }));
    assertEquals(Deno.readTextFileSync(`${w.configDir}/config.toml`), "vm_cpus = 12\n");
    assertEquals(Deno.statSync(`${w.configDir}/config.toml`).mode! & 0o777, 0o600);
    assertEquals(stdout(), "~/.config/tachikoma/config.toml is valid\n");

    // $EDITOR when $VISUAL is unset; a now-invalid file is reported with its line.
    await edit(ctx, { local: true }, deps(w, { EDITOR: editor }));
    assertEquals(Deno.readTextFileSync(`${w.repo}/.tachikoma.local.toml`), "vm_cpus = 13\n");
    const e = await assertRejects(
      () => edit(ctx, { local: true }, deps(w, { EDITOR: editor })),
      ConfigError,
    );
    assertStringIncludes(e.message, `${w.repo}/.tachikoma.local.toml:2:`);
  } finally {
    w.cleanup();
  }
});

Deno.test("config edit: a failing editor is an error that says the file was not checked", async () => {
  const w = makeWorld();
  try {
    const { ctx } = makeContext(w);
    const e = await assertRejects(
      () => edit(ctx, {}, deps(w, { VISUAL: "exit 3 ||" })),
      Error,
    );
    assertStringIncludes(e.message, "exited with status 3");
  } finally {
    w.cleanup();
  }
});
