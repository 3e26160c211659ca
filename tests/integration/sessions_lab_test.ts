/**
 * Long-running agents on the Incus lab (issue 16): in a temp git repo, `tachikoma spawn`
 * provisions a container whose `sessions` step installs tmux with the guest's own apt-get (from
 * a repository of the host's packages on the lab bridge, set up by a provisioning script), then:
 *
 * - `exec` runs in the login environment: a command in `~/.local/bin` is found, `TACHIKOMA=1`;
 *   `--raw` runs without it;
 * - a real `tachikoma enter`, driven in a tmux on the host (send-keys, capture-pane), starts a
 *   long command in the session `main`; the client is killed; `sessions` shows the session with
 *   no client; a new `enter` re-attaches and the command is still counting; `sessions kill`
 *   ends it; an unknown or hostile session name is one line;
 * - auto-start: `exec --no-start` refuses a stopped sandbox in one line, `exec` starts it with
 *   a notice; `enter --no-persist` resumes a suspended one.
 *
 * The CLI runs as a subprocess of main.ts.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { labEnv, labIgnored } from "./lab.ts";
import { hostAptRepo } from "./host_apt_repo.ts";
import { openLabWorld } from "./lab_world.ts";
import { ok, run } from "../testing/run.ts";

const lab = labEnv();
const dec = new TextDecoder();

/** Polls `probe` until it returns a value, or fails after `ms` naming `what`. */
async function until<T>(
  what: string,
  probe: () => Promise<T | null>,
  ms = 60_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown = null;
  for (let delay = 100;; delay = Math.min(delay * 2, 1000)) {
    try {
      const value = await probe();
      if (value !== null) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${last ?? ""}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

interface SessionsDoc {
  name: string;
  state: string;
  tmux: boolean;
  sessions: { name: string; started: string; attached: number; last_activity: string }[];
}

Deno.test({
  name: "incus lab: login environment, persistent sessions across a killed client, auto-start",
  ignore: labIgnored(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // [env] in each form; the forwarded value is a secret that must never reach the guest's disk.
    const fwdSecret = `fwd-secret-${crypto.randomUUID()}`;
    const onlyValue = `only-${crypto.randomUUID()}`;
    const diskValue = `disk-${crypto.randomUUID()}`;
    await using world = await openLabWorld({
      prefix: "sess",
      env: { TERM: "xterm-256color", TACHIKOMA_EGRESS: "unrestricted", TK_FWD: fwdSecret },
      config: `[env]\nTK_DISK = "${diskValue}"\nTK_FWD = { forward = true }\n` +
        `TK_FWD_UNSET = { forward = true }\n` +
        `TK_ONLY = { value = "${onlyValue}", session_only = true }\n`,
    });
    const { id, repo, cfg, env, backend, cli, cliArgv } = world;
    await Deno.mkdir(`${cfg}/profiles`);
    // The host's tmux, on a socket of its own: the terminal `tachikoma enter` runs in.
    const socket = `tk-sess-${id}`;
    const tmux = (...args: string[]) =>
      run("tmux", ["-L", socket, "-f", "/dev/null", ...args], { cwd: repo, env });
    const screen = async (pane: string) =>
      (await tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", pane)).stdout;
    const lastTick = (text: string) => {
      const all = [...text.matchAll(/tick-(\d+)/g)].map((m) => Number(m[1]));
      return all.length ? Math.max(...all) : 0;
    };

    await using apt = await hostAptRepo(lab!.gateway, [
      "tmux",
      "libevent-core-2.1-7",
      "libutempter0",
    ]);
    // The guest's apt-get reaches only this repository (never a mirror).
    await Deno.writeTextFile(
      `${cfg}/profiles/00-apt.sh`,
      `sudo sh -c 'rm -f /etc/apt/sources.list.d/*; printf "%s\\n" "$1" > /etc/apt/sources.list' ` +
        `sh '${apt.sourcesLine}'\n`,
    );
    try {
      const branch = `sess/${id}`;
      const spawned = await world.spawn([branch, "--backend", "incus"]);
      const name = spawned.name;
      const worktree: string = spawned.worktree_path;
      assert(spawned.provisioning.steps.includes("sessions"), JSON.stringify(spawned));
      const wt = (args: string[], stdin?: string) => cli(args, worktree, stdin);

      // --- login environment ------------------------------------------------------------------
      assertMatch(ok(await wt(["exec", "--", "tmux", "-V"]), "tmux -V").stdout, /^tmux \d/);
      ok(
        await wt([
          "exec",
          "--raw",
          "--",
          "sh",
          "-c",
          'mkdir -p "$HOME/.local/bin" && printf \'#!/bin/sh\\necho "hello:$TACHIKOMA:$1:$PWD"\\n\'' +
          ' > "$HOME/.local/bin/tk-hello" && chmod +x "$HOME/.local/bin/tk-hello"',
        ]),
        "install tk-hello",
      );
      const hello = ok(await wt(["exec", "--", "tk-hello", "a b"]), "exec tk-hello");
      assertEquals(hello.stdout, "hello:1:a b:/mnt/tachikoma/code\n");
      const inTmp = ok(await wt(["exec", "-w", "/tmp", "--", "tk-hello", "x"]), "exec -w");
      assertEquals(inTmp.stdout, "hello:1:x:/tmp\n", "--workdir is kept after ~/.profile's cd");
      const raw = await wt(["exec", "--raw", "--", "tk-hello"]);
      assertEquals(raw.code, 127, `--raw: no ~/.local/bin on PATH (${raw.stderr})`);

      // --- [env] -----------------------------------------------------------------------------------
      const envLine =
        'printf "%s|%s|%s|%s" "$TK_DISK" "$TK_FWD" "${TK_FWD_UNSET-unset}" "$TK_ONLY"';
      assertEquals(
        ok(await wt(["exec", "--", "sh", "-c", envLine]), "exec env").stdout,
        `${diskValue}|${fwdSecret}|unset|${onlyValue}`,
      );
      // The guest's disk (everything but /proc, /sys, /dev, /run and the host's shares): the
      // disk value is in ~/.profile, the forwarded and session-only ones nowhere. The patterns
      // travel in the environment, so no file or command line of the search holds them.
      // As root through the Incus API (sudo would log the variables it keeps, ENV=…, itself).
      const search = async (vars: Record<string, string>) =>
        dec.decode(
          (await backend.exec(name, {
            argv: [
              "sh",
              "-c",
              "grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev " +
              "--exclude-dir=run --exclude-dir=mnt " +
              Object.keys(vars).map((v) => `-e "$${v}"`).join(" ") + " / ; echo searched",
            ],
            user: "root",
            env: vars,
          })).stdout,
        );
      const control = await search({ TK_DISK: diskValue });
      assertStringIncludes(control, "/home/admin/.profile\n");
      const secretHits = await search({ TK_FWD: fwdSecret, TK_ONLY: onlyValue });
      assertEquals(
        secretHits,
        "searched\n",
        "forwarded and session-only values on the guest's disk",
      );

      // --- a persistent session survives its client ---------------------------------------------
      ok(
        await tmux(
          "new-session",
          "-d",
          "-s",
          "c1",
          "-x",
          "160",
          "-y",
          "40",
          "-c",
          worktree,
          ...cliArgv,
          "enter",
        ),
        "host tmux c1",
      );
      await until("the guest session's prompt", async () => {
        const text = await screen("c1");
        return /[$#] *$/m.test(text) ? text : null;
      });
      ok(
        await tmux("send-keys", "-t", "c1", 'echo "env:$TK_ONLY:$TK_FWD:$TK_DISK"', "Enter"),
        "keys",
      );
      await until("[env] in the session", async () => {
        const text = await screen("c1");
        return text.includes(`env:${onlyValue}:${fwdSecret}:${diskValue}`) ? text : null;
      });
      ok(
        await tmux(
          "send-keys",
          "-t",
          "c1",
          "i=0; while :; do i=$((i+1)); echo tick-$i; sleep 1; done",
          "Enter",
        ),
        "send-keys",
      );
      const before = await until("ticks in c1", async () => {
        const n = lastTick(await screen("c1"));
        return n >= 2 ? n : null;
      });
      // Kill the client: the host terminal and `tachikoma enter` in it go away.
      ok(await tmux("kill-session", "-t", "c1"), "kill c1");
      const listed = await until("the session listed with no client", async () => {
        const doc: SessionsDoc = JSON.parse(
          ok(await wt(["sessions", "--json"]), "sessions").stdout,
        );
        const main = doc.sessions.find((s) => s.name === "main");
        return main && main.attached === 0 ? doc : null;
      });
      assertEquals(listed.name, name);
      assertEquals(listed.state, "running");
      assertEquals(listed.tmux, true);
      const main = listed.sessions.find((s) => s.name === "main")!;
      assert(Date.parse(main.last_activity) >= Date.parse(main.started));
      const human = ok(await wt(["sessions"]), "sessions (human)").stdout;
      assertStringIncludes(human, "SESSION");
      assertStringIncludes(human, "main");
      // Re-attach: the command kept counting while nobody was attached.
      ok(
        await tmux(
          "new-session",
          "-d",
          "-s",
          "c2",
          "-x",
          "160",
          "-y",
          "40",
          "-c",
          worktree,
          ...cliArgv,
          "enter",
          name,
          "--session",
          "main",
        ),
        "host tmux c2",
      );
      const after = await until("ticks after re-attaching", async () => {
        const n = lastTick(await screen("c2"));
        return n > before + 2 ? n : null;
      });
      assert(after > before, `still running: tick-${before} then tick-${after}`);
      await tmux("kill-session", "-t", "c2");

      // Bad names and kill.
      const hostile = await wt(["enter", "--session", "$(touch /tmp/pwned)"]);
      assertEquals(hostile.code, 2);
      assertEquals(hostile.stderr.trim().split("\n").length, 1, hostile.stderr);
      const unknown = await wt(["sessions", "kill", "nope"]);
      assertEquals(unknown.code, 3, unknown.stderr);
      assertStringIncludes(unknown.stderr, 'no session "nope"');
      const killed = JSON.parse(
        ok(await wt(["sessions", "kill", "main", "--json"]), "kill").stdout,
      );
      assertEquals(killed, { name, session: "main", killed: true });
      const none: SessionsDoc = JSON.parse(ok(await wt(["sessions", "--json"]), "sessions").stdout);
      assertEquals(none.sessions, []);
      const pwned = await wt([
        "exec",
        "--",
        "sh",
        "-c",
        "test -e /tmp/pwned && echo yes || echo no",
      ]);
      assertEquals(pwned.stdout, "no\n");

      // --- auto-start -----------------------------------------------------------------------------
      ok(await wt(["halt"]), "halt");
      const refused = await wt(["exec", "--no-start", "--", "true"]);
      assertEquals(refused.code, 1);
      assertStringIncludes(refused.stderr, `sandbox ${name} is stopped and --no-start was given`);
      assertEquals((await backend.get(name)).state, "stopped");
      const started = await wt(["exec", "--", "tk-hello", "again"]);
      assertEquals(started.code, 0, started.stderr);
      assertEquals(started.stdout, "hello:1:again:/mnt/tachikoma/code\n");
      assertStringIncludes(started.stderr, `sandbox ${name} is stopped: starting it`);
      assertEquals((await backend.get(name)).state, "running");

      ok(await wt(["suspend"]), "suspend");
      assertEquals((await backend.get(name)).state, "suspended");
      const noStart = await wt(["enter", "--no-start", "--no-persist"], "exit 3\n");
      assertEquals(noStart.code, 1);
      assertStringIncludes(noStart.stderr, "is suspended and --no-start was given");
      const resumed = await wt(["enter", "--no-persist"], "echo in-shell-$((6*7))\nexit 3\n");
      assertEquals(resumed.code, 3, resumed.stderr);
      assertStringIncludes(resumed.stdout, "in-shell-42");
      assertStringIncludes(resumed.stderr, `sandbox ${name} is suspended: starting it`);
      assertEquals((await backend.get(name)).state, "running");
    } finally {
      await tmux("kill-server").catch(() => {});
    }
  },
});
