/**
 * The Incus backend against the real lab (tests/lab/up.sh): every backend method on real
 * system containers. Skipped, with the reason, when the lab is not up.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { FakeClock } from "../testing/fake_clock.ts";
import { systemClock } from "../../src/lib/clock.ts";
import {
  ConflictError,
  NotFoundError,
  TimeoutError,
  UnreachableError,
  UsageError,
} from "../../src/lib/errors.ts";
import {
  IncusBackend,
  type IncusBackendOptions,
  IncusClient,
} from "../../src/backends/incus/mod.ts";
import type { IncusInstance } from "../../src/backends/incus/instances.ts";
import type { Share, ShellSession } from "../../src/backends/backend.ts";
import { labEnv, labIgnored, labName } from "./lab.ts";

const lab = labEnv();
const ignore = labIgnored();
const enc = new TextEncoder();
const dec = new TextDecoder();
const opts = { ignore, sanitizeOps: false, sanitizeResources: false };

async function open(options: IncusBackendOptions = {}): Promise<IncusBackend> {
  const socket = lab!.socket;
  const client = await IncusClient.open({ socket });
  return new IncusBackend(client, {
    endpoint: { socket },
    cpus: 1,
    memoryMb: 512,
    sshUser: "admin",
    sshPort: 22,
  }, options);
}

/** Every container a test made, deleted at the end whatever happens. */
const made = new Set<string>();
/** Every container any test of this file made (the last test checks none is left). */
const everMade = new Set<string>();

/** Records a container a test is about to make. */
function track(name: string): void {
  made.add(name);
  everMade.add(name);
}

async function cleanup(backend: IncusBackend, ...names: string[]): Promise<void> {
  for (const n of names) {
    await backend.delete(n);
    made.delete(n);
  }
}

async function running(backend: IncusBackend, prefix: string, shares: Share[] = []) {
  const name = labName(prefix);
  track(name);
  await backend.create(name, { image: lab!.image });
  await backend.start(name, { shares });
  const ip = await backend.waitForAddress(name, {
    clock: systemClock,
    deadline: systemClock.now() + 60_000,
  });
  return { name, ip };
}

async function sh(backend: IncusBackend, name: string, script: string, user?: "root" | "user") {
  const r = await backend.exec(name, { argv: ["/bin/sh", "-c", script], user });
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

async function rawInstance(backend: IncusBackend, name: string): Promise<IncusInstance> {
  return await backend.client.get<IncusInstance>(`/1.0/instances/${name}`);
}

/** Reads PTY output until `pattern` shows up (or the deadline passes). */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  seen: { text: string },
  pattern: RegExp,
  ms = 10_000,
): Promise<RegExpMatchArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = seen.text.match(pattern);
    if (m) return m;
    if (Date.now() > deadline) {
      throw new Error(`no ${pattern} in PTY output: ${JSON.stringify(seen.text)}`);
    }
    const chunk = await Promise.race([
      reader.read(),
      new Promise<null>((r) => setTimeout(() => r(null), 200)),
    ]);
    if (chunk && !chunk.done) seen.text += dec.decode(chunk.value);
    if (chunk?.done) throw new Error(`PTY closed before ${pattern}: ${JSON.stringify(seen.text)}`);
  }
}

Deno.test({
  name: "incus: create, get, list, start, suspend, stop and delete (idempotent)",
  ...opts,
  async fn() {
    const backend = await open();
    const name = labName("life");
    track(name);
    try {
      await assertRejects(() => backend.get(name), NotFoundError, `sandbox "${name}" not found`);
      await backend.create(name, { image: lab!.image });
      const created = await backend.get(name);
      assertEquals(created.state, "stopped");
      assertEquals(created.addresses, []);
      assertEquals(created.image, lab!.image);
      assert(created.createdAt && !Number.isNaN(Date.parse(created.createdAt)));
      const raw = await rawInstance(backend, name);
      assertEquals(raw.config["limits.cpu"], "1");
      assertEquals(raw.config["limits.memory"], "512MiB");

      await assertRejects(
        () => backend.create(name, { image: lab!.image }),
        ConflictError,
        "already exists",
      );
      await backend.stop(name); // stopping a stopped sandbox is a no-op

      await backend.start(name, { shares: [] });
      await backend.start(name, { shares: [] }); // no-op when running
      const ip = await backend.waitForAddress(name, {
        clock: systemClock,
        deadline: systemClock.now() + 60_000,
      });
      const prefix = lab!.gateway.split(".").slice(0, 3).join(".") + ".";
      assert(ip.startsWith(prefix), `${ip} is on the lab bridge ${prefix}0/24`);
      const info = await backend.get(name);
      assertEquals(info.state, "running");
      assertEquals(info.addresses[0], ip);
      assertEquals(await backend.sshEndpoint(name), { host: ip, port: 22 });

      const listed = (await backend.list()).find((s) => s.name === name);
      assertEquals(listed?.state, "running");
      assertEquals(listed?.addresses, [ip]);
      assert((await backend.listNames()).includes(name), "listNames names it");

      await backend.suspend(name);
      assertEquals((await backend.get(name)).state, "suspended");
      await backend.suspend(name); // idempotent
      await backend.start(name, { shares: [] }); // thaws
      assertEquals((await backend.get(name)).state, "running");
      assertEquals((await sh(backend, name, "echo alive")).out, "alive\n");

      const t0 = performance.now();
      await backend.stop(name, { timeoutMs: 20_000 });
      const graceful = performance.now() - t0;
      assertEquals((await backend.get(name)).state, "stopped");
      await assertRejects(() => backend.suspend(name), ConflictError, "only a running sandbox");
      await assertRejects(() => backend.sshEndpoint(name), UnreachableError);
      await assertRejects(
        () => backend.waitForAddress(name, { clock: systemClock, deadline: Date.now() + 5_000 }),
        ConflictError,
        "is stopped",
      );
      await assertRejects(
        () => backend.exec(name, { argv: ["true"] }),
        ConflictError,
        "not running",
      );

      await backend.start(name, { shares: [] });
      await backend.stop(name, { force: true });
      assertEquals((await backend.get(name)).state, "stopped");
      console.error(`graceful stop took ${Math.round(graceful)} ms`);

      await backend.start(name, { shares: [] });
      await backend.delete(name); // running: force-stopped first
      await assertRejects(() => backend.get(name), NotFoundError);
      await backend.delete(name); // already gone: success
      assert(!(await backend.list()).some((s) => s.name === name));
      await assertRejects(() => backend.start(name, { shares: [] }), NotFoundError);
      await assertRejects(() => backend.stop(name), NotFoundError);
    } finally {
      await cleanup(backend, name);
      await backend.close();
    }
  },
});

Deno.test({
  name: "incus: create from a fingerprint; a missing image says what to do",
  ...opts,
  async fn() {
    const backend = await open();
    const name = labName("fp");
    track(name);
    try {
      const alias = await backend.client.get<{ target: string }>(
        `/1.0/images/aliases/${lab!.image}`,
      );
      await backend.create(name, { image: alias.target.slice(0, 12) });
      assertEquals((await backend.get(name)).state, "stopped");
      const err = await assertRejects(
        () => backend.create(labName("noimg"), { image: "no-such-image-tk" }),
        NotFoundError,
        `image "no-such-image-tk" not found`,
      );
      assertStringIncludes(err.hint ?? "", "incus image");
    } finally {
      await cleanup(backend, name);
      await backend.close();
    }
  },
});

Deno.test({
  name: "incus: an unreachable socket says so",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const client = await IncusClient.open({ socket: "/nonexistent/incus.socket" });
    const backend = new IncusBackend(client, {
      endpoint: { socket: "/nonexistent/incus.socket" },
      cpus: 1,
      memoryMb: 512,
      sshUser: "admin",
      sshPort: 22,
    });
    const err = await assertRejects(() => backend.list(), UnreachableError);
    assertEquals(
      err.message,
      "cannot reach Incus at /nonexistent/incus.socket: is incusd running? (tachikoma doctor)",
    );
    await backend.close();
  },
});

Deno.test({
  name: "incus: exec, shell and files on a running container",
  ...opts,
  async fn(t) {
    const backend = await open();
    const { name } = await running(backend, "exec");
    try {
      await t.step("exit codes and separate stdout/stderr", async () => {
        const r = await sh(backend, name, "echo out; echo err >&2; exit 7");
        assertEquals(r, { code: 7, out: "out\n", err: "err\n" });
        assertEquals((await backend.exec(name, { argv: ["true"] })).code, 0);
        assertEquals((await backend.exec(name, { argv: ["false"] })).code, 1);
      });

      await t.step("argv is passed exactly, never through a shell", async () => {
        const hostile = "a b; echo $(id) `whoami` 'q' \"dq\" \n line2 ü 🎉";
        const r = await backend.exec(name, { argv: ["printf", "%s", hostile] });
        assertEquals(dec.decode(r.stdout), hostile);
      });

      await t.step("a missing command exits 127", async () => {
        const r = await backend.exec(name, { argv: ["/no/such/tool", "x"] });
        assertEquals(r.code, 127);
        assertStringIncludes(dec.decode(r.stderr), "not found");
      });

      await t.step("stdin, binary and byte-exact", async () => {
        const bytes = new Uint8Array(256 * 64).map((_, i) => i % 256);
        const r = await backend.exec(name, { argv: ["cat"], stdin: bytes });
        assertEquals(r.code, 0);
        assertEquals(r.stdout, bytes);
        const text = await backend.exec(name, { argv: ["wc", "-l"], stdin: "1\n2\n3\n" });
        assertEquals(dec.decode(text.stdout).trim(), "3");
        // no stdin: EOF right away (cat does not hang)
        assertEquals((await backend.exec(name, { argv: ["cat"] })).stdout.length, 0);
      });

      await t.step("large output arrives whole", async () => {
        const r = await backend.exec(name, {
          argv: ["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; head -c 1000 /dev/zero >&2"],
        });
        assertEquals(r.stdout.length, 3_000_000);
        assertEquals(r.stderr.length, 1000);
      });

      await t.step("env values reach the guest byte-exact", async () => {
        const env = {
          TK_QUOTES: `it's "quoted" \\ back`,
          TK_SUBST: "$(touch /tmp/pwned) `id` ${HOME}",
          TK_NEWLINES: "line1\nline2\n\nend",
          TK_SPACES: "  lead and trail  ",
          TK_UNICODE: "ü日本語🎉",
          TK_EMPTY: "",
        };
        for (const [k, v] of Object.entries(env)) {
          const r = await backend.exec(name, { argv: ["printenv", k], env });
          assertEquals(dec.decode(r.stdout), v + "\n", k);
        }
        const pwned = await backend.exec(name, { argv: ["test", "-e", "/tmp/pwned"] });
        assertEquals(pwned.code, 1);
        await assertRejects(
          () => backend.exec(name, { argv: ["true"], env: { "BAD NAME": "x" } }),
          UsageError,
        );
      });

      await t.step("user root vs the sandbox user", async () => {
        const u = await sh(backend, name, 'echo "$(id -u) $(id -g) $HOME $USER $(pwd)"');
        assertEquals(u.out, "1000 1000 /home/admin admin /home/admin\n");
        const r = await sh(backend, name, 'echo "$(id -u) $(id -g) $HOME $(pwd)"', "root");
        assertEquals(r.out, "0 0 /root /root\n");
      });

      await t.step("cwd, including hostile and missing directories", async () => {
        const dir = "/tmp/dir with 'quote' $(x)";
        assertEquals((await backend.exec(name, { argv: ["mkdir", "-p", dir] })).code, 0);
        const r = await backend.exec(name, { argv: ["pwd"], cwd: dir });
        assertEquals(dec.decode(r.stdout), dir + "\n");
        const missing = await backend.exec(name, { argv: ["pwd"], cwd: "/no/such/dir" });
        assertNotEquals(missing.code, 0);
        assertStringIncludes(dec.decode(missing.stderr), "/no/such/dir");
      });

      await t.step("output streams before the end; stdin streams as it is written", async () => {
        // The command cannot finish before the test has seen its first line: only then is the
        // line it waits for written to its (still open) stdin.
        const seen: string[] = [];
        let push!: (text: string) => void;
        let end!: () => void;
        const stdin = new ReadableStream<Uint8Array>({
          start(c) {
            push = (text) => c.enqueue(new TextEncoder().encode(text));
            end = () => c.close();
          },
        });
        const r = await backend.exec(name, {
          argv: ["sh", "-c", 'echo first; read go; echo "second:$go" >&2; cat'],
          stdin,
          onStdout: (c) => {
            const text = dec.decode(c);
            seen.push(text);
            if (text.startsWith("first")) {
              push("go\nrest\n");
              end();
            }
          },
          onStderr: (c) => seen.push("E:" + dec.decode(c)),
        });
        assertEquals(r.code, 0);
        assertEquals(seen.join("").split("\n").slice(0, 1), ["first"]);
        assertStringIncludes(seen.join(""), "E:second:go\n");
        assertEquals(dec.decode(r.stdout), "first\nrest\n");
      });

      await t.step(
        "a command that stops reading ends the exec; its open stdin is let go",
        async () => {
          let cancelled!: () => void;
          const gone = new Promise<void>((r) => (cancelled = r));
          const stdin = new ReadableStream<Uint8Array>({
            start(c) {
              c.enqueue(new TextEncoder().encode("abcdefgh"));
            },
            cancel() {
              cancelled();
            },
          });
          const r = await backend.exec(name, { argv: ["head", "-c", "3"], stdin });
          assertEquals([r.code, dec.decode(r.stdout)], [0, "abc"]);
          await gone;
        },
      );

      await t.step("timeout kills the command", async () => {
        const t0 = performance.now();
        await assertRejects(
          () => backend.exec(name, { argv: ["sleep", "60"], timeoutMs: 500 }),
          TimeoutError,
          "timed out after 500 ms",
        );
        assert(performance.now() - t0 < 5_000);
        const left = await sh(backend, name, "pgrep -x sleep || true", "root");
        assertEquals(left.out, "");
      });

      await t.step("abort stops the running command", async () => {
        const controller = new AbortController();
        const t0 = performance.now();
        await assertRejects(
          () =>
            backend.exec(name, {
              argv: ["sh", "-c", "echo started; exec sleep 60"],
              signal: controller.signal,
              // Aborted once the command is known to run (its first output).
              onStdout: () => controller.abort(new Error("stop it")),
            }),
          Error,
          "stop it",
        );
        assert(performance.now() - t0 < 30_000, "the 60 s command was not killed");
        const left = await sh(backend, name, "pgrep -x sleep || true", "root");
        assertEquals(left.out, "");
      });

      await t.step("shell: PTY, resize over the control channel, exit status", async () => {
        const session: ShellSession = await backend.shell(name, {
          size: { cols: 80, rows: 24 },
        });
        const reader = session.output.getReader();
        const seen = { text: "" };
        try {
          await session.write(enc.encode('stty size; tty; echo "u=$(id -u)"\n'));
          await readUntil(reader, seen, /[\r\n]24 80\r?\n/);
          await readUntil(reader, seen, /\/dev\/pts\/\d+/);
          await readUntil(reader, seen, /u=1000/);
          await session.resize({ cols: 100, rows: 30 });
          seen.text = "";
          await session.write(enc.encode("stty size\n"));
          await readUntil(reader, seen, /[\r\n]30 100\r?\n/);
          await session.write(enc.encode("exit 3\n"));
          assertEquals(await session.exit, 3);
        } finally {
          reader.releaseLock();
          await session.close();
        }
        const root = await backend.shell(name, {
          argv: ["sh", "-c", "tty; id -u; exit 5"],
          user: "root",
          cwd: "/etc",
          size: { cols: 40, rows: 10 },
        });
        const out: string[] = [];
        for await (const chunk of root.output) out.push(dec.decode(chunk));
        assertEquals(await root.exit, 5);
        assertMatch(out.join(""), /\/dev\/pts\/\d+\r?\n0\r?\n/);
        await root.close();
      });

      await t.step("shell: close hangs up a running session", async () => {
        const session = await backend.shell(name, { size: { cols: 80, rows: 24 } });
        await session.close();
        assert(typeof (await session.exit.catch(() => -1)) === "number");
      });

      await t.step("push and pull: bytes, mode, owner, parents", async () => {
        const bytes = new Uint8Array(70_000).map((_, i) => (i * 7) % 256);
        const path = "/home/admin/deep/er/secret.bin";
        await backend.pushFile(name, { path, data: bytes, mode: 0o600 });
        assertEquals(await backend.pullFile(name, path), bytes);
        const st = await sh(backend, name, `stat -c '%a %u %g' ${path} /home/admin/deep/er`);
        assertEquals(st.out, "600 1000 1000\n755 1000 1000\n");
        // overwrite as root with another mode: owner and mode change too
        await backend.pushFile(name, { path, data: enc.encode("v2"), mode: 0o640, owner: "root" });
        assertEquals(dec.decode(await backend.pullFile(name, path)), "v2");
        assertEquals(
          (await sh(backend, name, `stat -c '%a %u %g' ${path}`, "root")).out,
          "640 0 0\n",
        );
        // same owner and mode: plain overwrite
        await backend.pushFile(name, { path, data: enc.encode("v3"), mode: 0o640, owner: "root" });
        assertEquals(dec.decode(await backend.pullFile(name, path)), "v3");
        await backend.pushFile(name, { path: "/etc/tk-default", data: enc.encode("d") });
        assertEquals(
          (await sh(backend, name, "stat -c '%a %u' /etc/tk-default")).out,
          "644 1000\n",
        );
        await backend.pushFile(name, { path: "/tmp/empty", data: new Uint8Array() });
        assertEquals((await backend.pullFile(name, "/tmp/empty")).length, 0);
        await sh(backend, name, "ln -sf /etc/hostname /tmp/link", "root");
        assertEquals(dec.decode(await backend.pullFile(name, "/tmp/link")).trim(), name);
        await assertRejects(() => backend.pullFile(name, "/no/such/file"), NotFoundError);
        await assertRejects(() => backend.pullFile(name, "/etc"), ConflictError, "is a directory");
        await assertRejects(
          () => backend.pushFile(name, { path: "relative", data: bytes }),
          UsageError,
        );
        await assertRejects(
          () => backend.pullFile(labName("gone"), "/etc/hostname"),
          NotFoundError,
        );
      });

      await t.step("mountShares is a no-op; no egress policy means unrestricted", async () => {
        await backend.mountShares(name, []);
        // Enforcement itself: egress_incus_test.ts.
        assertEquals(await backend.getEgress(name), { mode: "unrestricted", allow: [] });
      });
    } finally {
      await cleanup(backend, name);
      await backend.close();
    }
  },
});

Deno.test({
  name: "incus: checkpoints, restore and clones with their own MAC",
  ...opts,
  async fn() {
    const backend = await open();
    const { name } = await running(backend, "snap");
    const fromSnap = labName("clone");
    const fromLive = labName("clone");
    track(fromSnap);
    track(fromLive);
    try {
      await sh(backend, name, "echo v1 > /root/marker", "root");
      const c1 = await backend.createCheckpoint(name, "c1");
      assertEquals(c1.name, "c1");
      assert(!Number.isNaN(Date.parse(c1.createdAt)));
      await assertRejects(
        () => backend.createCheckpoint(name, "c1"),
        ConflictError,
        "already exists",
      );
      await assertRejects(() => backend.createCheckpoint(name, "bad/name"), UsageError);
      await sh(backend, name, "echo v2 > /root/marker", "root");
      await backend.createCheckpoint(name, "c2");
      assertEquals((await backend.listCheckpoints(name)).map((c) => c.name), ["c1", "c2"]);

      await backend.restoreCheckpoint(name, "c1");
      assertEquals((await backend.get(name)).state, "running");
      assertEquals((await sh(backend, name, "cat /root/marker", "root")).out, "v1\n");
      await assertRejects(() => backend.restoreCheckpoint(name, "nope"), NotFoundError, '"nope"');
      await assertRejects(
        () => backend.restoreCheckpoint(labName("gone"), "c1"),
        NotFoundError,
        "sandbox",
      );

      await backend.clone(fromSnap, { sandbox: name, checkpoint: "c2" });
      await backend.clone(fromLive, { sandbox: name });
      assertEquals((await backend.get(fromSnap)).state, "stopped");
      await backend.start(fromSnap, { shares: [] });
      await backend.waitForAddress(fromSnap, { clock: systemClock, deadline: Date.now() + 60_000 });
      assertEquals((await sh(backend, fromSnap, "cat /root/marker", "root")).out, "v2\n");
      assertEquals((await sh(backend, fromSnap, "hostname")).out, `${fromSnap}\n`);

      const macs = await Promise.all(
        [name, fromSnap, fromLive].map(async (n) => {
          const inst = await rawInstance(backend, n);
          return inst.config["volatile.eth0.hwaddr"] ?? "";
        }),
      );
      assertEquals(new Set(macs).size, 3, `three different MACs: ${macs.join(" ")}`);
      const src = await rawInstance(backend, name);
      const clone = await rawInstance(backend, fromSnap);
      assertNotEquals(clone.config["volatile.uuid"], src.config["volatile.uuid"]);
      assertEquals((await backend.listCheckpoints(fromSnap)).length, 0, "snapshots not copied");
      await assertRejects(
        () => backend.clone(labName("x"), { sandbox: name, checkpoint: "nope" }),
        NotFoundError,
      );
      await assertRejects(() => backend.clone(fromLive, { sandbox: name }), ConflictError);

      await backend.deleteCheckpoint(name, "c1");
      assertEquals((await backend.listCheckpoints(name)).map((c) => c.name), ["c2"]);
      await assertRejects(() => backend.deleteCheckpoint(name, "c1"), NotFoundError, '"c1"');
    } finally {
      await cleanup(backend, fromSnap, fromLive, name);
      await backend.close();
    }
  },
});

Deno.test({
  name:
    "incus: shares are never shifted: the guest writes as unprivileged host ids, read-only holds",
  ...opts,
  async fn(t) {
    const host = await Deno.makeTempDir({ prefix: "tk-share-" });
    const rw = `${host}/code`;
    const ro = `${host}/rules`;
    await Deno.mkdir(rw);
    await Deno.mkdir(ro);
    await Deno.writeTextFile(`${ro}/rule.md`, "be nice\n");
    await Deno.writeTextFile(`${rw}/README`, "hello\n");
    await Deno.chmod(host, 0o755);
    const shares: Share[] = [
      { name: "code", hostPath: rw, guestPath: "/mnt/tachikoma/code", readOnly: false },
      {
        name: "claude-rules",
        hostPath: ro,
        guestPath: "/mnt/tachikoma/claude-rules",
        readOnly: true,
      },
    ];
    const names: string[] = [];
    const backends: IncusBackend[] = [];
    // As the host user `uid` (setpriv), run a shell command on the host.
    const asHostUser = (uid: number, script: string) =>
      new Deno.Command("setpriv", {
        args: [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "sh", "-c", script],
        stdout: "piped",
        stderr: "piped",
      }).output();
    try {
      await t.step(
        "a non-root host user: the guest user writes; the host user edits it",
        async () => {
          for (const p of [rw, ro, `${rw}/README`, `${ro}/rule.md`]) {
            await Deno.chown(p, 1234, 1234);
          }
          const backend = await open({ hostIds: { uid: 1234, gid: 1234 } });
          backends.push(backend);
          const { name } = await running(backend, "share", shares);
          names.push(name);
          const devices = (await rawInstance(backend, name)).devices;
          assertEquals(devices["tk-share-code"].shift, undefined);
          assertEquals(devices["tk-share-claude-rules"].readonly, "true");
          assertEquals((await rawInstance(backend, name)).config["raw.idmap"], undefined);

          const w = await sh(
            backend,
            name,
            "cd /mnt/tachikoma/code && echo from-guest > new.txt && mkdir sub && touch sub/f && " +
              "echo more >> README && cat README",
          );
          assertEquals(w, { code: 0, out: "hello\nmore\n", err: "" });
          const st = await Deno.stat(`${rw}/new.txt`);
          assertEquals([st.uid, st.gid], [1001000, 1001000], "the guest user's own host ids");
          assertEquals((await Deno.stat(`${rw}/sub/f`)).uid, 1001000);
          // The host user reads, edits and deletes what the guest made (default ACLs).
          const edit = await asHostUser(
            1234,
            `cd '${rw}' && echo host >> new.txt && rm sub/f && rmdir sub && cat new.txt`,
          );
          assertEquals(new TextDecoder().decode(edit.stdout), "from-guest\nhost\n");
          assertEquals(edit.code, 0, new TextDecoder().decode(edit.stderr));

          const r = await sh(
            backend,
            name,
            "cat /mnt/tachikoma/claude-rules/rule.md; touch /mnt/tachikoma/claude-rules/x",
          );
          assertNotEquals(r.code, 0);
          assertEquals(r.out, "be nice\n");
          assertStringIncludes(r.err, "Read-only file system");
          const asRoot = await sh(
            backend,
            name,
            "mount -o remount,rw /mnt/tachikoma/claude-rules || touch /mnt/tachikoma/claude-rules/x",
            "root",
          );
          assertNotEquals(asRoot.code, 0);
          await assertRejects(() => Deno.stat(`${ro}/x`), Deno.errors.NotFound);

          // restart with one share less: the stale device goes away, the other stays
          await backend.stop(name, { force: true });
          await backend.start(name, { shares: [shares[0]] });
          const after = (await rawInstance(backend, name)).devices;
          assert(!("tk-share-claude-rules" in after));
          assertEquals(after["tk-share-code"].source, rw);
          await backend.waitForAddress(name, { clock: systemClock, deadline: Date.now() + 60_000 });
          assertEquals(
            (await sh(backend, name, "cat /mnt/tachikoma/code/new.txt")).out,
            "from-guest\nhost\n",
          );
          assertEquals(
            (await sh(backend, name, "test -e /mnt/tachikoma/claude-rules/rule.md")).code,
            1,
          );
        },
      );

      await t.step("host root: the guest writes root's tree, but never as host root", async () => {
        for (const p of [rw, ro, `${rw}/README`, `${ro}/rule.md`]) {
          await Deno.chown(p, 0, 0);
        }
        const backend = await open({ hostIds: { uid: 0, gid: 0 } });
        backends.push(backend);
        const name = names[0];
        await backend.stop(name, { force: true });
        await backend.start(name, { shares });
        await backend.waitForAddress(name, { clock: systemClock, deadline: Date.now() + 60_000 });
        const user = await sh(backend, name, "echo u > /mnt/tachikoma/code/by-user");
        assertEquals(user.code, 0, user.err);
        const root = await sh(
          backend,
          name,
          "cp /usr/bin/id /mnt/tachikoma/code/suid && chmod 6755 /mnt/tachikoma/code/suid && " +
            "echo r > /mnt/tachikoma/code/by-root; mknod /mnt/tachikoma/code/null c 1 3",
          "root",
        );
        assertStringIncludes(root.err, "mknod");
        assertEquals((await Deno.stat(`${rw}/by-user`)).uid, 1001000);
        assertEquals((await Deno.stat(`${rw}/by-root`)).uid, 1000000);
        const suid = await Deno.stat(`${rw}/suid`);
        assertEquals([suid.uid, suid.mode! & 0o6000], [1000000, 0o6000], "setuid kept, not root's");
        // Run it as an unprivileged host user: its effective uid is the unprivileged owner.
        const ran = await asHostUser(65534, `'${rw}/suid'`);
        const idLine = new TextDecoder().decode(ran.stdout);
        assertStringIncludes(idLine, "euid=1000000");
        assert(!/euid=0\b/.test(idLine), idLine);
        await assertRejects(() => Deno.stat(`${rw}/null`), Deno.errors.NotFound);
      });
    } finally {
      if (backends[0]) await cleanup(backends[0], ...names);
      for (const b of backends) await b.close();
      await Deno.remove(host, { recursive: true });
    }
  },
});

Deno.test({
  name: "incus: waitForAddress gives up at the deadline",
  ...opts,
  async fn() {
    const backend = await open();
    const name = labName("noip");
    track(name);
    try {
      await backend.create(name, { image: lab!.image });
      // No network device: the container runs but never gets an address.
      const inst = await rawInstance(backend, name);
      await backend.client.mutate("PATCH", `/1.0/instances/${name}`, {
        body: { devices: { ...inst.devices, eth0: { type: "none" } } },
      });
      await backend.start(name, { shares: [] });
      // A fake clock (each sleep moves it): the real engine is polled, time is the test's.
      const clock = new FakeClock(0, { autoAdvance: true });
      await assertRejects(
        () => backend.waitForAddress(name, { clock, deadline: 30_000 }),
        TimeoutError,
        "no IPv4 address",
      );
      assertEquals(clock.now(), 30_000, "gave up exactly at the deadline, never past it");
      assert(clock.sleeps.length > 10, `polled ${clock.sleeps.length} times`);
      assert(clock.sleeps.every((ms) => ms <= 1_000), `a gap over 1 s: ${clock.sleeps}`);
    } finally {
      await cleanup(backend, name);
      await backend.close();
    }
  },
});

Deno.test({
  name: "incus: nothing left behind",
  ...opts,
  async fn() {
    const backend = await open();
    try {
      await cleanup(backend, ...made); // what a failed test could not delete
      assertEquals(made.size, 0);
      for (const name of everMade) {
        await assertRejects(() => backend.get(name), NotFoundError, undefined, `${name} is left`);
      }
    } finally {
      await backend.close();
    }
  },
});
