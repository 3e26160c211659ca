/**
 * The Incus client and backend against a scripted HTTP server on a unix socket: operation
 * waits, deadlines and cancellation, the project parameter, the polling schedule of
 * waitForAddress (FakeClock), one-request list, idempotent delete, remote config errors.
 * (The real Incus is exercised in tests/integration/incus_backend_test.ts.)
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { IncusBackend, IncusClient } from "../../../../src/backends/incus/mod.ts";
import { FakeClock } from "../../../testing/fake_clock.ts";
import { log } from "../../../../src/lib/log.ts";
import {
  ConfigError,
  NotFoundError,
  RuntimeError,
  TimeoutError,
} from "../../../../src/lib/errors.ts";

type Handler = (req: Request, url: URL) => Response | Promise<Response>;

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const sync = (metadata: unknown) =>
  json({ type: "sync", status: "Success", status_code: 200, error_code: 0, error: "", metadata });
const error = (code: number, message: string) =>
  json({
    type: "error",
    status: "",
    status_code: 0,
    error_code: code,
    error: message,
    metadata: null,
  }, code);
const op = (
  id: string,
  status: string,
  statusCode: number,
  err = "",
  metadata: unknown = null,
) => ({
  id,
  class: "task",
  description: "x",
  status,
  status_code: statusCode,
  metadata,
  err,
  may_cancel: true,
});
const asyncOp = (id: string) =>
  json({
    type: "async",
    status: "Operation created",
    status_code: 100,
    error_code: 0,
    error: "",
    operation: `/1.0/operations/${id}`,
    metadata: op(id, "Running", 103),
  }, 202);

async function withServer(
  handler: Handler,
  fn: (socket: string, seen: string[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tk-incus-fake-" });
  const socket = `${dir}/incus.socket`;
  const seen: string[] = [];
  const server = Deno.serve({ path: socket, onListen() {} }, (req) => {
    const url = new URL(req.url);
    seen.push(`${req.method} ${url.pathname}${url.search}`);
    return handler(req, url);
  });
  try {
    await fn(socket, seen);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

function backendFor(
  socket: string,
  client: IncusClient,
  clock = new FakeClock(0, { autoAdvance: true }),
) {
  return new IncusBackend(client, {
    endpoint: { socket },
    cpus: 2,
    memoryMb: 1024,
    sshUser: "admin",
    sshPort: 22,
  }, { clock, hostIds: { uid: 1000, gid: 1000 } });
}

/** An instance state without an address yet. */
const noIp = { status: "Running", status_code: 103, network: { eth0: { addresses: [] } } };

/** An instance state whose eth0 has `address`. */
function runningAt(address: string) {
  return {
    status: "Running",
    status_code: 103,
    network: { eth0: { addresses: [{ family: "inet", address, scope: "global" }] } },
  };
}

/** A backend on the fake server's socket whose clock moves on by itself at each sleep. */
async function fakeTimed(socket: string) {
  const clock = new FakeClock(0, { autoAdvance: true });
  return { clock, backend: backendFor(socket, await IncusClient.open({ socket }), clock) };
}

Deno.test("every request carries the project; async operations are awaited", async () => {
  let waits = 0;
  await withServer((req, url) => {
    if (req.method === "POST" && url.pathname === "/1.0/instances") return asyncOp("op1");
    if (url.pathname === "/1.0/operations/op1/wait") {
      waits++;
      return waits === 1
        ? error(500, "context deadline exceeded")
        : sync(op("op1", "Success", 200));
    }
    return error(404, "not found");
  }, async (socket, seen) => {
    const client = await IncusClient.open({ socket, project: "team a" });
    const done = await client.mutate("POST", "/1.0/instances", { body: { name: "x" } });
    assertEquals(done?.status, "Success");
    assertEquals(waits, 2);
    assert(seen.every((s) => s.includes("project=team+a")), seen.join("\n"));
    assertStringIncludes(
      client.url("/1.0/operations/o/websocket", { secret: "s" }),
      "project=team+a",
    );
    client.close();
  });
});

Deno.test("a failed operation surfaces its error", async () => {
  await withServer((_req, url) => {
    if (url.pathname === "/1.0/instances/a/state") return asyncOp("op2");
    if (url.pathname === "/1.0/operations/op2/wait") {
      return sync(op("op2", "Failure", 400, "Failed to run: forkstart tk-a: exit status 1"));
    }
    return error(404, "not found");
  }, async (socket) => {
    const client = await IncusClient.open({ socket });
    const err = await assertRejects(
      () => client.mutate("PUT", "/1.0/instances/a/state", { body: {}, subject: 'sandbox "a"' }),
      RuntimeError,
    );
    assertEquals(err.message, 'sandbox "a": failed to run: forkstart tk-a: exit status 1');
    client.close();
  });
});

Deno.test("an operation past its deadline is cancelled and times out", async () => {
  await withServer((req, url) => {
    if (url.pathname === "/1.0/instances") return asyncOp("op3");
    if (url.pathname === "/1.0/operations/op3/wait") return error(500, "context deadline exceeded");
    if (req.method === "DELETE" && url.pathname === "/1.0/operations/op3") return sync({});
    return error(404, "not found");
  }, async (socket, seen) => {
    const client = await IncusClient.open({ socket });
    await assertRejects(
      () => client.mutate("POST", "/1.0/instances", { body: {}, timeoutMs: 30 }),
      TimeoutError,
      "not done after",
    );
    assert(seen.includes("DELETE /1.0/operations/op3"), seen.join("\n"));
    client.close();
  });
});

Deno.test("waitForAddress polls ≤100 ms apart at first, backs off to ≤250 ms", async () => {
  let polls = 0;
  const withIp = runningAt("10.213.0.7");
  await withServer((_req, url) => {
    if (url.pathname === "/1.0/instances/a/state") return sync(++polls < 25 ? noIp : withIp);
    return error(404, "not found");
  }, async (socket) => {
    const { clock, backend } = await fakeTimed(socket);
    const ip = await backend.waitForAddress("a", { clock, deadline: 60_000 });
    assertEquals(ip, "10.213.0.7");
    assertEquals(polls, 25);
    assertEquals(clock.sleeps.slice(0, 10), Array(10).fill(100));
    assert(clock.sleeps.every((ms) => ms <= 250), clock.sleeps.join(","));
    assertEquals(clock.sleeps.at(-1), 250);
    for (let i = 1; i < clock.sleeps.length; i++) assert(clock.sleeps[i] >= clock.sleeps[i - 1]);
    await backend.close();
  });
});

Deno.test("waitForAddress: on a managed network the state is read once the NIC has a lease", async () => {
  let leasePolls = 0;
  let statePolls = 0;
  const withIp = runningAt("10.213.0.9");
  const mac = "00:16:3e:aa:bb:cc";
  const lease = {
    hostname: "a",
    hwaddr: mac.toUpperCase(),
    address: "10.213.0.9",
    type: "dynamic",
  };
  const other = {
    hostname: "b",
    hwaddr: "00:16:3e:00:00:01",
    address: "10.213.0.8",
    type: "dynamic",
  };
  await withServer((_req, url) => {
    if (url.pathname === "/1.0/instances/a") {
      return sync({
        name: "a",
        status: "Running",
        status_code: 103,
        config: { "volatile.eth0.hwaddr": mac },
        devices: { eth0: { type: "nic", network: "tkbr0", name: "eth0" } },
      });
    }
    if (url.pathname === "/1.0/networks/tkbr0/leases") {
      return sync(++leasePolls < 40 ? [other] : [other, lease]);
    }
    if (url.pathname === "/1.0/instances/a/state") {
      statePolls++;
      return sync(leasePolls >= 40 ? withIp : noIp);
    }
    return error(404, "not found");
  }, async (socket) => {
    const { clock, backend } = await fakeTimed(socket);
    const ip = await backend.waitForAddress("a", { clock, deadline: 60_000 });
    assertEquals(ip, "10.213.0.9");
    assertEquals(leasePolls, 40);
    // 39 lease polls 50 ms apart: the state at the first poll, each second, then at the lease.
    assert(clock.sleeps.every((ms) => ms === 50), clock.sleeps.join(","));
    assertEquals(statePolls, 1 + Math.floor((39 * 50) / 1000) + 1);
    await backend.close();
  });
});

Deno.test("waitForAddress: a network without leases (unmanaged) falls back to the state", async () => {
  let statePolls = 0;
  const withIp = runningAt("10.213.0.5");
  await withServer((_req, url) => {
    if (url.pathname === "/1.0/instances/a") {
      return sync({
        name: "a",
        status: "Running",
        status_code: 103,
        config: { "volatile.eth0.hwaddr": "00:16:3e:aa:bb:cc" },
        devices: { eth0: { type: "nic", parent: "br-ext", nictype: "bridged", name: "eth0" } },
      });
    }
    if (url.pathname === "/1.0/instances/a/state") {
      return sync(++statePolls < 5 ? { status: "Running", status_code: 103, network: {} } : withIp);
    }
    return error(400, "Network is not managed");
  }, async (socket) => {
    const { clock, backend } = await fakeTimed(socket);
    assertEquals(await backend.waitForAddress("a", { clock, deadline: 60_000 }), "10.213.0.5");
    assertEquals(statePolls, 5);
    assertEquals(clock.sleeps, [100, 100, 100, 100]);
    await backend.close();
  });
});

Deno.test("waitForAddress gives up at the deadline on the injected clock", async () => {
  const noIp = { status: "Running", status_code: 103, network: {} };
  await withServer((_req, url) => {
    if (url.pathname === "/1.0/instances/a/state") return sync(noIp);
    return error(404, "not found");
  }, async (socket) => {
    const { clock, backend } = await fakeTimed(socket);
    await assertRejects(
      () => backend.waitForAddress("a", { clock, deadline: 5_000 }),
      TimeoutError,
      "no IPv4 address",
    );
    assertEquals(clock.now(), 5_000);
    await assertRejects(
      () => backend.waitForAddress("missing", { clock, deadline: 10_000 }),
      NotFoundError,
      'sandbox "missing" not found',
    );
    await backend.close();
  });
});

Deno.test("list is one request with recursion=2", async () => {
  await withServer((_req, url) => {
    if (url.pathname === "/1.0/instances") {
      return sync([
        { name: "a", status: "Stopped", status_code: 102, config: {}, devices: {}, state: null },
        {
          name: "b",
          status: "Running",
          status_code: 103,
          config: {},
          devices: {},
          state: {
            status: "Running",
            status_code: 103,
            network: {
              eth0: { addresses: [{ family: "inet", address: "10.213.0.3", scope: "global" }] },
            },
          },
        },
      ]);
    }
    return error(404, "not found");
  }, async (socket, seen) => {
    const backend = backendFor(socket, await IncusClient.open({ socket }));
    const all = await backend.list();
    assertEquals(all.map((s) => [s.name, s.state, s.addresses]), [
      ["a", "stopped", []],
      ["b", "running", ["10.213.0.3"]],
    ]);
    assertEquals(seen, ["GET /1.0/instances?recursion=2"]);
    await backend.close();
  });
});

Deno.test("listNames is one request without state (names from the URLs, project and escapes)", async () => {
  await withServer((_req, url) => {
    if (url.pathname === "/1.0/instances") {
      return sync([
        "/1.0/instances/a",
        "/1.0/instances/tkb-dev-0123456789?project=team",
        "/1.0/instances/with%2Descape",
      ]);
    }
    return error(404, "not found");
  }, async (socket, seen) => {
    const backend = backendFor(socket, await IncusClient.open({ socket }));
    assertEquals(await backend.listNames(), ["a", "tkb-dev-0123456789", "with-escape"]);
    assertEquals(seen, ["GET /1.0/instances"]);
    await backend.close();
  });
});

Deno.test("delete of a missing sandbox succeeds without deleting anything", async () => {
  await withServer(() => error(404, "Instance not found"), async (socket, seen) => {
    const backend = backendFor(socket, await IncusClient.open({ socket }));
    await backend.delete("gone");
    assertEquals(seen, ["PUT /1.0/instances/gone/state"]);
    await backend.close();
  });
});

Deno.test("remote mode: bad settings are config errors naming the key", async () => {
  await assertRejects(
    () => IncusClient.open({ socket: "/s", remote: "http://incus.example:8443" }),
    ConfigError,
    "[incus] remote: must be an https:// URL",
  );
  await assertRejects(
    () => IncusClient.open({ socket: "/s", remote: "https://incus.example:8443" }),
    ConfigError,
    "client_cert and client_key",
  );
  await assertRejects(
    () =>
      IncusClient.open({
        socket: "/s",
        remote: "https://incus.example:8443",
        clientCert: "/nonexistent/cert.pem",
        clientKey: "/nonexistent/key.pem",
      }),
    ConfigError,
    "[incus] client_cert: cannot read /nonexistent/cert.pem",
  );
});

Deno.test("delete retries when the container still reads as running", async () => {
  let deletes = 0;
  await withServer((req, url) => {
    if (url.pathname === "/1.0/instances/a/state") return asyncOp("stop1");
    if (url.pathname.startsWith("/1.0/operations/") && url.pathname.endsWith("/wait")) {
      const id = url.pathname.split("/")[3];
      return sync(op(id, "Success", 200));
    }
    if (req.method === "DELETE" && url.pathname === "/1.0/instances/a") {
      return ++deletes === 1 ? error(400, "Instance is running") : asyncOp("del1");
    }
    return error(404, "not found");
  }, async (socket, seen) => {
    const { clock, backend } = await fakeTimed(socket);
    await backend.delete("a");
    assertEquals(deletes, 2);
    assertEquals(seen.filter((s) => s.startsWith("PUT /1.0/instances/a/state")).length, 2);
    assertEquals(clock.sleeps, [500]);
    await backend.close();
  });
});

Deno.test("the debug line of an operation wait is written when the operation ends, not at its headers", async () => {
  // Incus answers a wait with its headers at once and its body when the operation ends.
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  let asked!: () => void;
  const waitAsked = new Promise<void>((resolve) => asked = resolve);
  const body = new TextEncoder().encode(
    JSON.stringify({
      type: "sync",
      status: "Success",
      status_code: 200,
      error_code: 0,
      error: "",
      metadata: op("op1", "Success", 200),
    }),
  );
  await withServer((_req, url) => {
    if (url.pathname === "/1.0/operations/op1/wait") {
      asked();
      return new Response(
        new ReadableStream({
          async start(controller) {
            await released;
            controller.enqueue(body);
            controller.close();
          },
        }),
        { headers: { "content-type": "application/json" } },
      );
    }
    return sync({});
  }, async (socket) => {
    const lines: { line: string; afterBody: boolean }[] = [];
    let bodySent = false;
    const level = log.level;
    log.level = "debug";
    log.setSink((line) => lines.push({ line, afterBody: bodySent }));
    try {
      const client = await IncusClient.open({ socket });
      const waited = client.wait("op1", { timeoutMs: 60_000 });
      await waitAsked;
      // A full round trip after the wait's headers went out: they have reached the client.
      await client.get("/1.0");
      bodySent = true;
      release();
      assertEquals((await waited).status, "Success");
      const waits = lines.filter((l) => l.line.includes("/1.0/operations/op1/wait"));
      assertEquals(waits.length, 1, lines.map((l) => l.line).join("\n"));
      assert(waits[0].afterBody, `logged at the headers: ${waits[0].line}`);
      assertStringIncludes(waits[0].line, "incus GET /1.0/operations/op1/wait → 200 (");
      client.close();
    } finally {
      log.setSink(undefined);
      log.level = level;
    }
  });
});
