import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { UsageError } from "../../../src/lib/errors.ts";
import { loginArgv } from "../../../src/lib/shell.ts";
import { LOCAL_BIN_LINE } from "../../../src/provision/profile.ts";
import { attachArgv, checkSessionName, parseSessions } from "../../../src/core/sessions.ts";

const HOSTILE = [
  "",
  "a b",
  "x'y",
  "$(touch /tmp/pwned)",
  "`id`",
  "a\nb",
  "a:b",
  "a.b",
  "-t",
  "é",
  "x".repeat(65),
  "a;b",
];

Deno.test("session names: valid ones pass, hostile ones are one-line usage errors", () => {
  for (const ok of ["main", "agent-2", "A_b-9", "x".repeat(64)]) {
    assertEquals(checkSessionName(ok), ok);
  }
  for (const bad of HOSTILE) {
    const e = assertThrows(() => checkSessionName(bad), UsageError);
    assert(e.message.startsWith("invalid session name "), e.message);
    assert(!e.message.includes("\n"), "one line (the name is JSON-escaped)");
    assertThrows(() => attachArgv(bad), UsageError);
  }
  // The name travels as its own argv element, never inside the script.
  const argv = attachArgv("main");
  assertEquals(argv.slice(0, 2), ["sh", "-c"]);
  assertEquals(argv.slice(3), ["tachikoma", "main"]);
  assert(!argv[2].includes("main"));
});

Deno.test("parseSessions: strict lines, guest junk skipped, no tmux", () => {
  const out = "1700000000\t1\t1700000100\tmain\n" +
    "1700000200\t0\t1700000300\twe\tird name\n" +
    "garbage line\n" +
    "12\tx\t13\tbad\n";
  const r = parseSessions(out);
  assertEquals(r.tmux, true);
  assertEquals(r.skipped, 2);
  assertEquals(r.sessions, [
    {
      name: "main",
      started: "2023-11-14T22:13:20.000Z",
      attached: 1,
      last_activity: "2023-11-14T22:15:00.000Z",
    },
    {
      name: "we\tird name",
      started: "2023-11-14T22:16:40.000Z",
      attached: 0,
      last_activity: "2023-11-14T22:18:20.000Z",
    },
  ]);
  assertEquals(parseSessions("no-tmux\n"), { sessions: [], tmux: false, skipped: 0 });
  assertEquals(parseSessions(""), { sessions: [], tmux: true, skipped: 0 });
});

Deno.test("login environment: ~/.profile read, ~/.local/bin on PATH, cwd kept, argv exact", async () => {
  const home = await Deno.makeTempDir({ prefix: "tk-login-" });
  try {
    await Deno.mkdir(`${home}/.local/bin`, { recursive: true });
    await Deno.mkdir(`${home}/work`);
    await Deno.writeTextFile(
      `${home}/.local/bin/tk-hello`,
      '#!/bin/sh\nprintf "%s|" "$TACHIKOMA" "$PWD" "$@"\n',
      { mode: 0o755 },
    );
    // What the managed block does: variables, PATH, then a cd elsewhere (and some noise).
    await Deno.writeTextFile(
      `${home}/.profile`,
      `echo noise\nexport TACHIKOMA='1'\n${LOCAL_BIN_LINE}\ncd /\n`,
    );
    const argv = loginArgv(["tk-hello", "a b", "$(touch x)", "`id`", "'q'", "é\nz"]);
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd: `${home}/work`,
      env: { HOME: home, PATH: "/usr/bin:/bin" },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assertEquals(
      new TextDecoder().decode(out.stdout),
      `1|${home}/work|a b|$(touch x)|\`id\`|'q'|é\nz|`,
    );
    // Without a profile: the command still runs (the PATH it was given).
    await Deno.remove(`${home}/.profile`);
    const plain = loginArgv(["sh", "-c", 'printf "%s" "${TACHIKOMA-unset}"']);
    const out2 = await new Deno.Command(plain[0], {
      args: plain.slice(1),
      env: { HOME: home, PATH: "/usr/bin:/bin" },
      clearEnv: true,
      stdout: "piped",
    }).output();
    assertEquals(new TextDecoder().decode(out2.stdout), "unset");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("attach: tmux on a terminal it can drive; a plain shell with a notice on a dumb one or without tmux", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/bin`);
    await Deno.writeTextFile(
      `${dir}/bin/tmux`,
      '#!/bin/sh\nprintf "tmux:%s|" "$@"; exit 5\n',
      { mode: 0o755 },
    );
    const run = async (env: Record<string, string>, path: string) => {
      const [cmd, ...args] = attachArgv("main");
      assertEquals(cmd, "sh");
      const p = new Deno.Command("/bin/sh", {
        args,
        env: { HOME: dir, SHELL: "/bin/sh", PATH: path, ...env },
        clearEnv: true,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = p.stdin.getWriter();
      await w.write(new TextEncoder().encode("exit 6\n"));
      await w.close();
      const out = await p.output();
      const dec = new TextDecoder();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    };
    const withTmux = `${dir}/bin:/usr/bin:/bin`;
    const tmux = await run({ TERM: "xterm-256color" }, withTmux);
    assertEquals(tmux, {
      code: 5,
      stdout: "tmux:new-session|tmux:-A|tmux:-s|tmux:main|",
      stderr: "",
    });
    for (const term of [{ TERM: "dumb" }, {}] as Record<string, string>[]) {
      const plain = await run(term, withTmux);
      assertEquals(plain.code, 6, plain.stderr);
      assertEquals(plain.stdout, "");
      assertStringIncludes(plain.stderr, "cannot hold a tmux session: a plain shell");
    }
    const none = await run({ TERM: "xterm-256color" }, `${dir}/nobin`);
    assertEquals(none.code, 6, none.stderr);
    assertStringIncludes(none.stderr, "this sandbox has no tmux");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
