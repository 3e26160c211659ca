/**
 * SshGuest (the tart backend's SSH layer) against an in-process ssh2 server on loopback: a
 * pooled connection that the guest closed (it restarted) is never reported as usable, and
 * `forget` drops a sandbox's connections.
 */
import { assertEquals } from "@std/assert";
import { SshGuest } from "../../../src/backends/tart/ssh_guest.ts";
import type { SshTarget } from "../../../src/backends/tart/guest.ts";
import { KnownHosts } from "../../../src/ssh/known_hosts.ts";

const dec = new TextDecoder();

async function keygen(path: string): Promise<void> {
  const r = await new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", "ed25519", "-N", "", "-f", path],
  }).output();
  if (r.code !== 0) throw new Error(dec.decode(r.stderr));
}

interface Server {
  port: number;
  /** Connections authenticated so far. */
  readonly connections: number;
  /** Ends every open connection from the server side (what a guest restart does). */
  dropAll(): void;
  /** Resolves when `n` connections have closed on the server side. */
  closedCount(n: number): Promise<void>;
  close(): Promise<void>;
}

async function startServer(hostKey: string): Promise<Server> {
  const { Server } = await import("ssh2");
  const open = new Set<{ end(): void }>();
  let connections = 0;
  let closed = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = new Server({ hostKeys: [hostKey] }, (client) => {
    client.on("authentication", (ctx) => {
      if (ctx.method === "publickey") ctx.accept();
      else ctx.reject(["publickey"]);
    }).on("ready", () => {
      connections++;
      open.add(client);
      client.on("session", (accept) => {
        accept().on("exec", (acceptExec, _reject, info) => {
          const stream = acceptExec();
          stream.write(`ran ${info.command}`);
          stream.exit(0);
          stream.end();
        });
      });
    }).on("close", () => {
      open.delete(client);
      closed++;
      for (const w of waiters.filter((w) => closed >= w.n)) w.resolve();
    }).on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    port: (server.address() as { port: number }).port,
    get connections() {
      return connections;
    },
    dropAll() {
      for (const c of open) c.end();
    },
    closedCount(n) {
      if (closed >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

Deno.test({
  name: "SshGuest: a pooled connection the guest closed is replaced, forget drops the pool",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    await keygen(`${dir}/host`);
    await keygen(`${dir}/client`);
    const server = await startServer(await Deno.readTextFile(`${dir}/host`));
    const ssh = new SshGuest({
      knownHosts: new KnownHosts(`${dir}/known_hosts`),
      privateKeyPath: `${dir}/client`,
      connectTimeoutMs: 10_000,
    });
    const target: SshTarget = {
      sandbox: "vm",
      host: "127.0.0.1",
      port: server.port,
      user: "admin",
      auth: { kind: "key" },
    };
    try {
      assertEquals(await ssh.probe(target), "ok");
      assertEquals(await ssh.probe(target), "ok");
      assertEquals(server.connections, 1, "the connection is pooled");

      // The guest restarts: the server ends the connection.
      server.dropAll();
      await server.closedCount(1);
      // The client sees the close on its own schedule: a probe must not report the dead one.
      const probe = await ssh.probe(target);
      const r = await ssh.exec(target, { argv: ["echo", "hi"] });
      assertEquals([probe, r.code, dec.decode(r.stdout)], ["ok", 0, "ran 'echo' 'hi'"]);
      assertEquals(server.connections, 2, "a new connection replaced the closed one");

      ssh.forget("vm");
      await server.closedCount(2);
      assertEquals(await ssh.probe(target), "ok");
      assertEquals(server.connections, 3, "forget dropped the pooled connection");
    } finally {
      await ssh.close();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
