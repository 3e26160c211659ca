/**
 * The provisioner against a local sandbox double (real shells, temp guest home): step order,
 * resume and `only`, errors, hostile values in the profile, idempotence, fingerprints.
 * The lab test (tests/integration/provision_test.ts) runs every step in a real container.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import {
  createProvisioner,
  ProvisionError,
  STEP_NAMES,
  stepGroups,
} from "../../../src/provision/mod.ts";
import { Logger } from "../../../src/lib/log.ts";
import { IDENTITY_MARK } from "../../../src/provision/ssh_key.ts";
import { registerSecret } from "../../../src/lib/redact.ts";
import { UsageError } from "../../../src/lib/errors.ts";
import {
  dropOutput,
  localSandbox,
  pwnedPath,
  testConfig,
  testContext,
  testRecord,
} from "./helpers.ts";

const HOSTILE = (p: string) =>
  `it's "q" \`touch ${p}\` $(touch ${p}); touch ${p}\nline2\t$HOME ünï 🙂 \\ '\\'' end\n`;

function recorder() {
  const lines: string[] = [];
  return { lines, logger: new Logger({ level: "debug", sink: (l) => lines.push(l) }) };
}

/** A provisioner with an empty host home and an empty proxy environment. */
async function proxyProvisioner(dir: string) {
  return createProvisioner({
    home: await hostHome(dir),
    env: () => undefined,
    proxyEnv: () => ({}),
  });
}

/** The steps a run reports done, in order, and the callback that records them. */
function stepsDone(): { done: string[]; onStepDone: (s: string) => Promise<void> } {
  const done: string[] = [];
  return {
    done,
    onStepDone: (s) => {
      done.push(s);
      return Promise.resolve();
    },
  };
}

async function hostHome(dir: string, files: Record<string, string> = {}): Promise<string> {
  const home = `${dir}/host-home`;
  await Deno.mkdir(`${home}/.claude`, { recursive: true });
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(`${home}/${path}`.replace(/\/[^/]+$/, ""), { recursive: true });
    await Deno.writeTextFile(`${home}/${path}`, text);
  }
  return home;
}

/** A main checkout at `<dir>/repo` (one commit) with a worktree at `<dir>/wt`; returns the repo. */
async function repoWithWorktree(dir: string): Promise<string> {
  const repo = `${dir}/repo`;
  await Deno.mkdir(repo);
  const git = (...args: string[]) =>
    new Deno.Command("git", { args: ["-C", repo, ...args], stdout: "null" }).output();
  await git("init", "-q", "-b", "main");
  await git(
    "-c",
    "user.name=t",
    "-c",
    "user.email=t@t",
    "commit",
    "-q",
    "--allow-empty",
    "-m",
    "i",
  );
  await git("worktree", "add", "-q", "-b", "feat", `${dir}/wt`);
  return repo;
}

/** Sources the guest's .profile in `sh` and prints a variable, base64 (byte-exact compare). */
async function profileVar(guestHome: string, name: string): Promise<string> {
  const out = await new Deno.Command("sh", {
    args: ["-c", `. ./.profile 2>/dev/null; printf %s "$${name}" | base64 -w0`],
    cwd: guestHome,
    env: { HOME: guestHome },
  }).output();
  return new TextDecoder().decode(out.stdout);
}

const b64 = (s: string) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));

Deno.test("steps are the nine of the recipe, in order", () => {
  assertEquals(STEP_NAMES, [
    "bootstrap",
    "ssh_key",
    "code",
    "hostname",
    "profile",
    "claude",
    "gh_auth",
    "scripts",
    "sessions",
  ]);
});

Deno.test("profile: hostile proxy and MCP values arrive byte-exact, nothing runs, rerun identical", async () => {
  const sb = await localSandbox();
  try {
    const pwned = pwnedPath();
    const hostile = HOSTILE(pwned);
    const home = await hostHome(sb.dir, {
      ".claude/settings.json": JSON.stringify({
        mcpServers: {
          a: { env: { MCP_A: hostile, ANTHROPIC_API_KEY: "sk-ant-api03-real", "bad name": "x" } },
          b: { env: { TK_PROXY_URL: "override attempt", N: 5 } },
        },
      }),
    });
    await Deno.writeTextFile(`${sb.home}/.profile`, "# user's own\nexport KEEP=1"); // no final newline
    const { lines, logger } = recorder();
    const p = createProvisioner({
      home,
      env: () => undefined,
      logger,
      proxyEnv: () => ({ TK_PROXY_URL: "http://10.0.0.1:19280", TK_HOSTILE: hostile }),
    });
    // MCP values enter the guest only when guest_secrets lets them in.
    const ctx = testContext(
      sb,
      testConfig({ credential_proxy: true, guest_secrets: ["mcp.*.env.*"] }),
    );
    await p.run(ctx, { after: null, only: ["profile"], onStepDone: () => Promise.resolve() });
    const first = await Deno.readFile(`${sb.home}/.profile`);
    const text = new TextDecoder().decode(first);
    assert(text.startsWith("# user's own\nexport KEEP=1\n# BEGIN tachikoma managed\n"));
    assert(text.endsWith("cd '/mnt/tachikoma/code'\n# END tachikoma managed\n"));
    assertEquals(await profileVar(sb.home, "TK_HOSTILE"), b64(hostile));
    assertEquals(await profileVar(sb.home, "MCP_A"), b64(hostile));
    assertEquals(await profileVar(sb.home, "TACHIKOMA"), b64("1"));
    assertEquals(await profileVar(sb.home, "KEEP"), b64("1"));
    assertEquals(await profileVar(sb.home, "TK_PROXY_URL"), b64("http://10.0.0.1:19280"));
    assertEquals(await profileVar(sb.home, "ANTHROPIC_API_KEY"), "", "no credential in proxy mode");
    assert(lines.some((l) => l.includes('skipping invalid MCP env var name: "bad name"')));
    assert(lines.some((l) => l.includes("TK_PROXY_URL would override")));
    assertEquals((await Deno.stat(`${sb.home}/.profile`)).mode! & 0o777, 0o600);

    await p.run(ctx, { after: null, only: ["profile"], onStepDone: () => Promise.resolve() });
    assertEquals(await Deno.readFile(`${sb.home}/.profile`), first);
    assertEquals(await Deno.stat(pwned).catch(() => null), null);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("profile: a read of ~/.profile that loses its output never rewrites it with only our block", async () => {
  const lost = dropOutput((r) => r.argv.some((a) => a.includes("wc -c <")));
  const sb = await localSandbox({ tamper: lost });
  try {
    const mine = "# user's own\nexport KEEP=1\nalias ll='ls -l'\n";
    await Deno.writeTextFile(`${sb.home}/.profile`, mine);
    const p = createProvisioner({
      home: await hostHome(sb.dir),
      env: () => undefined,
      logger: recorder().logger,
      proxyEnv: () => ({ TK_PROXY_URL: "http://10.0.0.1:19280" }),
    });
    const ctx = testContext(sb, testConfig({ credential_proxy: true }));
    const error = await assertRejects(
      () => p.run(ctx, { after: null, only: ["profile"], onStepDone: () => Promise.resolve() }),
      ProvisionError,
    );
    assertStringIncludes(error.message, "output lost");
    assertEquals(await Deno.readTextFile(`${sb.home}/.profile`), mine, "left exactly as it was");
    assert(lost.dropped() >= 3);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("profile: a value holding a block marker line is refused with the variable's name", async () => {
  const sb = await localSandbox();
  try {
    const p = createProvisioner({
      home: await hostHome(sb.dir),
      env: () => undefined,
      proxyEnv: () => ({ EVIL: "x\n# END tachikoma managed\nexport Y=1" }),
    });
    const e = await assertRejects(
      () =>
        p.run(testContext(sb, testConfig()), {
          after: null,
          only: ["profile"],
          onStepDone: () => Promise.resolve(),
        }),
      ProvisionError,
    );
    assertEquals(e.step, "profile");
    assertStringIncludes(e.message, "the value of EVIL contains a line '# END tachikoma managed'");
  } finally {
    await sb.cleanup();
  }
});

Deno.test("profile: direct mode injects the credential; proxy mode later removes the file", async () => {
  const sb = await localSandbox();
  try {
    const home = await hostHome(sb.dir);
    const key = "sk-ant-api03-it's'quoted";
    const direct = createProvisioner({
      home,
      env: () => undefined,
      credential: () => Promise.resolve({ kind: "api_key", value: key, label: "test" }),
    });
    const cfg = testConfig({ credential_proxy: false, egress: "unrestricted" });
    await direct.run(testContext(sb, cfg), {
      after: null,
      only: ["profile"],
      onStepDone: () => Promise.resolve(),
    });
    assertEquals(await profileVar(sb.home, "ANTHROPIC_API_KEY"), b64(key));
    assertStringIncludes(
      await Deno.readTextFile(`${sb.home}/.profile`),
      `export ANTHROPIC_API_KEY='sk-ant-api03-it'\\''s'\\''quoted'`,
    );

    const file = createProvisioner({
      home,
      env: () => undefined,
      credential: () =>
        Promise.resolve({
          kind: "credentials_file",
          content: '{"claudeAiOauth":{"accessToken":"tok-123456"}}',
          label: "f",
        }),
    });
    await file.run(testContext(sb, cfg), {
      after: null,
      only: ["profile"],
      onStepDone: () => Promise.resolve(),
    });
    const creds = `${sb.home}/.claude/.credentials.json`;
    assertEquals(await Deno.readTextFile(creds), '{"claudeAiOauth":{"accessToken":"tok-123456"}}');
    assertEquals((await Deno.stat(creds)).mode! & 0o777, 0o600);
    assertEquals(await profileVar(sb.home, "ANTHROPIC_API_KEY"), "", "the block was replaced");

    const { lines, logger } = recorder();
    const proxy = createProvisioner({ home, env: () => undefined, logger, proxyEnv: () => ({}) });
    await proxy.run(testContext(sb, testConfig({ credential_proxy: true })), {
      after: null,
      only: ["profile"],
      onStepDone: () => Promise.resolve(),
    });
    assertEquals(await Deno.stat(creds).catch(() => null), null);
    assert(lines.some((l) => l.includes("removed ~/.claude/.credentials.json")));
  } finally {
    await sb.cleanup();
  }
});

Deno.test("fingerprint then run of one context ask the host once: one lookup, one warning", async () => {
  const sb = await localSandbox();
  try {
    const home = await hostHome(sb.dir);
    const { lines, logger } = recorder();
    let lookups = 0;
    const p = createProvisioner({
      home,
      env: () => undefined,
      logger,
      credential: () => {
        lookups++;
        return Promise.resolve(null);
      },
    });
    const repo = await repoWithWorktree(sb.dir);
    const record = testRecord({ repo_root: repo, worktree_path: `${sb.dir}/wt` });
    const cfg = testConfig({ credential_proxy: false, egress: "unrestricted" });
    const ctx = testContext(sb, cfg, record);
    await p.fingerprint(ctx);
    await p.run(ctx, { after: null, only: ["profile"], onStepDone: () => Promise.resolve() });
    assertEquals(lookups, 1);
    const warned = lines.filter((l) => l.includes("no Claude credential found on the host"));
    assertEquals(warned.length, 1, lines.join("\n"));
    // Another context (another sandbox, another command) asks again.
    await p.fingerprint(testContext(sb, cfg, record));
    assertEquals(lookups, 2);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("profile: without credential_proxy, a restricted egress still gets the proxy's variables", async () => {
  const sb = await localSandbox();
  try {
    const home = await hostHome(sb.dir);
    const proxyUrl = "http://tachikoma:tok@10.213.0.1:19280";
    const asked: string[] = [];
    const p = createProvisioner({
      home,
      env: () => undefined,
      credential: () => Promise.resolve({ kind: "api_key", value: "sk-direct", label: "test" }),
      proxyEnv: (ctx) => {
        asked.push(ctx.config.egress);
        return { HTTPS_PROXY: proxyUrl, NO_PROXY: "localhost" };
      },
    });
    const run = (egress: "agent" | "unrestricted") =>
      p.run(testContext(sb, testConfig({ credential_proxy: false, egress })), {
        after: null,
        only: ["profile"],
        onStepDone: () => Promise.resolve(),
      });
    await run("agent");
    // The guest's only way out is the proxy: its variables are there, next to the direct key.
    assertEquals(await profileVar(sb.home, "HTTPS_PROXY"), b64(proxyUrl));
    assertEquals(await profileVar(sb.home, "ANTHROPIC_API_KEY"), b64("sk-direct"));
    assertEquals(asked, ["agent"]);
    await run("unrestricted");
    assertEquals(await profileVar(sb.home, "HTTPS_PROXY"), "", "unrestricted: no proxy");
    assertEquals(asked, ["agent"], "unrestricted: the proxy is not asked");
  } finally {
    await sb.cleanup();
  }
});
Deno.test("ssh_key: the key is added once, 0700/0600, even without a final newline", async () => {
  const sb = await localSandbox();
  try {
    const home = await hostHome(sb.dir);
    await Deno.mkdir(`${sb.home}/.ssh`);
    await Deno.writeTextFile(`${sb.home}/.ssh/authorized_keys`, "ssh-ed25519 AAAAexisting other");
    const p = createProvisioner({ home, env: () => undefined, proxyEnv: () => ({}) });
    const ctx = testContext(sb, testConfig());
    for (let i = 0; i < 2; i++) {
      await p.run(ctx, { after: null, only: ["ssh_key"], onStepDone: () => Promise.resolve() });
    }
    const pub = (await Deno.readTextFile(`${home}/.ssh/tachikoma.pub`)).trim();
    assertEquals(
      await Deno.readTextFile(`${sb.home}/.ssh/authorized_keys`),
      `ssh-ed25519 AAAAexisting other\n${pub}\n`,
    );
    assertEquals((await Deno.stat(`${sb.home}/.ssh`)).mode! & 0o777, 0o700);
    assertEquals((await Deno.stat(`${sb.home}/.ssh/authorized_keys`)).mode! & 0o777, 0o600);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("run: resumes after a step, runs only the listed ones, reports each step done", async () => {
  const sb = await localSandbox();
  try {
    const p = await proxyProvisioner(sb.dir);
    const ctx = testContext(sb, testConfig());
    const { done, onStepDone } = stepsDone();
    await p.run(ctx, { after: "profile", onStepDone });
    assertEquals(done, ["claude", "gh_auth", "scripts", "sessions"]);
    done.length = 0;
    await p.run(ctx, { after: "profile", only: ["ssh_key", "scripts"], onStepDone });
    assertEquals(done, ["ssh_key", "scripts"]);
    await assertRejects(
      () => p.run(ctx, { after: null, only: ["bogus"], onStepDone }),
      UsageError,
      "unknown provisioning step(s): bogus",
    );
    const ac = new AbortController();
    ac.abort(new Error("ctrl-c"));
    await assertRejects(
      () => p.run({ ...ctx, signal: ac.signal }, { after: null, onStepDone }),
      Error,
      "ctrl-c",
    );
  } finally {
    await sb.cleanup();
  }
});

Deno.test("scripts: order, repo-root-relative paths, profile sourced, failure names the step", async () => {
  const sb = await localSandbox();
  try {
    const home = await hostHome(sb.dir);
    const stateDir = `${sb.dir}/state`;
    const repo = `${sb.dir}/repo`;
    await Deno.mkdir(`${stateDir}/profiles`, { recursive: true });
    await Deno.mkdir(`${repo}/.tachikoma/profiles`, { recursive: true });
    await Deno.mkdir(`${repo}/tools`, { recursive: true });
    const append = (tag: string) => `printf '%s:%s\\n' ${tag} "$TK" >> "$HOME/order"\n`;
    await Deno.writeTextFile(`${stateDir}/profiles/b.sh`, append("global-b"));
    await Deno.writeTextFile(`${stateDir}/profiles/a.sh`, append("global-a"));
    await Deno.writeTextFile(`${stateDir}/profiles/not-a-script.txt`, append("never"));
    await Deno.writeTextFile(`${repo}/.tachikoma/profiles/r.sh`, append("repo"));
    await Deno.writeTextFile(`${repo}/tools/setup.sh`, append("config") + "x=$NOPE\n");
    const { lines, logger } = recorder();
    const p = createProvisioner({
      home,
      env: () => undefined,
      logger,
      proxyEnv: () => ({ TK: "from-profile" }),
    });
    const record = testRecord({ repo_root: repo });
    const ctx = testContext(
      sb,
      testConfig({ provision_scripts: ["tools/setup.sh"] }),
      record,
      stateDir,
    );
    const cwd = Deno.cwd();
    Deno.chdir(sb.dir); // relative entries must not resolve against the cwd
    try {
      await p.run(ctx, { after: null, only: ["profile"], onStepDone: () => Promise.resolve() });
      // `set -u` (bash -euo pipefail): the unset variable fails the config script.
      const e = await assertRejects(
        () => p.run(ctx, { after: "gh_auth", onStepDone: () => Promise.resolve() }),
        ProvisionError,
      );
      assertEquals(e.step, "scripts");
      assertStringIncludes(e.message, "provisioning script tools/setup.sh exited with 1");
      assertStringIncludes(e.stderr, "NOPE");
      // The copies of the host scripts are gone, the failed one too.
      assertEquals([...Deno.readDirSync(`${sb.home}/.cache/tachikoma/provision`)], []);
    } finally {
      Deno.chdir(cwd);
    }
    assertEquals(
      await Deno.readTextFile(`${sb.home}/order`),
      "global-a:from-profile\nglobal-b:from-profile\nrepo:from-profile\nconfig:from-profile\n",
    );
    assert(lines.some((l) => l.includes("committed files (review them): ") && l.includes("r.sh")));

    const missing = createProvisioner({ home, env: () => undefined, proxyEnv: () => ({}) });
    const e2 = await assertRejects(
      () =>
        missing.run(
          testContext(sb, testConfig({ provision_scripts: ["nope.sh"] }), record, stateDir),
          { after: "gh_auth", onStepDone: () => Promise.resolve() },
        ),
      ProvisionError,
    );
    assertStringIncludes(
      e2.message,
      `provision_scripts entry 'nope.sh' (${repo}/nope.sh) does not exist`,
    );
  } finally {
    await sb.cleanup();
  }
});

Deno.test("a failing step's error redacts secrets from the guest's stderr", async () => {
  const sb = await localSandbox();
  try {
    const secret = "sk-live-supersecret-value-42";
    registerSecret(secret);
    const repo = `${sb.dir}/repo`;
    await Deno.mkdir(repo);
    await Deno.writeTextFile(`${repo}/leak.sh`, `echo "token ${secret}" >&2\nexit 9\n`);
    const p = await proxyProvisioner(sb.dir);
    const e = await assertRejects(
      () =>
        p.run(
          testContext(
            sb,
            testConfig({ provision_scripts: ["leak.sh"] }),
            testRecord({ repo_root: repo }),
          ),
          { after: "gh_auth", onStepDone: () => Promise.resolve() },
        ),
      ProvisionError,
    );
    assert(!e.message.includes(secret));
    assertStringIncludes(e.message, "token [REDACTED]");
    assertMatch(e.hint!, /resumes at step 'scripts'/);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("claude (install skipped): onboarding patched once, settings cleaned, dirs linked", async () => {
  const sb = await localSandbox();
  try {
    const home = await hostHome(sb.dir, {
      ".claude/settings.json": JSON.stringify({
        statusLine: { command: "x" },
        hooks: {},
        permissions: { deny: ["Read(~/Library/**)", 42, "Bash(curl *)"] },
        model: "opus",
      }),
    });
    await Deno.writeTextFile(`${sb.home}/.claude.json`, '{"numStartups": 7, "userID": "u"}');
    await Deno.mkdir(`${sb.home}/.claude/rules`, { recursive: true }); // a real dir: kept
    const { lines, logger } = recorder();
    const p = createProvisioner({
      home,
      env: () => undefined,
      logger,
      proxyEnv: () => ({ ANTHROPIC_API_KEY: "tachikoma-proxy" }),
    });
    const ctx = testContext(sb, testConfig({ share_claude_dirs: ["rules", "skills"] }));
    await p.run(ctx, { after: null, only: ["claude"], onStepDone: () => Promise.resolve() });
    const cj = JSON.parse(await Deno.readTextFile(`${sb.home}/.claude.json`));
    assertEquals(cj, {
      numStartups: 7,
      userID: "u",
      hasCompletedOnboarding: true,
      customApiKeyResponses: { approved: ["tachikoma-proxy"], rejected: [] },
    });
    const settings = await Deno.readTextFile(`${sb.home}/.claude/settings.json`);
    assertEquals(JSON.parse(settings), {
      model: "opus",
      permissions: { deny: [42, "Bash(curl *)"] },
    });
    assert(lines.some((l) => l.includes("~/.claude/rules in sb is a real directory")) === false);
    const before = [
      await Deno.readFile(`${sb.home}/.claude.json`),
      await Deno.readFile(`${sb.home}/.claude/settings.json`),
    ];
    await p.run(ctx, { after: null, only: ["claude"], onStepDone: () => Promise.resolve() });
    assertEquals([
      await Deno.readFile(`${sb.home}/.claude.json`),
      await Deno.readFile(`${sb.home}/.claude/settings.json`),
    ], before);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("fingerprint: a config change moves only the steps it feeds", async () => {
  const sb = await localSandbox();
  try {
    const home = await hostHome(sb.dir);
    const repo = await repoWithWorktree(sb.dir);
    await Deno.writeTextFile(`${repo}/s.sh`, "true\n");
    const proxy = { value: "http://a" };
    const p = createProvisioner({
      home,
      env: () => undefined,
      proxyEnv: () => ({ X: proxy.value }),
    });
    const record = testRecord({ repo_root: repo, worktree_path: `${sb.dir}/wt` });
    const fp = (overrides = {}) =>
      p.fingerprint(
        testContext(sb, testConfig({ provision_scripts: ["s.sh"], ...overrides }), record),
      );
    const base = await fp();
    assertEquals(Object.keys(base), STEP_NAMES as string[]);
    assertEquals(await fp(), base);
    const changed = (a: Record<string, string>, b: Record<string, string>) =>
      Object.keys(a).filter((k) => a[k] !== b[k]);
    assertEquals(changed(base, await fp({ claude_install: "npm" })), ["claude"]);
    assertEquals(changed(base, await fp({ tmux_install: "package" })), ["sessions"]);
    assertEquals(changed(base, await fp({ claude_flags: ["--verbose"] })), ["profile"]);
    await Deno.writeTextFile(`${repo}/s.sh`, "echo changed\n");
    assertEquals(changed(base, await fp()), ["scripts"]);
    proxy.value = "http://b";
    const afterProxy = await fp();
    assertEquals(changed(base, afterProxy).includes("profile"), true);
    assertNotEquals(afterProxy.profile, base.profile);
    assertEquals(changed(base, await fp({ sync_gh_auth: true })).includes("gh_auth"), true);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("run: networkFirst holds every step until the network is up, not only the network's", async () => {
  const sb = await localSandbox();
  try {
    const p = await proxyProvisioner(sb.dir);
    const { done, onStepDone } = stepsDone();
    for (const networkFirst of [false, true]) {
      done.length = 0;
      let up!: () => void;
      const network = new Promise<void>((r) => up = r);
      const ctx = { ...testContext(sb, testConfig()), network, networkFirst };
      const running = p.run(ctx, { after: null, only: ["ssh_key"], onStepDone });
      // The step does not reach the network: without networkFirst it runs at once.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const early = await Promise.race([
        running.then(() => "finished"),
        new Promise((r) => timer = setTimeout(() => r("waiting"), 2_000)),
      ]);
      clearTimeout(timer);
      assertEquals([networkFirst, early], [networkFirst, networkFirst ? "waiting" : "finished"]);
      assertEquals(done, networkFirst ? [] : ["ssh_key"]);
      up();
      await running;
      assertEquals(done, ["ssh_key"]);
    }
  } finally {
    await sb.cleanup();
  }
});

Deno.test("stepGroups: a clone's per-branch steps together, the rest one by one", () => {
  const steps = (names: string[]) => names.map((name) => ({ name }));
  const names = (groups: { name: string }[][]) => groups.map((g) => g.map((s) => s.name));
  const all = steps([...STEP_NAMES]);
  assertEquals(names(stepGroups(all, false)), STEP_NAMES.map((n) => [n]));
  assertEquals(names(stepGroups(all, true)), [
    ["bootstrap"],
    ["ssh_key", "code", "hostname", "profile"],
    ["claude"],
    ["gh_auth"],
    ["scripts"],
    ["sessions"],
  ]);
  // The user's scripts never run beside anything.
  assertEquals(names(stepGroups(steps(["profile", "scripts", "sessions"]), true)), [
    ["profile"],
    ["scripts"],
    ["sessions"],
  ]);
});

Deno.test("run: side by side, each step recorded once it and those before it are done", async () => {
  // ssh_key's first command, then profile's (its wrapper's removal)
  for (const failing of ["authorized_keys", 'rm -f -- "$1"']) {
    let failed = false;
    const sb = await localSandbox({
      tamper: (request, result) => {
        const hit = !failed && request.argv.some((a) => a.includes(failing));
        if (!hit) return result;
        failed = true;
        return { ...result, code: 1, stderr: new TextEncoder().encode("planted failure") };
      },
    });
    try {
      const p = await proxyProvisioner(sb.dir);
      const { done, onStepDone } = stepsDone();
      const ctx = {
        ...testContext(sb, testConfig()),
        network: Promise.resolve(),
        networkFirst: true,
      };
      const error = await assertRejects(
        () => p.run(ctx, { after: null, only: ["ssh_key", "profile"], onStepDone }),
        ProvisionError,
      );
      if (failing === "authorized_keys") {
        assertStringIncludes(error.message, "ssh_key");
        // The profile ran beside it, but is not recorded: a resumed run starts at ssh_key.
        assertEquals(done, []);
        assert(await Deno.stat(`${sb.home}/.profile`).then(() => true, () => false));
      } else {
        assertEquals(done, ["ssh_key"]);
      }
      // One look-up of the user's home, shared by the steps.
      assertEquals(sb.log.filter((l) => l.argv[0] === "getent").length, 1);
    } finally {
      await sb.cleanup();
    }
  }
});

Deno.test("ssh_key: a clone's guest is asked to make its identity its own before its keys are pinned", async () => {
  const sb = await localSandbox();
  try {
    const home = await hostHome(sb.dir);
    const p = createProvisioner({ home, env: () => undefined, proxyEnv: () => ({}) });
    const asked = () =>
      sb.log.filter((l) => l.user === "root" && l.argv.some((a) => a.includes(IDENTITY_MARK)))
        .map((l) => l.argv.slice(-2));
    const once = { after: null, only: ["ssh_key"], onStepDone: () => Promise.resolve() };
    await p.run(testContext(sb, testConfig()), once);
    await p.run({ ...testContext(sb, testConfig()), clone: true }, once);
    assertEquals(asked(), [[sb.name, "new"], [sb.name, "clone"]]);
  } finally {
    await sb.cleanup();
  }
});
