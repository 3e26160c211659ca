/**
 * Regression: the first SSH handshake of a process must not hang when the host-key store
 * answers at once.
 *
 * Deno (2.9) loads node:crypto's hash module lazily on the first `createHash` of a process and
 * runs pending microtasks while doing so. ssh2 calls `createHash` inside its key-exchange
 * `finish()`, after marking the exchange finished; a host-key verdict delivered by a promise
 * that is already settled then re-enters ssh2, its `finish()` call is a no-op, and the client
 * never sends NEWKEYS: the handshake hangs until the connect timeout. It made the tart lab test
 * "key injected → exec switches to SSH" fail (the key probe timed out, so exec stayed on
 * `tart exec`), and any tachikoma command's first connection could hang the same way.
 *
 * The client runs in a fresh subprocess (tests/fixtures/ssh/first_handshake.ts) so its first
 * `createHash` is the one in the key exchange; a proxy delivers the server's key-exchange reply
 * and NEWKEYS in one write (as OpenSSH's sshd does), so both are parsed in the same task.
 */
import { assert, assertEquals } from "@std/assert";

const dec = new TextDecoder();
const ROOT = new URL("../../../", import.meta.url).pathname;
const CLIENT = `${ROOT}tests/fixtures/ssh/first_handshake.ts`;

async function keygen(path: string): Promise<void> {
  const r = await new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", "ed25519", "-N", "", "-f", path],
  }).output();
  if (r.code !== 0) throw new Error(dec.decode(r.stderr));
}

/** An ssh2 server accepting any public key; `exec` exits 0. */
async function startServer(hostKey: string): Promise<{ port: number; close(): Promise<void> }> {
  const { Server } = await import("ssh2");
  const server = new Server({ hostKeys: [hostKey] }, (client) => {
    client.on("authentication", (ctx) => {
      if (ctx.method === "publickey") ctx.accept();
      else ctx.reject(["publickey"]);
    }).on("ready", () => {
      client.on("session", (accept) => {
        accept().on("exec", (acceptExec) => {
          const stream = acceptExec();
          stream.exit(0);
          stream.end();
        });
      });
    }).on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  return { port, close: () => new Promise((r) => server.close(() => r())) };
}

const KEXINIT = 20;
const NEWKEYS = 21;

/**
 * A TCP proxy that relays the server's identification line and KEXINIT as they come, then holds
 * the server's key-exchange reply until its (unencrypted) NEWKEYS packet has arrived and
 * forwards both in one write; after that it just relays.
 */
function coalescingProxy(target: number): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({ hostname: "127.0.0.1", port: target });
      conns.push(client, server);
      client.readable.pipeTo(server.writable).catch(() => {});
      (async () => {
        const writer = client.writable.getWriter();
        let pending: Uint8Array = new Uint8Array(0);
        let relaying = false;
        const state = { sawKexinit: false };
        for await (const chunk of server.readable) {
          if (relaying) {
            await writer.write(chunk);
            continue;
          }
          pending = concat(pending, chunk);
          const cut = releasable(pending, state);
          if (cut.upTo > 0) await writer.write(pending.slice(0, cut.upTo));
          pending = pending.slice(cut.upTo);
          if (cut.done) {
            if (pending.length) await writer.write(pending);
            relaying = true;
          }
        }
        await writer.close().catch(() => {});
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
    },
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * How much of the held server bytes may go now: the identification line and the KEXINIT at
 * once; after the KEXINIT, nothing until NEWKEYS, then everything up to it (`done`).
 */
function releasable(
  bytes: Uint8Array,
  state: { sawKexinit: boolean },
): { upTo: number; done: boolean } {
  let p = 0;
  if (!state.sawKexinit) {
    const eol = bytes.indexOf(10);
    if (eol < 0) return { upTo: 0, done: false };
    p = eol + 1;
  }
  while (p + 6 <= bytes.length) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + p).getUint32(0);
    const type = bytes[p + 5];
    const end = p + 4 + length;
    if (end > bytes.length) break;
    if (type === KEXINIT) {
      state.sawKexinit = true;
      return { upTo: end, done: false };
    }
    if (type === NEWKEYS) return { upTo: end, done: true };
    p = end;
  }
  return { upTo: 0, done: false };
}

Deno.test({
  name: "ssh: a fresh process's first handshake completes with an instant host-key verdict",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const server = await startServer(
      await (async () => {
        await keygen(`${dir}/host`);
        return await Deno.readTextFile(`${dir}/host`);
      })(),
    );
    const proxy = coalescingProxy(server.port);
    try {
      await keygen(`${dir}/client`);
      for (let i = 0; i < 3; i++) {
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--quiet",
            "--frozen",
            `--config=${ROOT}deno.json`,
            CLIENT,
            String(proxy.port),
            `${dir}/client`,
            `${dir}/known_hosts`,
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assertEquals(out.code, 0, dec.decode(out.stderr));
        const text = dec.decode(out.stdout).trim();
        const result = JSON.parse(text.split("\n")[0]);
        assert(result.ok, `run ${i + 1}: ${text}`);
        assertEquals(result.code, 0);
      }
    } finally {
      proxy.close();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
