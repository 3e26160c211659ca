/**
 * The groups of subcommands of the command tree (`checkpoint`, `config`, `mcp`, `proxy`,
 * `sessions`, `port`, `image`, `network`, `ssh`), as data; `program.ts` puts them in the tree
 * next to the top-level commands. Each command's implementation is imported only when it runs.
 *
 * @module
 */
import {
  arg,
  bool,
  choiceArg,
  command,
  group,
  optionalArg,
  optionalRest,
  text,
  wholeNumber,
} from "./tree.ts";

/** How a command's sandbox argument is described in help. */
export const SANDBOX = "sandbox name, branch or prefix";
const EGRESS_MODES = ["unrestricted", "agent", "allowlist", "none"] as const;

/** `checkpoint create|list|restore|delete|fork` (alias `cp`). */
export const checkpoint = group({
  brief: "snapshots of a sandbox's own disk (the worktree stays on the host)",
  aliases: ["cp"],
  routes: {
    create: command({
      brief: "take a checkpoint",
      flags: { label: text("checkpoint name (default: tk-YYYYMMDD-HHMMSS, UTC)") },
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, f, [name]) =>
        await (await import("../commands/checkpoint.ts")).create(ctx, { name, label: f.label }),
    }),
    list: command({
      brief: "list checkpoints",
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, _f, [name]) =>
        await (await import("../commands/checkpoint.ts")).list(ctx, { name }),
    }),
    restore: command({
      brief: "stop, restore a checkpoint, start again and wait for boot",
      args: [arg("name", SANDBOX), arg("label", "checkpoint name")],
      run: async (ctx, _f, [name, label]) =>
        await (await import("../commands/checkpoint.ts")).restore(ctx, { name, label }),
    }),
    delete: command({
      brief: "delete a checkpoint",
      args: [arg("name", SANDBOX), arg("label", "checkpoint name")],
      run: async (ctx, _f, [name, label]) =>
        await (await import("../commands/checkpoint.ts")).remove(ctx, { name, label }),
    }),
    fork: command({
      brief: "give a new branch its own sandbox cloned from a checkpoint",
      args: [arg("source", "sandbox:label"), arg("branch", "the new branch")],
      run: async (ctx, _f, [source, branch]) =>
        await (await import("../commands/checkpoint.ts")).fork(ctx, { source, branch }),
    }),
  },
});

/** `config show|get|set|edit|path|trust`. */
export const config = group({
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
      run: async (ctx, _f, [key]) => await (await import("../commands/config.ts")).get(ctx, key),
    }),
    set: command({
      brief: "set a value in a config file, keeping the rest of it",
      flags: {
        global: bool("the user config (default)"),
        repo: bool("the repo's committed .tachikoma.toml"),
        local: bool("the repo's .tachikoma.local.toml"),
      },
      args: [arg("key", "e.g. vm_cpus, incus.socket"), arg("value", "the new value")],
      run: async (ctx, f, [key, value]) =>
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
      run: async (ctx, f, [files]) =>
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

/** `mcp [serve]|token|status|stop`. */
export const mcp = group({
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

/** `proxy start|stop|status|logs`. */
export const proxy = group({
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

/** `sessions [list]|kill`. */
export const sessions = group({
  brief: "list a sandbox's persistent sessions, or kill one",
  default: "list",
  routes: {
    list: command({
      brief: "list a sandbox's persistent sessions",
      hidden: true,
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, _f, [name]) =>
        await (await import("../commands/sessions.ts")).list(ctx, { name }),
    }),
    kill: command({
      brief: "end a persistent session and what runs in it",
      flags: { name: text("sandbox (default: the current branch's)", { short: "n" }) },
      args: [arg("session", "session name")],
      run: async (ctx, f, [session]) =>
        await (await import("../commands/sessions.ts")).kill(ctx, { name: f.name, session }),
    }),
  },
});

/** `port forward|list|rm`. */
export const port = group({
  brief: "forward host ports to a sandbox's ports (127.0.0.1 unless --bind)",
  routes: {
    forward: command({
      brief: "forward a host port to a port of a running sandbox: [name] <guest-port> [host-port]",
      flags: {
        bind: text("host address to listen on (default 127.0.0.1)", { placeholder: "ip" }),
      },
      args: [
        optionalRest(
          "args",
          "[name] <guest-port> [host-port] (host port default: the guest's)",
        ),
      ],
      run: async (ctx, f, [args]) =>
        await (await import("../commands/port.ts")).forward(ctx, { args, bind: f.bind }),
    }),
    list: command({
      brief: "list port forwards",
      aliases: ["ls"],
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, _f, [name]) =>
        await (await import("../commands/port.ts")).list(ctx, { name }),
    }),
    rm: command({
      brief: "remove a port forward: [name] <host-port>",
      args: [optionalRest("args", "[name] <host-port>")],
      run: async (ctx, _f, [args]) =>
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
      run: async (ctx, f, [sandbox, address, guestPort, hostPort]) =>
        await (await import("../commands/port.ts")).serve(ctx, {
          sandbox,
          address,
          guestPort,
          hostPort,
          bind: f.bind,
        }),
    }),
  },
});

/** `image list|pull|build|rm`. */
export const image = group({
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
      run: async (ctx, _f, [ref]) =>
        await (await import("../commands/image.ts")).pull(ctx, { ref }),
    }),
    build: command({
      brief: "build a base (its missing ancestors first), or every base",
      flags: { force: bool("build the base again even when it is ready") },
      args: [optionalArg("base", "base name (default: every base)")],
      run: async (ctx, f, [base]) =>
        await (await import("../commands/image.ts")).build(ctx, { base, force: f.force }),
    }),
    rm: command({
      brief: "delete a base's builds",
      args: [arg("base", "base name")],
      run: async (ctx, _f, [base]) =>
        await (await import("../commands/image.ts")).rm(ctx, { base }),
    }),
  },
});

/** `network show|set|allow|deny|log`. */
export const network = group({
  brief: "a sandbox's egress policy (enforced on the host) and its egress log",
  routes: {
    show: command({
      brief: "show the egress mode, the allow list and where they are enforced",
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, _f, [name]) =>
        await (await import("../commands/network.ts")).show(ctx, { name }),
    }),
    set: command({
      brief: "set the egress mode (applies to a running sandbox at once)",
      args: [arg("name", SANDBOX), choiceArg("mode", "egress mode", EGRESS_MODES)],
      run: async (ctx, _f, [name, mode]) =>
        await (await import("../commands/network.ts")).set(ctx, { name, mode }),
    }),
    allow: command({
      brief: "allow a host (host, *.host, .host, IP or CIDR, optionally :port)",
      args: [arg("name", SANDBOX), arg("host", "host")],
      run: async (ctx, _f, [name, host]) =>
        await (await import("../commands/network.ts")).allow(ctx, { name, host }),
    }),
    deny: command({
      brief: "remove a host from the allow list",
      args: [arg("name", SANDBOX), arg("host", "host")],
      run: async (ctx, _f, [name, host]) =>
        await (await import("../commands/network.ts")).deny(ctx, { name, host }),
    }),
    log: command({
      brief: "egress through the proxy: time, host, port, verdict",
      flags: { follow: bool("keep printing new lines (JSON lines with --json)", "f") },
      args: [optionalArg("name", SANDBOX)],
      run: async (ctx, f, [name]) =>
        await (await import("../commands/network.ts")).log(ctx, { name, follow: f.follow }),
    }),
  },
});

/** `ssh install|refresh`. */
export const sshGroup = group({
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
      run: async (ctx, _f, [name]) => await (await import("../commands/ssh.ts")).forget(ctx, name),
    }),
  },
});
