import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { ConflictError, UsageError } from "../../../src/lib/errors.ts";
import {
  checkFree,
  endForwards,
  liveForwards,
  parseForwardArgs,
  startForward,
} from "../../../src/core/ports.ts";
import { relay } from "../../../src/core/port_relay.ts";
import { systemClock } from "../../../src/lib/clock.ts";
import type { ProcessInspector } from "../../../src/lib/processes.ts";

Deno.test("port forward args: [name] <guest-port> [host-port]; bad ports are one line", () => {
  assertEquals(parseForwardArgs(["3000"]), { guestPort: 3000 });
  assertEquals(parseForwardArgs(["3000", "8080"]), { guestPort: 3000, hostPort: 8080 });
  assertEquals(parseForwardArgs(["feat", "3000"]), { name: "feat", guestPort: 3000 });
  assertEquals(parseForwardArgs(["feat", "3000", "1"]), {
    name: "feat",
    guestPort: 3000,
    hostPort: 1,
  });
  for (const bad of [[], ["0"], ["65536"], ["x", "y"], ["a", "1", "2", "3"], ["3000", "-1"]]) {
    const e = assertThrows(() => parseForwardArgs(bad), UsageError);
    assert(!e.message.includes("\n"));
  }
});

Deno.test("checkFree: a port in use is a one-line conflict naming it", () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  try {
    const e = assertThrows(() => checkFree("127.0.0.1", port), ConflictError);
    assertEquals(e.message, `port 127.0.0.1:${port} is in use`);
  } finally {
    l.close();
  }
  checkFree("127.0.0.1", port);
});

Deno.test("relay: real HTTP through the relay, both ways, until aborted", async () => {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {}, signal: ac.signal },
    async (req) => new Response(`echo:${await req.text()}`),
  );
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const hostPort = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const stop = new AbortController();
  const running = relay({
    bind: "127.0.0.1",
    hostPort,
    guestAddress: "127.0.0.1",
    guestPort: server.addr.port,
    signal: stop.signal,
  });
  for (const body of ["one", "two"]) {
    const r = await fetch(`http://127.0.0.1:${hostPort}/`, { method: "POST", body });
    assertEquals(await r.text(), `echo:${body}`);
  }
  stop.abort();
  await running;
  await assertRejects(() => Deno.connect({ hostname: "127.0.0.1", port: hostPort }));
  ac.abort();
  await server.finished;
});

Deno.test("startForward: records the relay once it listens; list drops dead ones; end kills", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "tk-ports-" });
  const stop = new AbortController();
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const hostPort = (probe.addr as Deno.NetAddr).port;
  probe.close();
  let alive = true;
  const killed: string[] = [];
  const processes: ProcessInspector = {
    alive: () => Promise.resolve(alive),
    commandLine: () => Promise.resolve(`tachikoma port serve x 10.0.0.2 80 ${hostPort}`),
    kill: (_pid, signal) => {
      killed.push(signal);
      alive = false;
      stop.abort();
      return true;
    },
  };
  let running: Promise<void> | undefined;
  try {
    const f = await startForward({
      stateDir,
      sandbox: "sb",
      guestAddress: "127.0.0.1",
      guestPort: 9,
      hostPort,
      bind: "127.0.0.1",
      clock: systemClock,
      processes,
      launch: (args) => {
        assertEquals(args.slice(0, 2), ["port", "serve"]);
        running = relay({
          bind: "127.0.0.1",
          hostPort,
          guestAddress: "127.0.0.1",
          guestPort: 9,
          signal: stop.signal,
        });
        return { pid: 4242, exited: new Promise(() => {}) };
      },
    });
    assertEquals([f.sandbox, f.host_port, f.pid], ["sb", hostPort, 4242]);
    const file = `${stateDir}/ports/127.0.0.1-${hostPort}.json`;
    assertEquals((await Deno.stat(file)).mode! & 0o777, 0o600);
    assertEquals((await liveForwards(stateDir, processes)).length, 1);
    // Taken now: a second forward on the same host port is refused.
    await assertRejects(
      () =>
        startForward({
          stateDir,
          sandbox: "sb",
          guestAddress: "127.0.0.1",
          guestPort: 9,
          hostPort,
          bind: "127.0.0.1",
          clock: systemClock,
          processes,
          launch: () => ({ pid: 1, exited: Promise.resolve(1) }),
        }),
      ConflictError,
      "is in use",
    );
    assertEquals(
      (await endForwards({ stateDir, processes, sandbox: "sb", clock: systemClock })).length,
      1,
    );
    assertEquals(killed, ["SIGTERM"]);
    assertEquals(await liveForwards(stateDir, processes), []);
  } finally {
    stop.abort();
    await running;
    await Deno.remove(stateDir, { recursive: true });
  }
});
