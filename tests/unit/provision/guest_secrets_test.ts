/**
 * Host secrets in Claude's settings against the provisioner and a local sandbox double (real
 * shells, a temp guest home): left out with one note per run, let in one by one through
 * `guest_secrets`; `sync_gh_auth` says what it copies. The lab test
 * (tests/integration/host_secrets_test.ts) searches a real guest.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { Logger } from "../../../src/lib/log.ts";
import { createProvisioner } from "../../../src/provision/mod.ts";
import { ghHosts } from "../../../src/provision/gh_auth.ts";
import { localSandbox, testConfig, testContext } from "./helpers.ts";

const SECRETS = {
  mcpEnv: `mcp-env-${crypto.randomUUID()}`,
  header: `Bearer hdr-${crypto.randomUUID()}`,
  settingsEnv: `npm-${crypto.randomUUID()}`,
  projectEnv: `proj-${crypto.randomUUID()}`,
};

async function hostHome(dir: string, repo: string): Promise<string> {
  const home = `${dir}/host-home`;
  await Deno.mkdir(`${home}/.claude`, { recursive: true });
  await Deno.mkdir(`${home}/.config/gh`, { recursive: true });
  await Deno.writeTextFile(
    `${home}/.claude/settings.json`,
    JSON.stringify({
      env: { NPM_TOKEN: SECRETS.settingsEnv, LOG_LEVEL: "debug" },
      mcpServers: { github: { command: "gh-mcp", env: { GITHUB_TOKEN: SECRETS.mcpEnv } } },
    }),
  );
  await Deno.writeTextFile(
    `${home}/.claude.json`,
    JSON.stringify({
      mcpServers: {
        linear: {
          type: "http",
          url: "https://mcp.linear.example/sse",
          headers: { Authorization: SECRETS.header },
        },
      },
      projects: {
        [repo]: { mcpServers: { p: { command: "p", env: { P_KEY: SECRETS.projectEnv } } } },
      },
    }),
  );
  await Deno.writeTextFile(
    `${home}/.config/gh/hosts.yml`,
    "github.com:\n    user: octo\n    oauth_token: gho_x\n    git_protocol: https\n" +
      "ghe.corp.example:\n    oauth_token: gho_y\n",
  );
  return home;
}

/** Every file of the guest home, concatenated. */
async function guestText(home: string): Promise<string> {
  let all = "";
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.isFile) all += await Deno.readTextFile(p) + "\n";
    }
  };
  await walk(home);
  return all;
}

Deno.test("secrets: MCP env, headers, project env and secret settings env stay out with one note; an opt-in lets exactly one in", async () => {
  const sb = await localSandbox();
  try {
    const repo = `${sb.dir}/repo`;
    const home = await hostHome(sb.dir, repo);
    const lines: string[] = [];
    const p = createProvisioner({
      home,
      env: () => undefined,
      logger: new Logger({ level: "debug", sink: (l) => lines.push(l) }),
      proxyEnv: () => ({ ANTHROPIC_BASE_URL: "http://10.0.0.1:19280" }),
    });
    const run = (guest_secrets: string[]) =>
      p.run(
        testContext(sb, testConfig({ credential_proxy: true, guest_secrets }), {
          name: "sb",
          repo: "repo",
          branch: "main",
          worktree_path: "/nonexistent/wt",
          repo_root: repo,
          created_at: "2026-01-01T00:00:00.000Z",
          last_used: "2026-01-01T00:00:00.000Z",
          status: "running",
          ip: null,
        }),
        { after: null, only: ["profile", "claude"], onStepDone: () => Promise.resolve() },
      );

    await run([]);
    const text = await guestText(sb.home);
    for (const [what, value] of Object.entries(SECRETS)) {
      assert(!text.includes(value), `${what} entered the guest`);
    }
    const settings = JSON.parse(await Deno.readTextFile(`${sb.home}/.claude/settings.json`));
    assertEquals(settings.env, { LOG_LEVEL: "debug" });
    assertEquals(settings.mcpServers.github, { command: "gh-mcp", env: {} });
    const claudeJson = JSON.parse(await Deno.readTextFile(`${sb.home}/.claude.json`));
    assertEquals(claudeJson.mcpServers.linear.headers, {});
    const notes = lines.filter((l) => l.includes("host secrets left out"));
    assertEquals(notes, [
      'warning: sb: host secrets left out of the sandbox: MCP server "github" env GITHUB_TOKEN, ' +
      'MCP server "linear" header Authorization, MCP server "p" env P_KEY, settings.json env ' +
      "NPM_TOKEN; to let one in, add it to guest_secrets (e.g. tachikoma config set " +
      "guest_secrets 'mcp.github.env.GITHUB_TOKEN')",
    ]);
    for (const value of Object.values(SECRETS)) assert(!lines.join("\n").includes(value));

    lines.length = 0;
    await run(["mcp.github.env.GITHUB_TOKEN"]);
    const after = await guestText(sb.home);
    assertStringIncludes(after, SECRETS.mcpEnv);
    for (const value of [SECRETS.header, SECRETS.settingsEnv, SECRETS.projectEnv]) {
      assert(!after.includes(value), value);
    }
    assertStringIncludes(await Deno.readTextFile(`${sb.home}/.profile`), "export GITHUB_TOKEN=");
    assertEquals(lines.filter((l) => l.includes("host secrets left out")).length, 1);
    assert(!lines.some((l) => l.includes("env GITHUB_TOKEN")), "the allowed one is not listed");
  } finally {
    await sb.cleanup();
  }
});

Deno.test("sync_gh_auth names the hosts and users of the login it copies, never a token", () => {
  assertEquals(
    ghHosts(
      'github.com:\n    user: octo\n    oauth_token: gho_t\n"ghe.corp":\n    oauth_token: u\n' +
        "# comment:\nweird host:\n  users:\n    x:\n      oauth_token: v\n",
    ),
    ["github.com (user octo)", "ghe.corp", "weird host"],
  );
  assertEquals(ghHosts(""), []);
});
