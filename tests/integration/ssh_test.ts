/**
 * SSH against real sshd in a lab container (Incus backend): the ssh2 client (exec, streams,
 * stdin, exit codes, signals, timeouts, PTY with resize), host key pinning (mismatch refused,
 * recreated sandbox accepted), the system `ssh` argv, and `tachikoma ssh install` driving the
 * real OpenSSH client through the generated config. Skipped when the lab is not up.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { RecordingReporter } from "../testing/recording_reporter.ts";
import { RuntimeError, TimeoutError, UnreachableError } from "../../src/lib/errors.ts";
import { createProvisioner } from "../../src/provision/mod.ts";
import {
  connectSsh,
  HostKeyMismatchError,
  knownHostsFor,
  parsePublicKeyLine,
  type SshConnection,
  type SshTarget,
  systemSshArgv,
} from "../../src/ssh/mod.ts";
import { labIgnored, labName } from "./lab.ts";
import type { Config } from "../../src/config/schema.ts";
import { host, labConfig, labRecord, launch, openLabIncus, until } from "./provision_lab.ts";

const ignore = labIgnored();
const dec = new TextDecoder();
const enc = new TextEncoder();
const HOSTILE = 'it\'s "q" `touch /tmp/pwned` $(touch /tmp/pwned)\nline2 ünï 🙂 \\ end';

async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, text: string) {
  let seen = "";
  while (!seen.includes(text)) {
    const { value, done } = await reader.read();
    if (done) {
      throw new Error(`stream ended before ${JSON.stringify(text)}; got ${JSON.stringify(seen)}`);
    }
    seen += dec.decode(value);
  }
  return seen;
}

Deno.test({
  name: "ssh to a real sandbox: ssh2 client, pinning, system ssh, ssh install",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    // A space and a `%` in every path: ssh config quoting and %-token escaping are exercised.
    const T = await Deno.makeTempDir({ prefix: "tk-ssh-% x-" });
    const home = `${T}/home`;
    const stateDir = `${T}/state`;
    await Deno.mkdir(home, { recursive: true });
    const backend = await openLabIncus();
    const name = labName("ssh");
    let conn = null as SshConnection | null;
    try {
      const ip = await launch(backend, name, []);
      const record = labRecord(name, { ip, created_at: "2020-01-01T00:00:00.000Z" });
      // Only step 1: key into authorized_keys, host keys pinned through the backend, sshd told
      // to accept the [env] session names.
      const sessionValue = `tk-session-${crypto.randomUUID()}`;
      await createProvisioner({ home, env: () => undefined }).run({
        backend,
        sandbox: name,
        record,
        config: labConfig({
          env: { TK_SESSION_ONLY: { value: sessionValue, session_only: true } },
        } as Partial<Config>),
        stateDir,
        reporter: new RecordingReporter(),
      }, { after: null, only: ["ssh_key"], onStepDone: () => Promise.resolve() });
      const privateKey = await Deno.readTextFile(`${home}/.ssh/tachikoma`);
      const knownHosts = knownHostsFor(stateDir);
      const target: SshTarget = {
        host: ip,
        port: 22,
        user: "admin",
        alias: name,
        createdAt: record.created_at,
      };
      // The first connection may meet a lab busy with other suites: retry briefly.
      await until("the first SSH connection", async () => {
        conn = await connectSsh(target, { privateKey, knownHosts, timeoutMs: 10_000 });
        return true;
      });
      const c = conn!;

      await t.step("exec: argv byte-exact, env and cwd, exit codes, stderr, stdin", async () => {
        const echo = await c.exec(["printf", "%s", HOSTILE]);
        assertEquals(dec.decode(echo.stdout), HOSTILE);
        await c.exec(["mkdir", "-p", "/tmp/dir with 'q' $(x)"]);
        const env = await c.exec(["sh", "-c", 'printf "%s|%s" "$PWD" "$V"'], {
          env: { V: HOSTILE },
          cwd: "/tmp/dir with 'q' $(x)",
        });
        assertEquals(dec.decode(env.stdout), `/tmp/dir with 'q' $(x)|${HOSTILE}`);
        const fail = await c.exec(["sh", "-c", "echo out; echo err >&2; exit 42"]);
        assertEquals([fail.code, dec.decode(fail.stdout), dec.decode(fail.stderr)], [
          42,
          "out\n",
          "err\n",
        ]);
        const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
        const cat = await c.exec(["cat"], { stdin: bytes });
        assertEquals(cat.stdout, bytes);
        const killed = await c.exec(["sh", "-c", "kill -TERM $$"]);
        assertEquals([killed.code, killed.signal], [143, "TERM"]);
        assertEquals((await c.exec(["test", "-e", "/tmp/pwned"])).code, 1);
      });

      await t.step("exec: timeout and abort", async () => {
        const started = Date.now();
        await assertRejects(() => c.exec(["sleep", "30"], { timeoutMs: 300 }), TimeoutError);
        const ac = new AbortController();
        const p = c.exec(["sleep", "30"], { signal: ac.signal });
        ac.abort(new Error("stop"));
        await assertRejects(() => p, Error, "stop");
        assert(Date.now() - started < 10_000);
        assertEquals((await c.exec(["true"])).code, 0, "the connection survives");
      });

      await t.step("PTY shell: size, resize, remote exit status", async () => {
        const session = await c.shell({
          size: { rows: 33, cols: 101 },
          argv: ["sh", "-c", "stty size; read line; stty size; exit 7"],
        });
        const reader = session.output.getReader();
        await readUntil(reader, "33 101");
        await session.resize({ rows: 40, cols: 120 });
        await session.write(enc.encode("go\n"));
        await readUntil(reader, "40 120");
        reader.releaseLock();
        assertEquals(await session.exit, 7);
      });

      await t.step("login shell over the PTY", async () => {
        const session = await c.shell({ size: { rows: 24, cols: 80 } });
        const reader = session.output.getReader();
        await session.write(enc.encode('echo "tk-$((6*7))"; exit 3\n'));
        await readUntil(reader, "tk-42");
        reader.releaseLock();
        assertEquals(await session.exit, 3);
      });

      await t.step("a wrong key is rejected with an auth error", async () => {
        const other = `${T}/other`;
        await host("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
        const error = await assertRejects(
          () => connectSsh(target, { privateKey: Deno.readTextFileSync(other), knownHosts }),
          RuntimeError,
        );
        assertEquals(error.code, "ssh_auth");
      });

      await t.step("a changed host key is refused, unless the sandbox was recreated", async () => {
        const real = await knownHosts.list(name);
        const fake = `${T}/fakehost`;
        await host("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", fake]);
        const fakeKey = parsePublicKeyLine(await Deno.readTextFile(`${fake}.pub`));
        await knownHosts.pin(name, [fakeKey], { replace: true });
        const error = await assertRejects(
          () => connectSsh(target, { privateKey, knownHosts }),
          HostKeyMismatchError,
        );
        assertStringIncludes(error.message, `host key of sandbox '${name}' changed`);
        assertStringIncludes(error.hint!, `tachikoma ssh forget ${name}`);
        // Recreated after the pin: the new key replaces the pin.
        const recreated = { ...target, createdAt: new Date(Date.now() + 60_000).toISOString() };
        const again = await connectSsh(recreated, { privateKey, knownHosts });
        await again.close();
        const now = await knownHosts.list(name);
        assertEquals(
          now.map((p) => p.key),
          real.filter((p) => p.type === "ssh-ed25519").map((p) => p.key),
        );
      });

      await t.step("unreachable port: a clear error", async () => {
        await assertRejects(
          () => connectSsh({ ...target, port: 1 }, { privateKey, knownHosts, timeoutMs: 5_000 }),
          UnreachableError,
          `cannot reach sandbox '${name}'`,
        );
      });

      await t.step("system ssh argv: strict pinning, byte-exact remote argv", async () => {
        const argv = systemSshArgv({
          target,
          identityFile: `${home}/.ssh/tachikoma`,
          knownHostsFile: `${stateDir}/known_hosts`,
          argv: ["printf", "%s", HOSTILE],
        });
        const dashes = argv.indexOf("--");
        assertEquals(argv.slice(dashes), [
          "--",
          ip,
          `'printf' '%s' '${HOSTILE.replaceAll("'", "'\\''")}'`,
        ]);
        const r = await new Deno.Command(argv[0], {
          args: [...argv.slice(1, dashes), "-o", "BatchMode=yes", ...argv.slice(dashes)],
          stdin: "null",
        }).output();
        assertEquals(r.code, 0, dec.decode(r.stderr));
        assertEquals(dec.decode(r.stdout), HOSTILE);
      });

      await t.step(
        "system ssh: [env] session values arrive through SendEnv/AcceptEnv, never on disk",
        async () => {
          const argv = systemSshArgv({
            target,
            identityFile: `${home}/.ssh/tachikoma`,
            knownHostsFile: `${stateDir}/known_hosts`,
            argv: ["printenv", "TK_SESSION_ONLY"],
            sendEnv: ["TK_SESSION_ONLY"],
          });
          const dashes = argv.indexOf("--");
          const r = await new Deno.Command(argv[0], {
            args: [...argv.slice(1, dashes), "-o", "BatchMode=yes", ...argv.slice(dashes)],
            env: { TK_SESSION_ONLY: sessionValue },
            stdin: "null",
          }).output();
          assertEquals(r.code, 0, dec.decode(r.stderr));
          assertEquals(dec.decode(r.stdout).trim(), sessionValue);
          assert(!argv.some((a) => a.includes(sessionValue)), "the value is never in argv");
          const onDisk = await backend.exec(name, {
            argv: ["grep", "-rlF", "--", sessionValue, "/etc", "/home", "/root", "/var", "/tmp"],
            user: "root",
          });
          assertEquals(dec.decode(onDisk.stdout), "", "the value is nowhere on the guest's disk");
        },
      );

      await t.step(
        "`tachikoma ssh install`: the real ssh client connects with the block",
        async () => {
          const original = "Host other\r\n  User nobody";
          await Deno.mkdir(`${home}/.ssh`, { recursive: true });
          await Deno.writeTextFile(`${home}/.ssh/config`, original);
          await Deno.writeTextFile(
            `${stateDir}/state.json`,
            JSON.stringify({
              version: 2,
              vms: [{ ...record, created_at: new Date().toISOString() }],
            }),
          );
          await knownHosts.forget(name); // `ssh install` pins missing keys through the backend
          const cli = (...args: string[]) =>
            new Deno.Command(Deno.execPath(), {
              args: [
                "run",
                "-A",
                "--frozen",
                new URL("../../main.ts", import.meta.url).pathname,
                ...args,
              ],
              env: {
                HOME: home,
                TACHIKOMA_CONFIG_DIR: stateDir,
                TACHIKOMA_INCUS_SOCKET: "/var/lib/incus/unix.socket",
                DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
                NO_COLOR: "1",
              },
              stdin: "null",
            }).output();
          const install = await cli("ssh", "install", "--json", "--backend", "incus");
          assertEquals(install.code, 0, dec.decode(install.stderr));
          const doc = JSON.parse(dec.decode(install.stdout));
          assertEquals(doc.hosts, [name]);
          assertEquals(doc.unpinned, []);
          const r = await new Deno.Command("ssh", {
            args: [
              "-F",
              `${home}/.ssh/config`,
              "-o",
              "BatchMode=yes",
              "-o",
              "ConnectTimeout=10",
              name,
              "true",
            ],
            stdin: "null",
          }).output();
          assertEquals(r.code, 0, dec.decode(r.stderr));
          const uninstall = await cli("ssh", "uninstall");
          assertEquals(uninstall.code, 0, dec.decode(uninstall.stderr));
          assertEquals(await Deno.readTextFile(`${home}/.ssh/config`), original);
        },
      );

      assertInstanceOf(await Deno.stat("/tmp/pwned").catch((e) => e), Deno.errors.NotFound);
    } finally {
      await conn?.close();
      await backend.delete(name).catch(() => {});
      await backend.close();
      await Deno.remove(T, { recursive: true }).catch(() => {});
    }
  },
});
