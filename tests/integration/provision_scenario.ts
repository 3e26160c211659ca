/**
 * The provisioning scenario of issue 6 §3, run on a real Linux guest of any backend (the Incus
 * lab, the fake tart on the lab): a real git repo with a linked worktree shared into the guest,
 * real sshd, the real OpenSSH client. Hostile names and values (quotes, `$()`, backticks,
 * newlines, unicode) must arrive byte-exact and execute nothing; provisioning twice must change
 * nothing; a failed step must resume.
 *
 * @module
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import type { Backend, Share } from "../../src/backends/backend.ts";
import type { Config } from "../../src/config/schema.ts";
import { RecordingReporter } from "../testing/recording_reporter.ts";
import { branchSlug } from "../../src/lib/naming.ts";
import { toBase64 } from "../../src/lib/shell.ts";
import { sandboxShares } from "../../src/core/sandbox_shares.ts";
import { defaultRunner } from "../../src/lib/process.ts";
import { createProvisioner, ProvisionError } from "../../src/provision/mod.ts";
import { Guest } from "../../src/provision/guest.ts";
import type { ProvisionContext } from "../../src/provision/contract.ts";
import { sshBlockBody, writeSshConfigBlock } from "../../src/ssh/config_block.ts";
import { knownHostsFor } from "../../src/ssh/mod.ts";
import { labEnv } from "./lab.ts";
import { host, labConfig, labRecord, runnerWithEnv } from "./provision_lab.ts";

const dec = new TextDecoder();

/** The branch name from the issue (git itself refuses it: it has a space). */
export const ISSUE_BRANCH = `feat/$(touch /tmp/pwned)-'q"x`;
/** A hostile branch git accepts: `${IFS}` instead of the space, plus backticks. */
export const GIT_BRANCH = "feat/$(touch${IFS}/tmp/pwned)-'q\"x`touch${IFS}/tmp/pwned`";
/** A hostile value: quotes, backticks, `$()`, `;`, newlines, tabs, unicode, backslashes. */
export const HOSTILE = 'it\'s "q" `touch /tmp/pwned` $(touch /tmp/pwned); touch /tmp/pwned\n' +
  "second line\t$HOME ünïcødé 🙂 \\ '\\'' end\n";
const HOST_NAME = "Hôst 'Name' $(touch /tmp/pwned)";
const HOST_EMAIL = "host+tk@example.invalid";

/** A guest of one backend for the scenario. */
export interface ScenarioGuest {
  /** Which backend (`record.backend`, `config.backend`). */
  kind: "incus" | "tart";
  backend: Backend;
  /** The sandbox name. */
  name: string;
  /** Config keys this backend needs on top of the scenario's. */
  config?: Partial<Config>;
  /** Creates and boots the guest with `shares` mounted and sshd up; resolves to its address. */
  launch(shares: Share[]): Promise<string>;
  /** Deletes the guest and closes the backend. */
  close(): Promise<void>;
}

/** Opens the backend for a scenario run (tachikoma's state dir and the host home are given). */
export type OpenScenarioGuest = (
  dirs: { stateDir: string; home: string },
) => Promise<ScenarioGuest>;

/** Runs the whole scenario as steps of `t`. */
export async function provisionScenario(
  t: Deno.TestContext,
  open: OpenScenarioGuest,
): Promise<void> {
  await Deno.remove("/tmp/pwned").catch(() => {});
  const T = await Deno.makeTempDir({ prefix: "tk-prov-" });
  const home = `${T}/home`;
  const stateDir = `${T}/state`;
  await Deno.mkdir(`${home}/.claude`, { recursive: true });
  await Deno.mkdir(`${home}/.config/gh`, { recursive: true });
  await Deno.mkdir(`${stateDir}/profiles`, { recursive: true });
  const gitGlobal = `${home}/.gitconfig`;
  await Deno.writeTextFile(gitGlobal, "[safe]\n\tdirectory = *\n");
  const gitEnv = { GIT_CONFIG_GLOBAL: gitGlobal, GIT_CONFIG_NOSYSTEM: "1" };
  const g = (cwd: string, ...args: string[]) => host("git", args, { cwd, env: gitEnv });
  await g(T, "config", "--global", "user.name", HOST_NAME);
  await g(T, "config", "--global", "user.email", HOST_EMAIL);

  // A repo whose path is itself hostile, and a linked worktree on a hostile branch.
  const repoRoot = `${T}/repo $(touch\${IFS}/tmp/pwned) 'q"x`;
  const wt = `${T}/wt`;
  await Deno.mkdir(`${repoRoot}/scripts`, { recursive: true });
  await g(repoRoot, "init", "-q", "-b", "main");
  await Deno.writeTextFile(`${repoRoot}/README`, "hello\n");
  await g(repoRoot, "add", "README");
  await g(repoRoot, "commit", "-q", "-m", "init");
  await g(repoRoot, "worktree", "add", "-q", "-b", GIT_BRANCH, wt);
  const gitFileBefore = await Deno.readFile(`${wt}/.git`);

  // Host Claude files: hooks, statusLine, a macOS deny rule, credentials that must not pass.
  await Deno.writeTextFile(
    `${home}/.claude/settings.json`,
    JSON.stringify({
      theme: "dark",
      hooks: { Stop: [{ command: "/host/hook.sh" }] },
      statusLine: { type: "command", command: "/host/status.sh" },
      permissions: { deny: ["Read(~/Library/Keychains/**)", "Bash(rm -rf /)"], allow: ["Bash"] },
      apiKeyHelper: "/host/key-helper.sh",
      env: { ANTHROPIC_API_KEY: "sk-ant-api03-hostsecretXYZ", KEEP_ME: "yes" },
      mcpServers: {
        srv: {
          command: "srv",
          env: {
            MCP_HOSTILE: HOSTILE,
            ANTHROPIC_API_KEY: "sk-ant-api03-mcpsecret",
            "bad-name": "x",
          },
        },
      },
    }),
  );
  await Deno.writeTextFile(
    `${home}/.claude.json`,
    JSON.stringify({ mcpServers: { usr: { command: "u", env: { USER_MCP: "ünï" } } } }),
  );
  await Deno.writeTextFile(
    `${home}/.config/gh/hosts.yml`,
    "github.com:\n  oauth_token: gho_testtoken123\n",
  );
  await Deno.writeTextFile(
    `${stateDir}/profiles/10-global.sh`,
    'printf "%s" "$TK_HOSTILE" > "$HOME/script-saw"\npwd > "$HOME/script-pwd"\n',
  );
  await Deno.writeTextFile(
    `${repoRoot}/scripts/setup.sh`,
    'echo "failing on purpose" >&2\nexit 1\n',
  );

  // A local install server for Claude's "script" install (on the lab bridge only).
  const gw = labEnv()!.gateway;
  const installer = Deno.serve({ hostname: gw, port: 0, onListen() {} }, (req) => {
    if (new URL(req.url).pathname !== "/install.sh") return new Response("no", { status: 404 });
    return new Response(
      'set -e\nmkdir -p "$HOME/.local/bin"\nprintf \'#!/bin/sh\\necho "9.9.9 (Claude Code)"\\n\' > "$HOME/.local/bin/claude"\nchmod +x "$HOME/.local/bin/claude"\n',
    );
  });
  const port = installer.addr.port;
  const proxyEnv = {
    ANTHROPIC_BASE_URL: `http://${gw}:19280`,
    ANTHROPIC_API_KEY: "tachikoma-proxy",
    HTTP_PROXY: `http://${gw}:19280`,
    HTTPS_PROXY: `http://${gw}:19280`,
    NO_PROXY: `localhost,127.0.0.1,${gw}`,
    no_proxy: `localhost,127.0.0.1,${gw}`,
    TK_HOSTILE: HOSTILE,
  };

  const guest = await open({ stateDir, home });
  const { backend, name } = guest;
  const config = labConfig({
    backend: guest.kind,
    provision_scripts: ["scripts/setup.sh"],
    claude_install: "script",
    sync_gh_auth: true,
    credential_proxy: true,
    // MCP values enter guests only when let in (tests/integration/host_secrets_test.ts).
    guest_secrets: ["mcp.srv.env.MCP_HOSTILE", "mcp.usr.env.USER_MCP"],
    ...guest.config,
  });
  const runner = runnerWithEnv(gitEnv);
  const makeProvisioner = (installUrl = `http://${gw}:${port}/install.sh`) =>
    createProvisioner({
      runner,
      home,
      env: (k) => (k === "HOME" ? home : undefined),
      proxyEnv: () => proxyEnv,
      configSources: { provision_scripts: { kind: "repo", file: `${repoRoot}/.tachikoma.toml` } },
      claudeInstallUrl: installUrl,
    });
  const record = labRecord(name, {
    backend: guest.kind,
    branch: ISSUE_BRANCH,
    worktree_path: wt,
    repo_root: repoRoot,
  });
  const reporter = new RecordingReporter();
  const ctx: ProvisionContext = { backend, sandbox: name, record, config, stateDir, reporter };
  const gx = async (argv: string[], user: "root" | "user" = "user") => {
    const r = await backend.exec(name, { argv, user });
    return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
  };
  // Reads whose output the test needs go through provisioning's own query (a trailer the host
  // must find, asked again when missing): Incus can return exit 0 with the output lost
  // (src/backends/incus/README.md, "Known Incus behaviour"). A CI run once got nothing from
  // `readlink` of the ~/code link, with no way to tell a lost answer from a missing link.
  const reader = new Guest(backend, name, { user: "admin" });
  const gq = async (argv: string[], user: "root" | "user" = "user") => {
    const r = await reader.query('exec "$@"', argv, { what: argv.join(" "), as: user });
    return { code: r.code, out: r.stdout, err: r.stderr };
  };
  const guestFile = async (path: string) => {
    const r = await gq(["sh", "-c", 'base64 -w0 < "$1"', "sh", path], "root");
    assertEquals(r.code, 0, `${path}: ${r.err}`);
    return r.out;
  };

  try {
    const shares = await sandboxShares({
      runner: defaultRunner,
      mainRoot: repoRoot,
      worktreePath: wt,
      home,
      claudeDirs: [],
    });
    const ip = await guest.launch(shares);
    // gh "installed" so the step never reaches for the network.
    await gx([
      "sh",
      "-c",
      "printf '#!/bin/sh\\necho gh stub\\n' > /usr/local/bin/gh && chmod 755 /usr/local/bin/gh",
    ], "root");

    const done: string[] = [];
    const onStepDone = (s: string) => {
      done.push(s);
      return Promise.resolve();
    };
    const provisioner = makeProvisioner();

    await t.step("a failing provisioning script stops the run at step 'scripts'", async () => {
      const error = await assertRejects(
        () => provisioner.run(ctx, { after: null, onStepDone }),
        ProvisionError,
      );
      assertEquals(error.step, "scripts");
      assertStringIncludes(error.message, "scripts/setup.sh exited with 1");
      assertStringIncludes(error.message, "failing on purpose");
      assertEquals(done, [
        "bootstrap",
        "ssh_key",
        "code",
        "hostname",
        "profile",
        "claude",
        "gh_auth",
      ]);
      assert(reporter.events.includes("fail Running provisioning scripts"));
      // The failed script's copy is removed too.
      const left = await gq(["sh", "-c", "ls -A ~/.cache/tachikoma/provision | wc -l"]);
      assertEquals(left.out.trim(), "0");
    });

    await t.step(
      "the next run resumes at 'scripts' and runs only it and what follows",
      async () => {
        await Deno.writeTextFile(`${repoRoot}/scripts/setup.sh`, 'touch "$HOME/setup-ran"\n');
        done.length = 0;
        await provisioner.run(ctx, { after: "gh_auth", onStepDone });
        assertEquals(done, ["scripts", "sessions"]);
        assertEquals((await gx(["test", "-f", "/home/admin/setup-ran"])).code, 0);
        // The global profile script ran with the profile sourced: env and cwd.
        assertEquals(await guestFile("/home/admin/script-saw"), toBase64(HOSTILE));
        assertEquals(
          dec.decode(
            Uint8Array.from(
              atob(await guestFile("/home/admin/script-pwd")),
              (c) => c.charCodeAt(0),
            ),
          ),
          "/mnt/tachikoma/code\n",
        );
      },
    );

    await t.step("ssh_key: the key once, right modes and owner; host keys pinned", async () => {
      const pub = (await Deno.readTextFile(`${home}/.ssh/tachikoma.pub`)).trim();
      const ak = await gq([
        "sh",
        "-c",
        'stat -c "%a %U" ~/.ssh ~/.ssh/authorized_keys; grep -cxF -- "$1" ~/.ssh/authorized_keys',
        "sh",
        pub,
      ]);
      assertEquals(ak.out, "700 admin\n600 admin\n1\n");
      const pins = await knownHostsFor(stateDir).list(name);
      assert(pins.some((p) => p.type === "ssh-ed25519"), "ed25519 host key pinned");
    });

    await t.step(
      "code: ~/code, git works on the worktree, host .git file untouched",
      async () => {
        const link = await gq(["readlink", "/home/admin/code"]);
        assertEquals(link.out, "/mnt/tachikoma/code\n", `readlink: exit ${link.code} ${link.err}`);
        const status = await gq([
          "git",
          "-C",
          "/mnt/tachikoma/code",
          "rev-parse",
          "--abbrev-ref",
          "HEAD",
        ]);
        assertEquals(status.code, 0, status.err);
        assertEquals(status.out, GIT_BRANCH + "\n");
        const ident = await gq([
          "sh",
          "-c",
          "git config --global user.name; git config --global user.email",
        ]);
        assertEquals(ident.out, `${HOST_NAME}\n${HOST_EMAIL}\n`);
        // A commit in the guest lands in the host repo, authored with the host identity.
        const commit = await gx([
          "sh",
          "-c",
          'cd ~/code && echo guest > from-guest && git add from-guest && git commit -q -m "from the guest" && git rev-parse HEAD',
        ]);
        assertEquals(commit.code, 0, commit.err);
        const hostHead = (await g(repoRoot, "rev-parse", GIT_BRANCH)).trim();
        assertEquals(hostHead, commit.out.trim());
        assertEquals(
          (await g(repoRoot, "log", "-1", "--format=%an", GIT_BRANCH)).trim(),
          HOST_NAME,
        );
        assertEquals(await Deno.readFile(`${wt}/.git`), gitFileBefore);
        assertEquals(
          (await gq(["git", "config", "--global", "gc.worktreePruneExpire"])).out,
          "never\n",
        );
      },
    );

    await t.step("hostname: the branch slug, one /etc/hosts line", async () => {
      const slug = branchSlug(ISSUE_BRANCH);
      assertEquals(slug, "feat-touch-tmp-pwned-q-x");
      assertEquals((await gq(["hostname"])).out, slug + "\n");
      const hosts = (await gq(["cat", "/etc/hosts"])).out;
      assertEquals(hosts.split("\n").filter((l) => l.startsWith("127.0.1.1")), [
        `127.0.1.1\t${slug}`,
      ]);
    });

    await t.step("profile: hostile values arrive byte-exact through a login shell", async () => {
      const show = (v: string) =>
        gq([
          "bash",
          "-lc",
          `printf %s "$${v}" | base64 -w0; printf '|%s|%s' "$PWD" "$TACHIKOMA"`,
        ]);
      const hostile = await show("TK_HOSTILE");
      assertEquals(hostile.out, `${toBase64(HOSTILE)}|/mnt/tachikoma/code|1`);
      assertEquals((await show("MCP_HOSTILE")).out.split("|")[0], toBase64(HOSTILE));
      assertEquals((await show("USER_MCP")).out.split("|")[0], toBase64("ünï"));
      assertEquals(
        (await show("ANTHROPIC_API_KEY")).out.split("|")[0],
        toBase64("tachikoma-proxy"),
      );
      const profile = dec.decode(
        Uint8Array.from(atob(await guestFile("/home/admin/.profile")), (c) => c.charCodeAt(0)),
      );
      assertEquals(profile.split("# BEGIN tachikoma managed").length, 2);
      assert(!profile.includes("sk-ant-api03"), "no host credential in the profile");
      assertEquals((await gx(["test", "-e", "/home/admin/.claude/.credentials.json"])).code, 1);
    });

    await t.step("claude: installed by script, onboarded, settings.json cleaned", async () => {
      assertEquals(
        (await gq(["/home/admin/.local/bin/claude", "--version"])).out,
        "9.9.9 (Claude Code)\n",
      );
      const cj = JSON.parse(atob(await guestFile("/home/admin/.claude.json")));
      assertEquals(cj.hasCompletedOnboarding, true);
      assertEquals(cj.customApiKeyResponses.approved, ["tachikoma-proxy"]);
      assertEquals(Object.keys(cj.mcpServers), ["usr"]);
      const settings = JSON.parse(
        dec.decode(
          Uint8Array.from(
            atob(await guestFile("/home/admin/.claude/settings.json")),
            (c) => c.charCodeAt(0),
          ),
        ),
      );
      assertEquals(settings.hooks, undefined);
      assertEquals(settings.statusLine, undefined);
      assertEquals(settings.apiKeyHelper, undefined);
      assertEquals(settings.permissions.deny, ["Bash(rm -rf /)"]);
      assertEquals(settings.env, { KEEP_ME: "yes" });
      assertEquals(settings.mcpServers.srv.env.ANTHROPIC_API_KEY, undefined);
      assertEquals(settings.mcpServers.srv.env.MCP_HOSTILE, HOSTILE);
      const mode = await gq([
        "stat",
        "-c",
        "%a %U",
        "/home/admin/.claude/settings.json",
        "/home/admin/.config/gh/hosts.yml",
      ]);
      assertEquals(mode.out, "600 admin\n600 admin\n");
    });

    await t.step("provisioning twice leaves the guest files byte-identical", async () => {
      const files = [
        "/home/admin/.profile",
        "/home/admin/.claude/settings.json",
        "/home/admin/.claude.json",
        "/home/admin/.ssh/authorized_keys",
        "/home/admin/.gitconfig",
        "/etc/hosts",
        "/etc/hostname",
      ];
      // One at a time: concurrent Incus execs can lose their output (src/backends/incus/README.md).
      const snap = async () => {
        const out: string[] = [];
        for (const f of files) out.push(await guestFile(f));
        return out;
      };
      const before = await snap();
      done.length = 0;
      await makeProvisioner().run(ctx, { after: null, onStepDone });
      assertEquals(done.length, 9, `every step runs again: ${done}`);
      assertEquals(await snap(), before);
    });

    await t.step(
      "claude_install = script: a failing download fails the step (pipefail)",
      async () => {
        await gx(["rm", "-f", "/home/admin/.local/bin/claude"]);
        const bad = makeProvisioner(`http://${gw}:${port}/missing.sh`);
        const error = await assertRejects(
          () => bad.run(ctx, { after: null, only: ["claude"], onStepDone }),
          ProvisionError,
        );
        assertEquals(error.step, "claude");
        assertStringIncludes(error.message, "installing Claude Code");
        assertStringIncludes(error.stderr, "404");
      },
    );

    await t.step(
      "the real OpenSSH client connects through the generated ssh config",
      async () => {
        const { body } = sshBlockBody([{ name, hostName: ip, user: "admin", port: 22 }], {
          identityFile: `${home}/.ssh/tachikoma`,
          knownHostsFile: `${stateDir}/known_hosts`,
        });
        const cfg = `${T}/ssh_config`;
        await writeSshConfigBlock(cfg, body);
        const r = await new Deno.Command("ssh", {
          args: ["-F", cfg, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", name, "true"],
          stdin: "null",
        }).output();
        assertEquals(r.code, 0, dec.decode(r.stderr));
      },
    );

    await t.step("nothing executed: no /tmp/pwned on the host or in the guest", async () => {
      assertEquals((await gx(["test", "-e", "/tmp/pwned"], "root")).code, 1);
      assertInstanceOf(await Deno.stat("/tmp/pwned").catch((e) => e), Deno.errors.NotFound);
    });
  } finally {
    await guest.close();
    await installer.shutdown();
    await Deno.remove(T, { recursive: true }).catch(() => {});
  }
}
