/**
 * TLS (verified by default, a private CA, insecure_skip_verify) against the fake TrueNAS over
 * wss://, and the keepalive (§1) through an injected socket that never answers pings.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { rig } from "./harness.ts";
import { TruenasClient } from "../../../../src/backends/truenas/client.ts";
import type {
  Dialer,
  RpcSocket,
  SocketHandlers,
} from "../../../../src/backends/truenas/transport.ts";
import { FakeClock } from "../../../testing/fake_clock.ts";
import { certs } from "./certs.ts";

Deno.test("§1 TLS: verified by default — an unknown CA fails in one line naming the host", async () => {
  const c = await certs();
  try {
    await using r = await rig({ tls: { cert: c.cert, key: c.key } });
    const e = await assertRejects(() => r.client.connect());
    assertMatch(
      (e as Error).message,
      /^TrueNAS 127\.0\.0\.1:\d+: connecting: the TLS certificate does not verify \(/,
    );
    assert(!(e as Error).message.includes("\n"));
    assertEquals(r.server.logins, 0);
    assertEquals(r.clock.sleeps, [], "a certificate failure is not retried");
  } finally {
    await Deno.remove(c.dir, { recursive: true });
  }
});

Deno.test("§1 TLS: the server's CA as caCerts verifies; insecure_skip_verify skips", async () => {
  const c = await certs();
  try {
    {
      await using r = await rig({ tls: { cert: c.cert, key: c.key } }, { caCerts: [c.ca] });
      await r.client.connect();
      assertEquals(r.server.logins, 1);
    }
    await using r = await rig({ tls: { cert: c.cert, key: c.key } }, { insecure: true });
    await r.client.connect();
    assertEquals(r.server.logins, 1);
  } finally {
    await Deno.remove(c.dir, { recursive: true });
  }
});

/** A scripted server: answers the handshake and calls, never answers pings. */
function silentPongDialer(state: { dials: number; pings: number }): Dialer {
  return (_target, h: SocketHandlers): Promise<RpcSocket> => {
    state.dials++;
    let open = true;
    const reply = (id: unknown, result: unknown) =>
      queueMicrotask(() => open && h.onText(JSON.stringify({ jsonrpc: "2.0", id, result })));
    return Promise.resolve({
      send(text: string) {
        const f = JSON.parse(text);
        if (f.method === "auth.login_ex") reply(f.id, { response_type: "SUCCESS" });
        else if (f.method === "system.version") reply(f.id, "TrueNAS-25.04.2.4");
        else reply(f.id, true);
      },
      ping() {
        state.pings++;
      },
      close() {
        if (!open) return;
        open = false;
        h.onClose("websocket: close (by client)");
      },
    });
  };
}

Deno.test("§1 keepalive: ping every period; no pong in time → dropped, re-dialled on next call", async () => {
  const state = { dials: 0, pings: 0 };
  const client = new TruenasClient({
    host: "truenas.test",
    port: 443,
    username: "root",
    apiKey: "k-0123456789",
    dial: silentPongDialer(state),
    clock: new FakeClock(),
    keepaliveMs: 20,
    pongTimeoutMs: 20,
  });
  await client.connect();
  const deadline = Date.now() + 5000;
  // Wait (bounded) until the keepalive has dropped the first connection.
  while (state.pings === 0 || client.connected) {
    if (Date.now() > deadline) throw new Error("keepalive never dropped the silent socket");
    await new Promise((r) => setTimeout(r, 10));
  }
  assertEquals(await client.call("core.ping"), true);
  assertEquals(state.dials, 2);
  await client.close();
});
