/**
 * The command tree, as data. Each command's implementation lives in `src/commands/<name>.ts` and
 * is imported only when that command runs, so `--help` and light commands start fast.
 *
 * Adding a command: add an entry to the `routes` of the group it belongs to (the root, or
 * `config`, `checkpoint`…) with `command({ brief, flags, args, run })`; a new group of
 * subcommands is a `group({ brief, routes })` in `program_groups.ts`. Help, parsing, the global flags and the shell
 * completions follow from the entry. `tests/unit/cli/program_test.ts` lists the commands that
 * must exist.
 *
 * @module
 */
import type { CommandContext } from "../commands/context.ts";
import {
  bool,
  choiceArg,
  command,
  group,
  type GroupNode,
  negated,
  optionalArg,
  rest,
  text,
  wholeNumber,
} from "./tree.ts";
import {
  checkpoint,
  config,
  image,
  mcp,
  network,
  port,
  proxy,
  SANDBOX,
  sessions,
  sshGroup,
} from "./program_groups.ts";

/**
 * Starts the sandbox service (its modules, the configuration, the engine's modules) while the
 * command's own module loads; the command's `ctx.app.service()` then gets the same one, and
 * any failure is reported there.
 */
function warm(ctx: CommandContext): void {
  ctx.app.service().catch(() => {});
}

const spawn = command({
  brief: "create, restart or reuse the sandbox for a branch, provision it, open a shell",
  flags: {
    attach: negated("do not open a shell afterwards"),
    interactive: negated("alias of --no-attach"),
    reprovision: bool("re-run provisioning steps whose inputs changed"),
    persist: negated("attach a plain shell instead of the persistent session main"),
    from: text("clone a new sandbox from a base, a stopped sandbox or sandbox:checkpoint"),
    egress: text("this sandbox's egress mode: unrestricted|agent|allowlist|none (kept)", {
      placeholder: "mode",
    }),
  },
  args: [optionalArg("branch", "branch (default: the current branch); created from HEAD if new")],
  run: async (ctx, f, [branch]) =>
    await (await import("../commands/spawn.ts")).run(ctx, {
      branch,
      attach: f.attach && f.interactive,
      reprovision: f.reprovision,
      persist: f.persist,
      from: f.from,
      egress: f.egress,
    }),
});

/** The whole tree. `tachikoma [branch]` (no command name) runs `spawn`. */
export const TREE: GroupNode = group({
  brief: "Disposable, isolated Linux sandboxes per git branch for AI coding agents.",
  description: "Disposable, isolated Linux sandboxes per git branch for AI coding agents.\n" +
    "Run it in a repo: the current branch gets its own worktree and sandbox, then a shell.",
  default: "spawn",
  routes: {
    spawn,
    enter: command({
      brief:
        "attach to a persistent session in a sandbox (detach: Ctrl-b d), starting it if needed",
      flags: {
        session: text("session name (default: main)", { short: "s", placeholder: "name" }),
        persist: negated("a plain shell that ends with the connection, no session"),
        start: negated("refuse a stopped or suspended sandbox instead of starting it"),
      },
      args: [optionalArg("name", "sandbox name, branch of this repo, or unique prefix")],
      run: async (ctx, f, [name]) => {
        warm(ctx);
        await (await import("../commands/enter.ts")).run(ctx, {
          name,
          session: f.session,
          persist: f.persist,
          start: f.start,
        });
      },
    }),
    sessions,
    exec: command({
      brief: "run a command in a sandbox; its exit code becomes ours",
      flags: {
        name: text("sandbox (default: the current branch's)", { short: "n" }),
        workdir: text("working directory in the guest (default: the code dir)", {
          short: "w",
          placeholder: "dir",
        }),
        raw: bool("run the argv as given, without the login environment (~/.profile)"),
        start: negated("refuse a stopped or suspended sandbox instead of starting it"),
      },
      args: [rest("command", "command and arguments (put them after --)")],
      run: async (ctx, f, [argv]) => {
        warm(ctx);
        await (await import("../commands/exec.ts")).run(ctx, {
          name: f.name,
          workdir: f.workdir,
          argv,
          raw: f.raw,
          start: f.start,
        });
      },
    }),
    port,
    halt: command({
      brief: "stop a sandbox (graceful, then forced)",
      aliases: ["stop"],
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, _f, [name]) =>
        await (await import("../commands/halt.ts")).run(ctx, { name }),
    }),
    suspend: command({
      brief: "suspend a sandbox (stops it where the backend cannot suspend, and says so)",
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, _f, [name]) =>
        await (await import("../commands/suspend.ts")).run(ctx, { name }),
    }),
    destroy: command({
      brief: "delete a sandbox and its state",
      aliases: ["delete"],
      flags: {
        force: bool("do not ask for confirmation", "f"),
        all: bool("destroy every sandbox of the current repo"),
        worktree: bool("also remove the worktree when it is clean"),
      },
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, f, [name]) =>
        await (await import("../commands/destroy.ts")).run(ctx, {
          name,
          force: f.force,
          all: f.all,
          worktree: f.worktree,
        }),
    }),
    list: command({
      brief: "list sandboxes with their live status",
      aliases: ["ls"],
      flags: {
        repo: text("only this repo (directory name)"),
        all: bool("every repo (default: the current repo when inside one)", "a"),
      },
      run: async (ctx, f) => {
        const scope = { repo: f.repo, all: f.all };
        ctx.app.listSandboxes(scope).catch(() => {}); // starts while list.ts loads
        await (await import("../commands/list.ts")).run(ctx, scope);
      },
    }),
    status: command({
      brief: "show one sandbox",
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, _f, [name]) => {
        warm(ctx);
        await (await import("../commands/status.ts")).run(ctx, { name });
      },
    }),
    cd: command({
      brief: 'print a sandbox\'s worktree path (use: cd "$(tachikoma cd)")',
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, _f, [name]) => await (await import("../commands/cd.ts")).run(ctx, { name }),
    }),
    pr: command({
      brief: "commit the worktree's changes, push and open a pull request (on the host)",
      flags: {
        name: text("same as [name] (tachikoma compatibility)"),
        draft: bool("open the pull request as a draft"),
        title: text("pull request title (default: from the commits)"),
        base: text("branch to merge into (default: the repository's default)", {
          placeholder: "branch",
        }),
      },
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, f, [name]) =>
        await (await import("../commands/pr.ts")).run(ctx, {
          name,
          nameFlag: f.name,
          draft: f.draft,
          title: f.title,
          base: f.base,
        }),
    }),
    pull: command({
      brief: "bring a code-by-git sandbox's commits back to the host branch (fast-forward)",
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, _f, [name]) =>
        await (await import("../commands/pull.ts")).run(ctx, { name }),
    }),
    prune: command({
      brief: "destroy sandboxes unused for a number of days; drop entries whose sandbox is gone",
      flags: {
        days: wholeNumber("age in days (default: prune_after_days)", "days"),
        dryRun: bool("only show what would be pruned"),
      },
      run: async (ctx, f) =>
        await (await import("../commands/prune.ts")).run(ctx, { days: f.days, dryRun: f.dryRun }),
    }),
    image,
    checkpoint,
    network,
    setup: command({
      brief: "make this Debian/Ubuntu host ready for Incus: install, initialise, access, image",
      flags: { yes: bool("install Incus without asking", "y") },
      run: async (ctx, f) => await (await import("../commands/setup.ts")).run(ctx, { yes: f.yes }),
    }),
    doctor: command({
      brief: "check this machine: tools, backend reachability, proxy, config",
      run: async (ctx) => await (await import("../commands/doctor.ts")).run(ctx),
    }),
    config,
    ssh: sshGroup,
    proxy,
    mcp,
    completions: command({
      brief: "print a shell completion script (bash, zsh or fish)",
      args: [choiceArg("shell", "target shell", ["bash", "zsh", "fish"])],
      run: async (ctx, _f, [shell]) =>
        ctx.out.raw((await import("./completions.ts")).completionScript(TREE, shell)),
    }),
    version: command({
      brief: "print the version",
      run: async (ctx) => await (await import("../commands/version.ts")).run(ctx),
    }),
  },
});

/** Implementation status of each top-level command, shown by the README and used by tests. */
export const COMMAND_STATUS: Record<string, "ready" | "not implemented"> = Object.fromEntries(
  Object.entries(TREE.routes).map((
    [name, node],
  ) => [name, node.notImplemented ? "not implemented" : "ready"]),
);
