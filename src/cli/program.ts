/**
 * The command tree, as data. Each command's implementation lives in `src/commands/<name>.ts` and
 * is imported only when that command runs, so `--help` and light commands start fast.
 *
 * Adding a command: add an entry to the `routes` of the group it belongs to (the root, or
 * `config`, `checkpoint`…) with `command({ brief, flags, args, run })`; a new group of
 * subcommands is a `group({ brief, routes })`. Help, parsing, the global flags and the shell
 * completions follow from the entry. `tests/unit/cli/program_test.ts` lists the commands that
 * must exist.
 *
 * @module
 */
import type { CommandContext } from "../commands/context.ts";
import {
  arg,
  bool,
  choiceArg,
  command,
  group,
  type GroupNode,
  negated,
  optionalArg,
  optionalRest,
  rest,
  text,
  wholeNumber,
} from "./tree.ts";

const SANDBOX = "sandbox name, branch or prefix";
const EGRESS_MODES = ["unrestricted", "agent", "allowlist", "none"] as const;

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
  run: async (ctx, f, branch) =>
    await (await import("../commands/spawn.ts")).run(ctx, {
      branch,
      attach: f.attach && f.interactive,
      reprovision: f.reprovision,
      persist: f.persist,
      from: f.from,
      egress: f.egress,
    }),
});

const checkpoint = group({
  brief: "snapshots of a sandbox's own disk (the worktree stays on the host)",
  aliases: ["cp"],
  routes: {
    create: command({
      brief: "take a checkpoint",
      flags: { label: text("checkpoint name (default: tk-YYYYMMDD-HHMMSS, UTC)") },
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, f, name) =>
        await (await import("../commands/checkpoint.ts")).create(ctx, { name, label: f.label }),
    }),
    list: command({
      brief: "list checkpoints",
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, _f, name) =>
        await (await import("../commands/checkpoint.ts")).list(ctx, { name }),
    }),
    restore: command({
      brief: "stop, restore a checkpoint, start again and wait for boot",
      args: [arg("name", SANDBOX), arg("label", "checkpoint name")],
      run: async (ctx, _f, name, label) =>
        await (await import("../commands/checkpoint.ts")).restore(ctx, { name, label }),
    }),
    delete: command({
      brief: "delete a checkpoint",
      args: [arg("name", SANDBOX), arg("label", "checkpoint name")],
      run: async (ctx, _f, name, label) =>
        await (await import("../commands/checkpoint.ts")).remove(ctx, { name, label }),
    }),
    fork: command({
      brief: "give a new branch its own sandbox cloned from a checkpoint",
      args: [arg("source", "sandbox:label"), arg("branch", "the new branch")],
      run: async (ctx, _f, source, branch) =>
        await (await import("../commands/checkpoint.ts")).fork(ctx, { source, branch }),
    }),
  },
});

const config = group({
  brief: "show the merged configuration with each value's source",
  default: "show",
  routes: {
    show: command({
      brief: "show the merged configuration with each value's source",
      hidden: true,
      run: async (ctx) => await (await import("../commands/config.ts")).show(ctx),
    }),
    get: command({
      brief: "print one value",
      args: [arg("key", "e.g. vm_cpus, incus.socket")],
      run: async (ctx, _f, key) => await (await import("../commands/config.ts")).get(ctx, key),
    }),
    set: command({
      brief: "set a value in a config file, keeping the rest of it",
      flags: {
        global: bool("the user config (default)"),
        repo: bool("the repo's committed .tachikoma.toml"),
        local: bool("the repo's .tachikoma.local.toml"),
      },
      args: [arg("key", "e.g. vm_cpus, incus.socket"), arg("value", "the new value")],
      run: async (ctx, f, key, value) =>
        await (await import("../commands/config.ts")).set(ctx, { key, value, ...f }),
    }),
    edit: command({
      brief: "open the user config in $VISUAL / $EDITOR",
      flags: { repo: bool("edit .tachikoma.toml"), local: bool("edit .tachikoma.local.toml") },
      run: async (ctx, f) => await (await import("../commands/config.ts")).edit(ctx, f),
    }),
    path: command({
      brief: "print the config file paths",
      run: async (ctx) => await (await import("../commands/config.ts")).path(ctx),
    }),
    trust: command({
      brief: "trust the repo's config files as they are now (their host-side keys then apply)",
      flags: { list: bool("list trusted files"), revoke: bool("forget the files' trust") },
      args: [optionalRest("file", "config files (default: the repo's)")],
      run: async (ctx, f, files) =>
        await (await import("../commands/config.ts")).trust(ctx, { files, ...f }),
    }),
  },
});

const mcpServe = command({
  brief: "serve the MCP tools over stdio, or with --http as a daemon for several clients",
  hidden: true,
  flags: {
    http: bool("serve streamable HTTP (bearer token, reaper) instead of stdio"),
    listen: text("address of the HTTP daemon (default: [mcp] listen)", {
      placeholder: "host:port",
    }),
    allowRemote: bool("allow a non-loopback --listen address (needs --tls-cert and --tls-key)"),
    tlsCert: text("PEM certificate: serve HTTPS", { placeholder: "file" }),
    tlsKey: text("PEM private key of --tls-cert", { placeholder: "file" }),
  },
  run: async (ctx, f) => await (await import("../commands/mcp.ts")).run(ctx, f),
});

const mcp = group({
  brief: "serve the MCP tools over stdio (claude mcp add tachikoma -- tachikoma mcp), or with " +
    "--http as a daemon for several clients",
  default: "serve",
  routes: {
    serve: mcpServe,
    token: command({
      brief: "print the daemon's bearer token and the `claude mcp add` line",
      run: async (ctx) => await (await import("../commands/mcp.ts")).token(ctx),
    }),
    status: command({
      brief: "is the MCP daemon running?",
      run: async (ctx) => await (await import("../commands/mcp.ts")).status(ctx),
    }),
    stop: command({
      brief: "stop the MCP daemon of this configuration directory",
      run: async (ctx) => await (await import("../commands/mcp.ts")).stop(ctx),
    }),
  },
});

const sshInstall = (sub: "install" | "refresh", brief: string) =>
  command({
    brief,
    run: async (ctx) => await (await import("../commands/ssh.ts")).install(ctx, sub),
  });

const proxy = group({
  brief: "the host credential proxy",
  routes: {
    start: command({
      brief: "run the proxy (foreground unless -d)",
      flags: {
        daemon: bool("run in the background", "d"),
        port: wholeNumber("port", "port"),
        bind: text("address to bind", { placeholder: "address" }),
      },
      run: async (ctx, f) =>
        await (await import("../commands/proxy.ts")).start(ctx, {
          daemon: f.daemon,
          port: f.port,
          bind: f.bind,
        }),
    }),
    stop: command({
      brief: "stop the background proxy",
      run: async (ctx) => await (await import("../commands/proxy.ts")).stop(ctx),
    }),
    status: command({
      brief: "is the proxy healthy?",
      run: async (ctx) => await (await import("../commands/proxy.ts")).status(ctx),
    }),
    logs: command({
      brief: "print the proxy log",
      flags: { follow: bool("keep reading", "f") },
      run: async (ctx, f) =>
        await (await import("../commands/proxy.ts")).logs(ctx, { follow: f.follow }),
    }),
  },
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
      run: async (ctx, f, name) => {
        warm(ctx);
        await (await import("../commands/enter.ts")).run(ctx, {
          name,
          session: f.session,
          persist: f.persist,
          start: f.start,
        });
      },
    }),
    sessions: group({
      brief: "list a sandbox's persistent sessions, or kill one",
      default: "list",
      routes: {
        list: command({
          brief: "list a sandbox's persistent sessions",
          hidden: true,
          args: [optionalArg("name", SANDBOX)],
          run: async (ctx, _f, name) =>
            await (await import("../commands/sessions.ts")).list(ctx, { name }),
        }),
        kill: command({
          brief: "end a persistent session and what runs in it",
          flags: { name: text("sandbox (default: the current branch's)", { short: "n" }) },
          args: [arg("session", "session name")],
          run: async (ctx, f, session) =>
            await (await import("../commands/sessions.ts")).kill(ctx, { name: f.name, session }),
        }),
      },
    }),
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
      run: async (ctx, f, argv) => {
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
    port: group({
      brief: "forward host ports to a sandbox's ports (127.0.0.1 unless --bind)",
      routes: {
        forward: command({
          brief:
            "forward a host port to a port of a running sandbox: [name] <guest-port> [host-port]",
          flags: {
            bind: text("host address to listen on (default 127.0.0.1)", { placeholder: "ip" }),
          },
          args: [
            optionalRest(
              "args",
              "[name] <guest-port> [host-port] (host port default: the guest's)",
            ),
          ],
          run: async (ctx, f, args) =>
            await (await import("../commands/port.ts")).forward(ctx, { args, bind: f.bind }),
        }),
        list: command({
          brief: "list port forwards",
          aliases: ["ls"],
          args: [optionalArg("name", SANDBOX)],
          run: async (ctx, _f, name) =>
            await (await import("../commands/port.ts")).list(ctx, { name }),
        }),
        rm: command({
          brief: "remove a port forward: [name] <host-port>",
          args: [optionalRest("args", "[name] <host-port>")],
          run: async (ctx, _f, args) =>
            await (await import("../commands/port.ts")).remove(ctx, { args }),
        }),
        serve: command({
          brief: "the relay behind a forward (started by port forward)",
          hidden: true,
          flags: { bind: text("host address", { placeholder: "ip" }) },
          args: [
            arg("sandbox", "sandbox"),
            arg("address", "guest address"),
            arg("guest_port", "guest port"),
            arg("host_port", "host port"),
          ],
          run: async (ctx, f, sandbox, address, guestPort, hostPort) =>
            await (await import("../commands/port.ts")).serve(ctx, {
              sandbox,
              address,
              guestPort,
              hostPort,
              bind: f.bind,
            }),
        }),
      },
    }),
    halt: command({
      brief: "stop a sandbox (graceful, then forced)",
      aliases: ["stop"],
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, _f, name) => await (await import("../commands/halt.ts")).run(ctx, { name }),
    }),
    suspend: command({
      brief: "suspend a sandbox (stops it where the backend cannot suspend, and says so)",
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, _f, name) =>
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
      run: async (ctx, f, name) =>
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
        warm(ctx);
        await (await import("../commands/list.ts")).run(ctx, { repo: f.repo, all: f.all });
      },
    }),
    status: command({
      brief: "show one sandbox",
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, _f, name) => {
        warm(ctx);
        await (await import("../commands/status.ts")).run(ctx, { name });
      },
    }),
    cd: command({
      brief: 'print a sandbox\'s worktree path (use: cd "$(tachikoma cd)")',
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, _f, name) => await (await import("../commands/cd.ts")).run(ctx, { name }),
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
      run: async (ctx, f, name) =>
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
      run: async (ctx, _f, name) => await (await import("../commands/pull.ts")).run(ctx, { name }),
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
    image: group({
      brief: "bases new sandboxes start from; stock images",
      routes: {
        list: command({
          brief: "list the bases: status (ready, stale, missing), size, age",
          run: async (ctx) => await (await import("../commands/image.ts")).list(ctx),
        }),
        pull: command({
          brief: "pull a base image into the local store (or refresh it)",
          args: [
            optionalArg("ref", "image reference, e.g. images:debian/12 (default: base_image)"),
          ],
          run: async (ctx, _f, ref) =>
            await (await import("../commands/image.ts")).pull(ctx, { ref }),
        }),
        build: command({
          brief: "build a base (its missing ancestors first), or every base",
          flags: { force: bool("build the base again even when it is ready") },
          args: [optionalArg("base", "base name (default: every base)")],
          run: async (ctx, f, base) =>
            await (await import("../commands/image.ts")).build(ctx, { base, force: f.force }),
        }),
        rm: command({
          brief: "delete a base's builds",
          args: [arg("base", "base name")],
          run: async (ctx, _f, base) =>
            await (await import("../commands/image.ts")).rm(ctx, { base }),
        }),
      },
    }),
    checkpoint,
    network: group({
      brief: "a sandbox's egress policy (enforced on the host) and its egress log",
      routes: {
        show: command({
          brief: "show the egress mode, the allow list and where they are enforced",
          args: [optionalArg("name", SANDBOX)],
          run: async (ctx, _f, name) =>
            await (await import("../commands/network.ts")).show(ctx, { name }),
        }),
        set: command({
          brief: "set the egress mode (applies to a running sandbox at once)",
          args: [arg("name", SANDBOX), choiceArg("mode", "egress mode", EGRESS_MODES)],
          run: async (ctx, _f, name, mode) =>
            await (await import("../commands/network.ts")).set(ctx, { name, mode }),
        }),
        allow: command({
          brief: "allow a host (host, *.host, .host, IP or CIDR, optionally :port)",
          args: [arg("name", SANDBOX), arg("host", "host")],
          run: async (ctx, _f, name, host) =>
            await (await import("../commands/network.ts")).allow(ctx, { name, host }),
        }),
        deny: command({
          brief: "remove a host from the allow list",
          args: [arg("name", SANDBOX), arg("host", "host")],
          run: async (ctx, _f, name, host) =>
            await (await import("../commands/network.ts")).deny(ctx, { name, host }),
        }),
        log: command({
          brief: "egress through the proxy: time, host, port, verdict",
          flags: { follow: bool("keep printing new lines (JSON lines with --json)", "f") },
          args: [optionalArg("name", SANDBOX)],
          run: async (ctx, f, name) =>
            await (await import("../commands/network.ts")).log(ctx, { name, follow: f.follow }),
        }),
      },
    }),
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
    ssh: group({
      brief: "manage the ~/.ssh/config block for sandboxes",
      routes: {
        install: sshInstall("install", "write the managed block (ssh <sandbox> then works)"),
        refresh: sshInstall("refresh", "rewrite the managed block from current state"),
        uninstall: command({
          brief: "remove the managed block",
          run: async (ctx) => await (await import("../commands/ssh.ts")).uninstall(ctx),
        }),
        forget: command({
          brief: "drop a sandbox's pinned SSH host keys",
          args: [arg("name", "sandbox name")],
          run: async (ctx, _f, name) =>
            await (await import("../commands/ssh.ts")).forget(ctx, name),
        }),
      },
    }),
    proxy,
    mcp,
    completions: command({
      brief: "print a shell completion script (bash, zsh or fish)",
      args: [choiceArg("shell", "target shell", ["bash", "zsh", "fish"])],
      run: async (ctx, _f, shell) =>
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
