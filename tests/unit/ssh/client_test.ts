/**
 * The ssh2 client against an in-process ssh2 server on loopback (real SSH transport, keys and
 * host key checks; the lab test drives a real sshd), and the remote command line through a real
 * POSIX shell.
 */
import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  connectSsh,
  remoteCommand,
  signalExitCode,
  type SshTarget,
} from "../../../src/ssh/client.ts";
import { HostKeyMismatchError, KnownHosts } from "../../../src/ssh/known_hosts.ts";
import { RuntimeError } from "../../../src/lib/errors.ts";

const dec = new TextDecoder();
const HOSTILE = 'it\'s "q" `touch /tmp/x` $(touch /tmp/x); \\ \n ünï 🙂 $HOME *';

Deno.test("remoteCommand: a real sh gets every argument, env value and cwd byte-exact", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tk dir 'q' $(x) " });
  try {
    const line = remoteCommand(["sh", "-c", 'printf "%s|" "$PWD" "$V" "$@"', "sh", HOSTILE, ""], {
      env: { V: HOSTILE },
      cwd: dir,
    });
    const out = await new Deno.Command("sh", { args: ["-c", line] }).output();
    assertEquals(dec.decode(out.stdout), `${dir}|${HOSTILE}|${HOSTILE}||`);
    assertThrows(
      () => remoteCommand(["true"], { env: { "A;B": "x" } }),
      Error,
      "invalid environment",
    );
    assertThrows(() => remoteCommand([]), Error);
  } finally {
    await Deno.remove(dir);
  }
});

Deno.test("signal exit codes follow the shell convention", () => {
  assertEquals(signalExitCode("TERM"), 143);
  assertEquals(signalExitCode("SIGKILL"), 137);
  assertEquals(signalExitCode("WEIRD"), 255);
});

async function keygen(path: string): Promise<void> {
  const r = await new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", "ed25519", "-N", "", "-f", path],
  }).output();
  if (r.code !== 0) throw new Error(dec.decode(r.stderr));
}

interface TestServer {
  port: number;
  close(): Promise<void>;
}

/** An ssh2 server accepting `clientPub`; exec echoes the command line, exits 3. */
async function startServer(hostKey: string, clientPub: string): Promise<TestServer> {
  const { Server, utils } = await import("ssh2");
  const allowed = utils.parseKey(clientPub);
  if (allowed instanceof Error) throw allowed;
  const server = new Server({ hostKeys: [hostKey] }, (client) => {
    client.on("authentication", (ctx) => {
      if (ctx.method !== "publickey") return ctx.reject(["publickey"]);
      const pub = allowed.getPublicSSH();
      const same = ctx.key.algo === allowed.type && ctx.key.data.equals(pub);
      if (!same) return ctx.reject();
      if (ctx.signature && allowed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) {
        return ctx.reject();
      }
      ctx.accept();
    }).on("ready", () => {
      client.on("session", (accept) => {
        const session = accept();
        session.on("exec", (acceptExec, _reject, info) => {
          const stream = acceptExec();
          stream.write(info.command);
          stream.stderr.write("err");
          stream.exit(3);
          stream.end();
        });
      });
    }).on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  return { port, close: () => new Promise((r) => server.close(() => r())) };
}

Deno.test({
  name: "ssh2 client: exec streams and exit code, TOFU pin, changed key refused, auth error",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const servers: TestServer[] = [];
    try {
      await keygen(`${dir}/host1`);
      await keygen(`${dir}/host2`);
      await keygen(`${dir}/client`);
      await keygen(`${dir}/stranger`);
      const clientPub = await Deno.readTextFile(`${dir}/client.pub`);
      const s1 = await startServer(await Deno.readTextFile(`${dir}/host1`), clientPub);
      servers.push(s1);
      const kh = new KnownHosts(`${dir}/known_hosts`);
      const privateKey = await Deno.readTextFile(`${dir}/client`);
      const target: SshTarget = {
        host: "127.0.0.1",
        port: s1.port,
        user: "admin",
        alias: "sb",
        createdAt: "2020-01-01T00:00:00Z",
      };

      const conn = await connectSsh(target, { privateKey, knownHosts: kh });
      const r = await conn.exec(["printf", "%s", HOSTILE], { env: { A: "b c" }, cwd: "/w d" });
      assertEquals(r.code, 3);
      assertEquals(
        dec.decode(r.stdout),
        remoteCommand(["printf", "%s", HOSTILE], { env: { A: "b c" }, cwd: "/w d" }),
      );
      assertEquals(dec.decode(r.stderr), "err");
      await conn.close();
      assertEquals((await kh.list("sb")).length, 1, "first connection pinned the host key");

      // Same alias, another host key (e.g. an attacker on the address): refused.
      const s2 = await startServer(await Deno.readTextFile(`${dir}/host2`), clientPub);
      servers.push(s2);
      await assertRejects(
        () => connectSsh({ ...target, port: s2.port }, { privateKey, knownHosts: kh }),
        HostKeyMismatchError,
      );
      // The sandbox was recreated after the pin: accepted, pin replaced.
      const later = {
        ...target,
        port: s2.port,
        createdAt: new Date(Date.now() + 60_000).toISOString(),
      };
      await (await connectSsh(later, { privateKey, knownHosts: kh })).close();
      await (await connectSsh({ ...target, port: s2.port }, { privateKey, knownHosts: kh }))
        .close();

      const e = await assertRejects(
        () =>
          connectSsh({ ...target, port: s2.port }, {
            privateKey: Deno.readTextFileSync(`${dir}/stranger`),
            knownHosts: kh,
          }),
        RuntimeError,
      );
      assertEquals(e.code, "ssh_auth");
    } finally {
      for (const s of servers) await s.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** An ssh2 server whose exec echoes stdin back; `head1` ends after the first chunk. */
async function startEchoServer(hostKey: string): Promise<TestServer> {
  const { Server } = await import("ssh2");
  const server = new Server({ hostKeys: [hostKey] }, (client) => {
    client.on("authentication", (ctx) => {
      if (ctx.method === "publickey") ctx.accept();
      else ctx.reject(["publickey"]);
    }).on("ready", () => {
      client.on("session", (accept) => {
        accept().on("exec", (acceptExec, _reject, info) => {
          const stream = acceptExec();
          const head1 = info.command.includes("head1");
          stream.on("data", (chunk: Uint8Array) => {
            stream.write(chunk);
            if (head1) {
              stream.exit(0);
              stream.end();
            }
          });
          stream.on("end", () => {
            if (head1) return;
            stream.exit(0);
            stream.end();
          });
        });
      });
    }).on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  return { port, close: () => new Promise((r) => server.close(() => r())) };
}

Deno.test({
  name: "ssh2 client: a stdin stream is sent as it comes; an exec that ends stops reading it",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    await keygen(`${dir}/host`);
    await keygen(`${dir}/client`);
    const server = await startEchoServer(await Deno.readTextFile(`${dir}/host`));
    const conn = await connectSsh(
      { host: "127.0.0.1", port: server.port, user: "admin", alias: "sb" },
      {
        privateKey: await Deno.readTextFile(`${dir}/client`),
        knownHosts: new KnownHosts(`${dir}/known_hosts`),
      },
    );
    try {
      let push!: (text: string) => void;
      let end!: () => void;
      const input = new ReadableStream<Uint8Array>({
        start(c) {
          push = (t) => c.enqueue(new TextEncoder().encode(t));
          end = () => c.close();
        },
      });
      let echoed = "";
      let firstBack!: () => void;
      const back = new Promise<void>((r) => (firstBack = r));
      const running = conn.exec(["cat"], {
        stdin: input,
        onStdout: (c) => {
          echoed += dec.decode(c);
          if (echoed.includes("one\n")) firstBack();
        },
      });
      push("one\n");
      await back; // echoed while the input is still open
      push("two\n");
      end();
      const r = await running;
      assertEquals([r.code, dec.decode(r.stdout)], [0, "one\ntwo\n"]);

      let cancelled!: () => void;
      const gone = new Promise<void>((r) => (cancelled = r));
      const open = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode("x"));
        },
        cancel() {
          cancelled();
        },
      });
      const early = await conn.exec(["head1"], { stdin: open });
      assertEquals([early.code, dec.decode(early.stdout)], [0, "x"]);
      await gone;
    } finally {
      await conn.close();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
