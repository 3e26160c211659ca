import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import { TartCli } from "../../../src/backends/tart/cli.ts";
import { GuestAccess } from "../../../src/backends/tart/guest_access.ts";
import {
  mountSharesArgv,
  pullFileArgv,
  pullFileByExec,
  pushFileArgv,
  pushFileByExec,
  tartExecArgv,
} from "../../../src/backends/tart/guest.ts";
import { FakeClock } from "../../testing/fake_clock.ts";
import {
  ConflictError,
  NotFoundError,
  RuntimeError,
  UnreachableError,
  UsageError,
} from "../../../src/lib/errors.ts";
import { fail, FakeSsh, listJson, ok, result, ScriptedRunner } from "./tart_doubles.ts";

function access(options: { password?: string | null; states?: Record<string, string> } = {}) {
  const runner = new ScriptedRunner();
  const states = options.states ?? { vm: "running" };
  runner.on(["list"], () => ok(listJson(...Object.entries(states))));
  runner.on(["ip"], ok("10.213.0.9\n"));
  const ssh = new FakeSsh();
  const guest = new GuestAccess({
    cli: new TartCli(runner),
    ssh,
    clock: new FakeClock(0, { autoAdvance: true }),
    sshUser: "admin",
    sshPort: 22,
    resolver: "dhcp",
    password: options.password === undefined ? "admin" : options.password,
  });
  return { guest, runner, ssh, states };
}

const decode = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("exec: over SSH with tachikoma's key when it is authorised", async () => {
  const { guest, ssh, runner } = access();
  ssh.reply = () => result(3, "hello");
  const r = await guest.exec("vm", { argv: ["echo", "hello"], user: "root" });
  assertEquals([r.code, decode(r.stdout)], [3, "hello"]);
  assertEquals(ssh.execs[0].target, {
    sandbox: "vm",
    host: "10.213.0.9",
    port: 22,
    user: "admin",
    auth: { kind: "key" },
  });
  assertEquals(ssh.execs[0].request.user, "root");
  assertEquals(runner.argsOf("exec"), [], "tart exec is not used once the key works");
  await guest.exec("vm", { argv: ["true"] });
  assertEquals(ssh.probed.length, 1, "the route is remembered");
});

Deno.test("exec: before the key is authorised, tart exec when the agent answers", async () => {
  const { guest, ssh, runner } = access();
  ssh.probes.key = "auth-failed";
  runner.once(["exec", "vm", "true"], ok());
  runner.on(["exec", "-i"], (_args, options) => ok(`got ${options.stdin}`));
  const r = await guest.exec("vm", { argv: ["cat"], stdin: "ssh-ed25519 AAAA tachikoma" });
  assertEquals(decode(r.stdout), "got ssh-ed25519 AAAA tachikoma");
  const argv = runner.argsOf("exec")[1];
  assertEquals(argv.slice(0, 3), ["exec", "-i", "vm"]);
  assertEquals(argv.slice(-1), ["cat"]);
  assertEquals(argv.includes("-t"), false);
  assertEquals(argv[3], "sh", "the guest argv follows the name directly (no '--')");
});

Deno.test("exec: switches to SSH as soon as the key works", async () => {
  const { guest, ssh, runner } = access();
  ssh.probes.key = "auth-failed";
  runner.on(["exec"], ok("via tart"));
  assertEquals(decode((await guest.exec("vm", { argv: ["a"] })).stdout), "via tart");
  ssh.probes.key = "ok";
  ssh.reply = () => result(0, "via ssh");
  assertEquals(decode((await guest.exec("vm", { argv: ["b"] })).stdout), "via ssh");
});

Deno.test("exec: no agent → password SSH as admin (tart's images)", async () => {
  const { guest, ssh, runner } = access();
  ssh.probes = { key: "auth-failed", password: "ok" };
  runner.on(
    ["exec"],
    fail(
      1,
      "Failed to connect to the VM using its control socket: x, is the Tart Guest Agent running?",
    ),
  );
  ssh.reply = () => result(0, "pw");
  const r = await guest.exec("vm", { argv: ["id"] });
  assertEquals(decode(r.stdout), "pw");
  assertEquals(ssh.execs[0].target.auth, { kind: "password", password: "admin" });
});

Deno.test("exec: nothing works → UnreachableError naming each route", async () => {
  const { guest, ssh, runner } = access({ password: null });
  ssh.probes = { key: "unreachable", password: "ok" };
  runner.on(
    ["exec"],
    fail(
      1,
      "Failed to connect to the VM using its control socket: x, is the Tart Guest Agent running?",
    ),
  );
  const error = await assertRejects(() => guest.exec("vm", { argv: ["id"] }), UnreachableError);
  assertMatch(
    error.message,
    /key: unreachable; tart guest agent: not answering; password SSH as admin: disabled/,
  );
});

Deno.test("exec: a stopped VM is a ConflictError; its stale DHCP lease is never used", async () => {
  const { guest, runner } = access({ states: { vm: "stopped" } });
  await assertRejects(() => guest.exec("vm", { argv: ["true"] }), ConflictError, "not running");
  assertEquals(runner.argsOf("ip"), []);
  const missing = access({ states: {} });
  await assertRejects(() => missing.guest.exec("vm", { argv: ["true"] }), NotFoundError);
});

Deno.test("pushFile / pullFile: through exec, base64 back, NotFound for missing files", async () => {
  const { guest, ssh } = access();
  const bytes = new Uint8Array([0, 255, 10, 39, 36]);
  ssh.reply = (request) =>
    request.argv[2].includes("base64")
      ? (request.argv[4] === "/missing" ? result(44) : result(0, "AP8KJyQ=\n"))
      : result(0);
  await guest.pushFile("vm", {
    path: "/home/admin/.ssh/authorized_keys",
    data: bytes,
    mode: 0o600,
  });
  const push = ssh.execs[0].request;
  assertEquals(push.stdin, bytes);
  assertEquals(push.user, "user");
  assertEquals(push.argv.slice(-2), ["/home/admin/.ssh/authorized_keys", "0600"]);
  assertEquals(await guest.pullFile("vm", "/etc/x"), bytes);
  await assertRejects(() => guest.pullFile("vm", "/missing"), NotFoundError);
});

Deno.test("pushFileByExec / pullFileByExec (tart and truenas): a failed command names the file, exit and stderr's tail", async () => {
  const seen: string[][] = [];
  const failing = (request: { argv: string[]; user?: string }) => {
    seen.push([request.user ?? "-", ...request.argv.slice(-2)]);
    return Promise.resolve(result(3, "", "one\ntwo\nthree\nfour\nfive\nsix\nDisk full\n"));
  };
  const file = { path: "/root/a b", data: new Uint8Array([1]), owner: "root" as const };
  const push = await assertRejects(() => pushFileByExec(failing, "vm", file), RuntimeError);
  assertEquals(
    push.message,
    "writing /root/a b in vm failed (exit 3): three\nfour\nfive\nsix\nDisk full",
  );
  const pull = await assertRejects(() => pullFileByExec(failing, "vm", "/etc/x"), RuntimeError);
  assertMatch(pull.message, /^reading \/etc\/x in vm failed \(exit 3\): three\n.*Disk full$/s);
  assertEquals(seen, [["root", "/root/a b", "0644"], ["-", "tachikoma", "/etc/x"]]);
});

// --- the guest argv, run for real with sh on this host -------------------------------------

const HOSTILE = ["a'b", "$(echo pwned)", "`id`", "new\nline", "sp ace", "ünï", "--", "-n", ""];

async function sh(
  argv: string[],
  stdin?: Uint8Array,
): Promise<{ code: number; out: string; err: string }> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const o = await child.output();
  return { code: o.code, out: decode(o.stdout), err: decode(o.stderr) };
}

const me = new TextDecoder().decode(new Deno.Command("id", { args: ["-un"] }).outputSync().stdout)
  .trim();

Deno.test("tartExecArgv: argv, env and cwd arrive byte-exact (run with sh here)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tkt tart 'cwd' " });
  const argv = tartExecArgv(
    {
      argv: [
        "sh",
        "-c",
        'printf "%s|" "$@"; printf "%s|%s|%s" "$PWD" "$X" "$HOME"',
        "sh",
        ...HOSTILE,
      ],
      env: { X: "v'$(x)`y`\nz" },
      cwd: dir,
    },
    me,
  );
  const r = await sh(argv);
  assertEquals(r.code, 0, r.err);
  const home = me === "root" ? "/root" : `/home/${me}`;
  assertEquals(r.out, HOSTILE.join("|") + "|" + `${dir}|v'$(x)\`y\`\nz|${home}`);
  await Deno.remove(dir);
});

Deno.test("tartExecArgv: exit codes pass through; bad env names are refused", async () => {
  assertEquals((await sh(tartExecArgv({ argv: ["sh", "-c", "exit 7"] }, me))).code, 7);
  try {
    tartExecArgv({ argv: ["true"], env: { "A B": "x" } }, me);
    throw new Error("accepted an invalid name");
  } catch (error) {
    assertEquals(error instanceof UsageError, true);
  }
});

Deno.test("pushFileArgv / pullFileArgv: binary-safe round trip, mode applied, atomic", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tkt-tart-push-" });
  const path = `${dir}/sub dir/it's $(x).bin`;
  const data = new Uint8Array(70_000).map((_, i) => (i * 31) % 256);
  const push = await sh(pushFileArgv(path, 0o600), data);
  assertEquals(push.code, 0, push.err);
  assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
  assertEquals(await Deno.readFile(path), data);
  const pull = await sh(pullFileArgv(path));
  assertEquals(pull.code, 0, pull.err);
  const bin = atob(pull.out.replace(/\s+/g, ""));
  assertEquals(Uint8Array.from(bin, (c) => c.charCodeAt(0)), data);
  assertEquals((await sh(pullFileArgv(`${dir}/nope`))).code, 44);
  assertEquals([...Deno.readDirSync(`${dir}/sub dir`)].length, 1, "no temp file left behind");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("mountSharesArgv: a real sh mounts the tag once and binds nested shares; values stay data", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tk-mount-" });
  try {
    const root = `${dir}/mnt/tachikoma`;
    const hostile = "wt $(touch pwned) 'q\"`id`";
    // Stubs for the guest's mount and mountpoint: record argv, mountpoint says "not mounted".
    await Deno.mkdir(`${dir}/bin`);
    await Deno.writeTextFile(
      `${dir}/bin/mount`,
      `#!/bin/sh\nprintf '%s\\0' mount "$@" >> "${dir}/log"; printf '\\n' >> "${dir}/log"\n` +
        `[ "$1" = -t ] && mkdir -p "$4/code" "$4/git-objects" "$4/git-worktree"\nexit 0\n`,
      { mode: 0o755 },
    );
    await Deno.writeTextFile(`${dir}/bin/mountpoint`, "#!/bin/sh\nexit 1\n", { mode: 0o755 });
    const argv = mountSharesArgv("com.apple.virtio-fs.automount", root, [
      { name: "code", guestPath: `${root}/code` },
      { name: "git-objects", guestPath: `${root}/git/objects` },
      { name: "git-worktree", guestPath: `${root}/git/worktrees/${hostile}` },
    ]);
    assertEquals(argv[2].includes(hostile), false, "values never in the script text");
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd: dir,
      env: { PATH: `${dir}/bin:/usr/bin:/bin` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    const calls = (await Deno.readTextFile(`${dir}/log`)).trim().split("\n").map((l) =>
      l.split("\0").filter((x) => x !== "")
    );
    assertEquals(calls, [
      ["mount", "-t", "virtiofs", "com.apple.virtio-fs.automount", root],
      ["mount", "--bind", `${root}/git-objects`, `${root}/git/objects`],
      ["mount", "--bind", `${root}/git-worktree`, `${root}/git/worktrees/${hostile}`],
    ]);
    assertEquals(
      [...Deno.readDirSync(dir)].map((e) => e.name).includes("pwned"),
      false,
      "nothing ran",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("forget: a stopped or restarted VM's pooled SSH connections are dropped", () => {
  const { guest, ssh } = access();
  guest.forget("vm");
  assertEquals(ssh.forgotten, ["vm"]);
});
