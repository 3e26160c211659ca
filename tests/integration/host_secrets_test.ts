/**
 * Host secrets in Claude's settings never enter a real guest unless the user lets them in.
 *
 * The host has MCP servers with known env values and headers (in `~/.claude/settings.json`,
 * `~/.claude.json` and its per-project servers), a URL token, a secret-looking settings.json
 * `env` value and a GitHub CLI login. A real Incus lab container is provisioned with the whole
 * recipe; then its whole filesystem and every process environment and command line are searched
 * for each value (the search is self-tested with a planted marker): nothing. Then one value is
 * let in with `guest_secrets` and found — exactly that one; then `sync_gh_auth` copies the gh
 * login and says so.
 *
 * Traffic: only the lab container (Incus exec, SSH on the bridge).
 */
import { assert, assertEquals } from "@std/assert";
import { Logger } from "../../src/lib/log.ts";
import { registerSecret } from "../../src/lib/redact.ts";
import { sandboxShares } from "../../src/core/sandbox_shares.ts";
import { defaultRunner } from "../../src/lib/process.ts";
import { createProvisioner } from "../../src/provision/mod.ts";
import type { ProvisionContext } from "../../src/provision/contract.ts";
import type { Config } from "../../src/config/schema.ts";
import { RecordingReporter } from "../testing/recording_reporter.ts";
import { searchGuest, searchSelfTest } from "./guest_search.ts";
import { labIgnored, labName } from "./lab.ts";
import {
  host,
  labConfig,
  labRecord,
  launch,
  openLabIncus,
  runnerWithEnv,
} from "./provision_lab.ts";

Deno.test({
  name:
    "lab: MCP env values and headers and secret settings env stay out of the guest; one opt-in lets exactly one in",
  ignore: labIgnored(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const id = crypto.randomUUID();
    const secrets = {
      settingsMcpEnv: `ghp_settingsMcp${id.replaceAll("-", "")}`,
      settingsMcpHeader: `hdr-settings-${id}`,
      urlToken: `urltoken-${id}`,
      claudeJsonMcpEnv: `usr-env-${id}`,
      claudeJsonHeader: `usr-hdr-${id}`,
      projectMcpEnv: `project-env-${id}`,
      settingsEnv: `npm-settings-${id}`,
      ghToken: `gho_lab${id.replaceAll("-", "")}`,
    };
    for (const value of Object.values(secrets)) registerSecret(value);

    const T = await Deno.makeTempDir({ prefix: "tk-host-secrets-" });
    const home = `${T}/home`;
    const stateDir = `${T}/state`;
    const repoRoot = `${T}/repo`;
    const wt = `${T}/wt`;
    await Deno.mkdir(`${home}/.claude`, { recursive: true });
    await Deno.mkdir(`${home}/.config/gh`, { recursive: true });
    await Deno.mkdir(stateDir, { recursive: true });
    await Deno.mkdir(repoRoot);
    const gitGlobal = `${home}/.gitconfig`;
    await Deno.writeTextFile(
      gitGlobal,
      "[safe]\n\tdirectory = *\n[user]\n\tname = t\n\temail = t@t\n",
    );
    const gitEnv = { GIT_CONFIG_GLOBAL: gitGlobal, GIT_CONFIG_NOSYSTEM: "1" };
    const g = (cwd: string, ...args: string[]) => host("git", args, { cwd, env: gitEnv });
    await g(repoRoot, "init", "-q", "-b", "main");
    await g(repoRoot, "commit", "-q", "--allow-empty", "-m", "init");
    await g(repoRoot, "worktree", "add", "-q", "-b", "feat", wt);

    await Deno.writeTextFile(
      `${home}/.claude/settings.json`,
      JSON.stringify({
        env: { NPM_TOKEN: secrets.settingsEnv, LOG_LEVEL: "debug" },
        mcpServers: {
          github: { command: "github-mcp", env: { GITHUB_TOKEN: secrets.settingsMcpEnv } },
          search: {
            type: "http",
            url: `https://mcp.search.example/mcp?api_key=${secrets.urlToken}`,
            headers: { "X-Api-Key": secrets.settingsMcpHeader },
          },
        },
      }),
    );
    await Deno.writeTextFile(
      `${home}/.claude.json`,
      JSON.stringify({
        mcpServers: {
          usr: {
            type: "sse",
            url: "https://mcp.usr.example/sse",
            env: { USR_TOKEN: secrets.claudeJsonMcpEnv },
            headers: { Authorization: `Bearer ${secrets.claudeJsonHeader}` },
          },
        },
        projects: {
          [repoRoot]: {
            mcpServers: { proj: { command: "p", env: { P_SECRET: secrets.projectMcpEnv } } },
          },
        },
      }),
    );
    await Deno.writeTextFile(
      `${home}/.config/gh/hosts.yml`,
      `github.com:\n    user: octo\n    oauth_token: ${secrets.ghToken}\n`,
    );

    const backend = await openLabIncus();
    const name = labName("secrets");
    const lines: string[] = [];
    const logger = new Logger({ level: "info", sink: (l) => lines.push(l) });
    const provision = async (overrides: Partial<Config>, only?: string[]) => {
      const ctx: ProvisionContext = {
        backend,
        sandbox: name,
        record: labRecord(name, { worktree_path: wt, repo_root: repoRoot, branch: "feat" }),
        config: labConfig({ credential_proxy: true, ...overrides }),
        stateDir,
        reporter: new RecordingReporter(),
      };
      await createProvisioner({
        runner: runnerWithEnv(gitEnv),
        home,
        env: (k) => (k === "HOME" ? home : undefined),
        proxyEnv: () => ({ ANTHROPIC_BASE_URL: "http://10.213.0.1:1", TACHIKOMA_PROXY: "1" }),
        logger,
      }).run(ctx, { after: null, only, onStepDone: () => Promise.resolve() });
    };
    const where = async () => {
      const out: Record<string, string[]> = {};
      for (const [key, value] of Object.entries(secrets)) {
        const found = await searchGuest(backend, name, value);
        if (found.files.length > 0 || found.procs > 0) {
          out[key] = [...found.files, ...(found.procs > 0 ? [`${found.procs} processes`] : [])];
        }
      }
      return out;
    };

    try {
      const shares = await sandboxShares({
        runner: defaultRunner,
        mainRoot: repoRoot,
        worktreePath: wt,
        home,
        claudeDirs: [],
      });
      await launch(backend, name, shares);
      // gh "installed" so gh_auth never reaches for the network.
      await backend.exec(name, {
        argv: [
          "sh",
          "-c",
          "printf '#!/bin/sh\\n' > /usr/local/bin/gh && chmod 755 /usr/local/bin/gh",
        ],
        user: "root",
      });

      await t.step("the search finds a planted marker (self-test)", async () => {
        await searchSelfTest(backend, name);
      });

      await t.step(
        "default: every value left out, one note naming them, MCP servers kept",
        async () => {
          await provision({});
          assertEquals(await where(), {});
          const notes = lines.filter((l) => l.includes("host secrets left out"));
          assertEquals(notes.length, 1, lines.join("\n"));
          for (
            const label of [
              'MCP server "github" env GITHUB_TOKEN',
              'MCP server "search" header X-Api-Key',
              'MCP server "search" url credentials',
              'MCP server "usr" env USR_TOKEN',
              'MCP server "usr" header Authorization',
              'MCP server "proj" env P_SECRET',
              "settings.json env NPM_TOKEN",
            ]
          ) assert(notes[0].includes(label), `${label} not in: ${notes[0]}`);
          const settings = await backend.exec(name, {
            argv: ["cat", "/home/admin/.claude/settings.json"],
            user: "user",
          });
          const doc = JSON.parse(new TextDecoder().decode(settings.stdout));
          assertEquals(Object.keys(doc.mcpServers).sort(), ["github", "search"]);
          assertEquals(doc.mcpServers.search.url, "https://mcp.search.example/mcp");
          assertEquals(doc.env, { LOG_LEVEL: "debug" });
        },
      );

      await t.step("guest_secrets lets exactly the one value in", async () => {
        lines.length = 0;
        await provision({ guest_secrets: ["mcp.github.env.GITHUB_TOKEN"] });
        const found = await where();
        assertEquals(Object.keys(found), ["settingsMcpEnv"]);
        assertEquals(found.settingsMcpEnv.sort(), [
          "/home/admin/.claude/settings.json",
          "/home/admin/.profile",
        ]);
      });

      await t.step("sync_gh_auth copies the gh login and says what it copies", async () => {
        lines.length = 0;
        await provision({ sync_gh_auth: true }, ["gh_auth"]);
        assertEquals(
          lines.filter((l) => l.startsWith("sync_gh_auth:")),
          [
            `sync_gh_auth: copying ${home}/.config/gh/hosts.yml into ${name}:~/.config/gh/hosts.yml` +
            " — the GitHub CLI login for github.com (user octo); its token can act as you from " +
            "inside the sandbox",
          ],
        );
        assert(!lines.join("\n").includes(secrets.ghToken), "token in the log");
        assertEquals((await searchGuest(backend, name, secrets.ghToken)).files, [
          "/home/admin/.config/gh/hosts.yml",
        ]);
      });
    } finally {
      await backend.delete(name).catch(() => {});
      await backend.close();
      await Deno.remove(T, { recursive: true }).catch(() => {});
    }
  },
});
