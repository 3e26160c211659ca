/**
 * The command tree. Each command's implementation lives in `src/commands/<name>.ts` and is
 * imported only when that command runs, so `--help` and light commands start fast.
 *
 * @module
 */
import { Argument, Command, CommanderError, Option } from "@commander-js/extra-typings";
import type { CommandContext, GlobalOptions } from "../commands/context.ts";
import { BACKENDS } from "../config/defaults.ts";
import { NotImplementedError } from "../lib/errors.ts";
import { versionLine } from "../lib/version.ts";

/** Builds the context once the global flags are known. */
export type ContextFactory = (globals: GlobalOptions) => CommandContext;

/** Implementation status of each command, shown by the README and used by tests. */
export const COMMAND_STATUS: Record<string, "ready" | "not implemented"> = {};

function parseIntArg(flag: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) {
      throw new (class extends Error {
        code = "commander.invalidArgument";
      })(`${flag} must be a whole number, got '${value}'`);
    }
    return Number(value);
  };
}

/**
 * Builds the whole command tree. `makeContext` turns the parsed global flags into the context
 * handed to the command implementations.
 */
export function buildProgram(makeContext: ContextFactory): Command {
  const program = new Command("tachikoma")
    .description(
      "Disposable, isolated Linux sandboxes per git branch for AI coding agents.\n" +
        "Run it in a repo: the current branch gets its own worktree and sandbox, then a shell.",
    )
    .option("-V, --version", "print the version (and the git commit it was built from)")
    .option("--json", "print results as one JSON document on stdout")
    .option("-v, --verbose", "log more detail (every external command, step timings) to stderr")
    .option("-q, --quiet", "only log errors")
    .addOption(
      new Option("--backend <name>", "sandbox engine to use").choices(BACKENDS),
    )
    .option("--no-color", "never use colors (NO_COLOR is honoured too)")
    .showSuggestionAfterError(true)
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true });

  program.on("option:version", () => {
    const line = versionLine();
    ctx(program as never).out.raw(`${line}\n`);
    throw new CommanderError(0, "tachikoma.version", line);
  });

  const ctx = (cmd: Command<unknown[], Record<string, unknown>>): CommandContext => {
    const g = cmd.optsWithGlobals() as Record<string, unknown>;
    return makeContext({
      json: g.json === true,
      verbose: g.verbose === true,
      quiet: g.quiet === true,
      color: g.color !== false,
      backend: g.backend as GlobalOptions["backend"],
    });
  };

  const notImplemented = (name: string) => () => {
    throw new NotImplementedError(name);
  };
  const status = (name: string, s: "ready" | "not implemented") => (COMMAND_STATUS[name] = s);

  // Bare `tachikoma [branch]` = spawn and attach.
  program
    .argument("[branch]", "branch to spawn (default: the current branch)")
    .option("--no-attach", "do not open a shell after spawning")
    .option("--reprovision", "re-run provisioning steps whose inputs changed")
    .action(async (branch, opts, cmd) => {
      const m = await import("../commands/spawn.ts");
      await m.run(ctx(cmd), { branch, attach: opts.attach, reprovision: !!opts.reprovision });
    });

  program.command("spawn")
    .description("create, restart or reuse the sandbox for a branch, provision it, open a shell")
    .argument("[branch]", "branch (default: the current branch); created from HEAD if new")
    .option("--no-attach", "do not open a shell afterwards")
    .option("--no-interactive", "alias of --no-attach")
    .option("--reprovision", "re-run provisioning steps whose inputs changed")
    .action(async (branch, opts, cmd) => {
      const m = await import("../commands/spawn.ts");
      // The root command declares --no-attach/--reprovision too and consumes them wherever
      // they appear (`spawn x --no-attach`), so look at both.
      const root = cmd.parent?.opts() as { attach?: boolean; reprovision?: boolean } | undefined;
      await m.run(ctx(cmd), {
        branch,
        attach: opts.attach !== false && opts.interactive !== false && root?.attach !== false,
        reprovision: !!opts.reprovision || !!root?.reprovision,
      });
    });
  status("spawn", "ready");

  program.command("enter")
    .description("open a shell in a sandbox")
    .argument("[name]", "sandbox name, branch of this repo, or unique prefix")
    .action(async (name, _opts, cmd) => {
      const m = await import("../commands/enter.ts");
      await m.run(ctx(cmd), { name });
    });
  status("enter", "ready");

  program.command("exec")
    .description("run a command in a sandbox; its exit code becomes ours")
    .option("-n, --name <name>", "sandbox (default: the current branch's)")
    .option("-w, --workdir <dir>", "working directory in the guest (default: the code dir)")
    .argument("<command...>", "command and arguments (put them after --)")
    .action(async (argv, opts, cmd) => {
      const m = await import("../commands/exec.ts");
      await m.run(ctx(cmd), { name: opts.name, workdir: opts.workdir, argv });
    });
  status("exec", "ready");

  program.command("halt").alias("stop")
    .description("stop a sandbox (graceful, then forced)")
    .argument("[name]", "sandbox name, branch or prefix")
    .action(async (name, _opts, cmd) => {
      const m = await import("../commands/halt.ts");
      await m.run(ctx(cmd), { name });
    });
  status("halt", "ready");

  program.command("suspend")
    .description("suspend a sandbox (stops it where the backend cannot suspend, and says so)")
    .argument("[name]", "sandbox name, branch or prefix")
    .action(async (name, _opts, cmd) => {
      const m = await import("../commands/suspend.ts");
      await m.run(ctx(cmd), { name });
    });
  status("suspend", "ready");

  program.command("destroy").alias("delete")
    .description("delete a sandbox and its state")
    .argument("[name]", "sandbox name, branch or prefix")
    .option("-f, --force", "do not ask for confirmation")
    .option("--all", "destroy every sandbox of the current repo")
    .option("--worktree", "also remove the worktree when it is clean")
    .action(async (name, opts, cmd) => {
      const m = await import("../commands/destroy.ts");
      await m.run(ctx(cmd), {
        name,
        force: !!opts.force,
        all: !!opts.all,
        worktree: !!opts.worktree,
      });
    });
  status("destroy", "ready");

  program.command("list").alias("ls")
    .description("list sandboxes with their live status")
    .option("--repo <repo>", "only this repo (directory name)")
    .option("-a, --all", "every repo (default: the current repo when inside one)")
    .action(async (opts, cmd) => {
      const m = await import("../commands/list.ts");
      await m.run(ctx(cmd), { repo: opts.repo, all: !!opts.all });
    });
  status("list", "ready");

  program.command("status")
    .description("show one sandbox")
    .argument("[name]", "sandbox name, branch or prefix")
    .action(async (name, _opts, cmd) => {
      const m = await import("../commands/status.ts");
      await m.run(ctx(cmd), { name });
    });
  status("status", "ready");

  program.command("cd")
    .description('print a sandbox\'s worktree path (use: cd "$(tachikoma cd)")')
    .argument("[name]", "sandbox name, branch or prefix")
    .action(async (name, _opts, cmd) => {
      const m = await import("../commands/cd.ts");
      await m.run(ctx(cmd), { name });
    });
  status("cd", "ready");

  program.command("pr")
    .description("commit the worktree's changes, push and open a pull request (on the host)")
    .argument("[name]", "sandbox name, branch or prefix")
    .option("--name <name>", "same as [name] (tachikoma compatibility)")
    .option("--draft", "open the pull request as a draft")
    .option("--title <title>", "pull request title (default: from the commits)")
    .option("--base <branch>", "branch to merge into (default: the repository's default)")
    .action(async (name, opts, cmd) => {
      const m = await import("../commands/pr.ts");
      await m.run(ctx(cmd), {
        name,
        nameFlag: opts.name,
        draft: !!opts.draft,
        title: opts.title,
        base: opts.base,
      });
    });
  status("pr", "ready");

  program.command("prune")
    .description(
      "destroy sandboxes unused for a number of days; drop entries whose sandbox is gone",
    )
    .addOption(
      new Option("--days <days>", "age in days (default: prune_after_days)").argParser(
        parseIntArg("--days"),
      ),
    )
    .option("--dry-run", "only show what would be pruned")
    .action(async (opts, cmd) => {
      const m = await import("../commands/prune.ts");
      await m.run(ctx(cmd), { days: opts.days, dryRun: !!opts.dryRun });
    });
  status("prune", "ready");

  const image = program.command("image").description("manage base images");
  image.command("list").description("list images").action(notImplemented("image list"));
  image.command("pull").description("fetch a base image").argument("[name]")
    .action(notImplemented("image pull"));
  image.command("build").description("build a golden image with Claude Code preinstalled")
    .option("-n, --name <name>", "output image name", "tachikoma-golden")
    .option("--force", "replace an existing image")
    .action(notImplemented("image build"));
  status("image", "not implemented");

  const checkpoint = program.command("checkpoint").alias("cp")
    .description("snapshots of a sandbox's own disk (the worktree stays on the host)");
  checkpoint.command("create").argument("[name]", "sandbox name, branch or prefix")
    .option("--label <label>", "checkpoint name (default: tk-YYYYMMDD-HHMMSS, UTC)")
    .description("take a checkpoint")
    .action(async (name, opts, cmd) => {
      const m = await import("../commands/checkpoint.ts");
      await m.create(ctx(cmd), { name, label: opts.label });
    });
  checkpoint.command("list").argument("[name]", "sandbox name, branch or prefix")
    .description("list checkpoints")
    .action(async (name, _opts, cmd) => {
      const m = await import("../commands/checkpoint.ts");
      await m.list(ctx(cmd), { name });
    });
  checkpoint.command("restore").argument("<name>", "sandbox name, branch or prefix")
    .argument("<label>")
    .description("stop, restore a checkpoint, start again and wait for boot")
    .action(async (name, label, _opts, cmd) => {
      const m = await import("../commands/checkpoint.ts");
      await m.restore(ctx(cmd), { name, label });
    });
  checkpoint.command("delete").argument("<name>", "sandbox name, branch or prefix")
    .argument("<label>")
    .description("delete a checkpoint")
    .action(async (name, label, _opts, cmd) => {
      const m = await import("../commands/checkpoint.ts");
      await m.remove(ctx(cmd), { name, label });
    });
  status("checkpoint", "ready");

  const network = program.command("network").description("guest egress policy");
  network.command("show").argument("[name]").description("show the egress policy")
    .action(notImplemented("network show"));
  network.command("set").argument("<name>").argument("<mode>", "unrestricted|agent|allowlist")
    .description("set the egress mode").action(notImplemented("network set"));
  network.command("allow").argument("<name>").argument("<host>")
    .description("allow a host").action(notImplemented("network allow"));
  network.command("deny").argument("<name>").argument("<host>")
    .description("remove an allowed host").action(notImplemented("network deny"));
  status("network", "not implemented");

  program.command("doctor")
    .description("check this machine: tools, backend reachability, proxy, config")
    .action(async (_opts, cmd) => {
      const m = await import("../commands/doctor.ts");
      await m.run(ctx(cmd));
    });
  status("doctor", "ready");

  const config = program.command("config")
    .description("show the merged configuration with each value's source")
    .action(async (_opts, cmd) => {
      const m = await import("../commands/config.ts");
      await m.show(ctx(cmd));
    });
  config.command("get").description("print one value").argument(
    "<key>",
    "e.g. vm_cpus, incus.socket",
  )
    .action(async (key, _opts, cmd) => {
      const m = await import("../commands/config.ts");
      await m.get(ctx(cmd), key);
    });
  config.command("set").description("set a value in a config file, keeping the rest of it")
    .argument("<key>").argument("<value>")
    .option("--global", "the user config (default)")
    .option("--repo", "the repo's committed .tachikoma.toml")
    .option("--local", "the repo's .tachikoma.local.toml")
    .action(async (key, value, opts, cmd) => {
      const m = await import("../commands/config.ts");
      await m.set(ctx(cmd), key, value, opts);
    });
  config.command("edit").description("open the user config in $VISUAL / $EDITOR")
    .option("--repo", "edit .tachikoma.toml")
    .option("--local", "edit .tachikoma.local.toml")
    .action(async (opts, cmd) => {
      const m = await import("../commands/config.ts");
      await m.edit(ctx(cmd), opts);
    });
  config.command("path").description("print the config file paths")
    .action(async (_opts, cmd) => {
      const m = await import("../commands/config.ts");
      await m.path(ctx(cmd));
    });
  config.command("trust").description("trust the repo's config files as they are now")
    .argument("[file...]").option("--list", "list trusted files").option("--revoke", "forget")
    .action(async (files, opts, cmd) => {
      await (await import("../commands/config.ts")).trust(ctx(cmd), files, opts);
    });
  status("config", "ready");

  const ssh = program.command("ssh").description("manage the ~/.ssh/config block for sandboxes");
  for (
    const [sub, text] of [
      ["install", "write the managed block (ssh <sandbox> then works)"],
      ["refresh", "rewrite the managed block from current state"],
    ] as const
  ) {
    ssh.command(sub).description(text).action(async (_opts, cmd) => {
      const m = await import("../commands/ssh.ts");
      await m.install(ctx(cmd), sub);
    });
  }
  ssh.command("uninstall").description("remove the managed block").action(async (_opts, cmd) => {
    const m = await import("../commands/ssh.ts");
    await m.uninstall(ctx(cmd));
  });
  ssh.command("forget").description("drop a sandbox's pinned SSH host keys")
    .argument("<name>", "sandbox name")
    .action(async (name, _opts, cmd) => {
      const m = await import("../commands/ssh.ts");
      await m.forget(ctx(cmd), name);
    });
  status("ssh", "ready");

  const proxy = program.command("proxy").description("the host credential proxy");
  proxy.command("start").description("run the proxy (foreground unless -d)")
    .option("-d, --daemon", "run in the background")
    .addOption(new Option("--port <port>", "port").argParser(parseIntArg("--port")))
    .option("--bind <address>", "address to bind")
    .action(async (opts, cmd) => {
      const m = await import("../commands/proxy.ts");
      await m.start(ctx(cmd), { daemon: !!opts.daemon, port: opts.port, bind: opts.bind });
    });
  proxy.command("stop").description("stop the background proxy")
    .action(async (_opts, cmd) => {
      const m = await import("../commands/proxy.ts");
      await m.stop(ctx(cmd));
    });
  proxy.command("status").description("is the proxy healthy?")
    .action(async (_opts, cmd) => {
      const m = await import("../commands/proxy.ts");
      await m.status(ctx(cmd));
    });
  proxy.command("logs").description("print the proxy log").option("-f, --follow", "keep reading")
    .action(async (opts, cmd) => {
      const m = await import("../commands/proxy.ts");
      await m.logs(ctx(cmd), { follow: !!opts.follow });
    });
  status("proxy", "ready");

  const mcp = program.command("mcp")
    .description(
      "serve the MCP tools over stdio (claude mcp add tachikoma -- tachikoma mcp), or with " +
        "--http as a daemon for several clients",
    )
    .option("--http", "serve streamable HTTP (bearer token, reaper) instead of stdio")
    .option("--listen <host:port>", "address of the HTTP daemon (default: [mcp] listen)")
    .option("--allow-remote", "allow a non-loopback --listen address (needs --tls-cert/--tls-key)")
    .option("--tls-cert <file>", "PEM certificate: serve HTTPS")
    .option("--tls-key <file>", "PEM private key of --tls-cert")
    .action(async (opts, cmd) => {
      const m = await import("../commands/mcp.ts");
      await m.run(ctx(cmd), opts);
    });
  mcp.command("token").description("print the daemon's bearer token and the claude mcp add line")
    .action(async (_opts, cmd) => {
      const m = await import("../commands/mcp.ts");
      await m.token(ctx(cmd));
    });
  mcp.command("status").description("is the MCP daemon running?")
    .action(async (_opts, cmd) => {
      const m = await import("../commands/mcp.ts");
      await m.status(ctx(cmd));
    });
  mcp.command("stop").description("stop the MCP daemon of this configuration directory")
    .action(async (_opts, cmd) => {
      const m = await import("../commands/mcp.ts");
      await m.stop(ctx(cmd));
    });
  status("mcp", "ready");

  program.command("completions")
    .description("print a shell completion script (bash, zsh or fish)")
    .addArgument(new Argument("<shell>", "target shell").choices(["bash", "zsh", "fish"] as const))
    .action(async (shell, _opts, cmd) => {
      const m = await import("./completions.ts");
      ctx(cmd).out.raw(m.completionScript(program, shell));
    });
  status("completions", "ready");

  program.command("version")
    .description("print the version")
    .action(async (_opts, cmd) => {
      const m = await import("../commands/version.ts");
      await m.run(ctx(cmd));
    });
  status("version", "ready");

  return program;
}
