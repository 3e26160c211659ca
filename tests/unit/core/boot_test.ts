import { assert, assertEquals, assertRejects } from "@std/assert";
import { MemoryBackend } from "../../../src/backends/memory/mod.ts";
import { systemClock } from "../../../src/lib/clock.ts";
import { FakeClock } from "../../testing/fake_clock.ts";
import {
  BootTimeoutError,
  POLL_FIRST_MS,
  POLL_MAX_MS,
  pollDelay,
  PROBE_TIMEOUT_MS,
  waitForBoot,
} from "../../../src/core/boot.ts";
import { parseBanner, type SshProbe, tcpBannerProbe } from "../../../src/lib/probe.ts";
import { type BannerServer, bannerServer, FakeProbe } from "./helpers.ts";

async function runningSandbox(
  clock: FakeClock | typeof systemClock,
  options: ConstructorParameters<typeof MemoryBackend>[0] = {},
) {
  const backend = new MemoryBackend({ clock, ...options });
  await backend.create("s", { image: "x" });
  await backend.start("s", { shares: [] });
  return backend;
}

Deno.test("boot: poll schedule starts ≤ 100 ms apart and backs off to at most 1 s", () => {
  const delays = Array.from({ length: 40 }, (_, i) => pollDelay(i));
  assert(delays.slice(0, 5).every((d) => d <= 100), `first polls: ${delays.slice(0, 5)}`);
  assert(delays.every((d) => d <= 1000), "never more than 1 s apart");
  assertEquals(delays.at(-1), POLL_MAX_MS);
  for (let i = 1; i < delays.length; i++) assert(delays[i] >= delays[i - 1], "non-decreasing");
  assert(POLL_MAX_MS < 1000 && POLL_FIRST_MS <= 100);
});

Deno.test("boot: address then a real banner; probes until sshd answers", async () => {
  const clock = new FakeClock(0, { autoAdvance: true });
  const backend = await runningSandbox(clock, { addressDelayMs: 3_000 });
  const probe = new FakeProbe((_t, n) =>
    n < 4 ? { ok: false, reason: "connection refused" } : { ok: true, banner: "SSH-2.0-x" }
  );
  const result = await waitForBoot({
    backend,
    name: "s",
    clock,
    probe,
    deadline: 120_000,
    timeoutSecs: 120,
  });
  assertEquals(result.address, "127.0.0.1");
  assertEquals(result.banner, "SSH-2.0-x");
  assertEquals(result.probes, 4);
  assertEquals(probe.calls[0], { host: "127.0.0.1", port: 22 });
  assert(clock.now() >= 3_000 && clock.now() < 3_600, `booted at ${clock.now()}`);
});

Deno.test("boot: one deadline for both phases; no address → address-phase timeout", async () => {
  const clock = new FakeClock(0, { autoAdvance: true });
  const backend = await runningSandbox(clock, { neverAddress: true });
  const error = await assertRejects(
    () =>
      waitForBoot({
        backend,
        name: "s",
        clock,
        probe: new FakeProbe(),
        deadline: 120_000,
        timeoutSecs: 120,
      }),
    BootTimeoutError,
    "got no IP address within 120 s",
  );
  assertEquals(error.phase, "address");
  assert(clock.now() >= 120_000 && clock.now() <= 121_000, `gave up at ${clock.now()}`);
});

Deno.test("boot: sshd never answers → ssh-phase timeout at the shared deadline", async () => {
  const clock = new FakeClock(0, { autoAdvance: true });
  const backend = await runningSandbox(clock, { addressDelayMs: 50_000 });
  const probe = new FakeProbe(() => ({ ok: false, reason: "connection refused" }));
  const error = await assertRejects(
    () => waitForBoot({ backend, name: "s", clock, probe, deadline: 60_000, timeoutSecs: 60 }),
    BootTimeoutError,
    "last probe: connection refused",
  );
  assertEquals(error.phase, "ssh");
  assertEquals(clock.now(), 60_000, "never sleeps past the deadline");
  // 10 s of ssh phase: fast polls first, then ≤ 750 ms apart.
  assert(probe.calls.length >= 15, `${probe.calls.length} probes in 10 s`);
});

Deno.test("probe: banner parsing accepts SSH-2.0 and 1.99, skips pre-banner lines", () => {
  assertEquals(parseBanner("SSH-2.0-OpenSSH_9.2\r\n"), { ok: true, banner: "SSH-2.0-OpenSSH_9.2" });
  assertEquals(parseBanner("hello\r\nSSH-1.99-x\n"), { ok: true, banner: "SSH-1.99-x" });
  assertEquals(parseBanner("SSH-2.0-incompl"), null);
  assertEquals(parseBanner("SSH-1.5-old\n")?.ok, false);
  assertEquals(parseBanner("HTTP/1.1 400 Bad Request\r\n"), null, "needs more lines");
});

Deno.test("probe: a real loopback banner, an open port without banner, garbage", async () => {
  await using ssh = bannerServer();
  const ok = await tcpBannerProbe.probe({ host: "127.0.0.1", port: ssh.port }, {
    timeoutMs: 2_000,
    clock: systemClock,
  });
  assertEquals(ok, { ok: true, banner: "SSH-2.0-OpenSSH_9.2p1 Debian" });

  await using silent = bannerServer({ ready: false });
  const quiet = await tcpBannerProbe.probe({ host: "127.0.0.1", port: silent.port }, {
    timeoutMs: 200,
    clock: systemClock,
  });
  assertEquals(quiet, { ok: false, reason: "no banner before the timeout" });

  const http = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of http) {
      await conn.write(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"));
      conn.close();
    }
  })().catch(() => {});
  const bad = await tcpBannerProbe.probe(
    { host: "127.0.0.1", port: (http.addr as Deno.NetAddr).port },
    { timeoutMs: 2_000, clock: systemClock },
  );
  http.close();
  await serving;
  assertEquals(bad.ok, false);

  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (closed.addr as Deno.NetAddr).port;
  closed.close();
  const refused = await tcpBannerProbe.probe({ host: "127.0.0.1", port }, {
    timeoutMs: 2_000,
    clock: systemClock,
  });
  assertEquals(refused.ok, false);
});

Deno.test("boot: sshd coming up at any moment of the wait is noticed within 1 s", async () => {
  // Every start time over a minute (fake clock): the poll schedule never leaves a gap ≥ 1 s.
  for (let upAt = 0; upAt <= 60_000; upAt += 97) {
    const clock = new FakeClock(0, { autoAdvance: true });
    const backend = await runningSandbox(clock);
    const probe = new FakeProbe(() =>
      clock.now() >= upAt ? { ok: true, banner: "SSH-2.0-late" } : {
        ok: false,
        reason: "connection refused",
      }
    );
    const result = await waitForBoot({
      backend,
      name: "s",
      clock,
      probe,
      deadline: 120_000,
      timeoutSecs: 120,
    });
    assertEquals(result.banner, "SSH-2.0-late");
    const late = clock.now() - upAt;
    assert(late >= 0 && late < 1_000, `sshd up at ${upAt} ms, noticed ${late} ms later`);
  }
});

Deno.test({
  name: "boot: a real loopback sshd starting late: the first probe after it listens succeeds",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // A port nobody listens on yet.
    const probeListener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probeListener.addr as Deno.NetAddr).port;
    probeListener.close();
    const backend = await runningSandbox(systemClock);
    await backend.mutate("s", (sb) => void (sb.ssh = { host: "127.0.0.1", port }));
    // sshd comes up after the third refused probe (an event, not a time).
    let server: BannerServer | undefined;
    let refused = 0;
    const probe: SshProbe = {
      async probe(target, options) {
        const result = await tcpBannerProbe.probe(target, options);
        if (!result.ok && ++refused === 3) {
          server = bannerServer({ port, banner: "SSH-2.0-late\r\n" });
        }
        return result;
      },
    };
    try {
      const result = await waitForBoot({
        backend,
        name: "s",
        clock: systemClock,
        probe,
        deadline: Date.now() + 60_000,
        timeoutSecs: 60,
      });
      assertEquals([result.banner, result.probes], ["SSH-2.0-late", 4]);
    } finally {
      await server?.[Symbol.asyncDispose]();
    }
  },
});

Deno.test({
  name: "boot: an accepting port without banner is not booted; a banner on it is seen at once",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const backend = await runningSandbox(systemClock);
    // 1. Accepted, no banner: the probe fails at its timeout (fake time), the next one succeeds.
    {
      await using ssh = bannerServer({ ready: false });
      await backend.mutate("s", (sb) => void (sb.ssh = { host: "127.0.0.1", port: ssh.port }));
      const clock = new FakeClock(0);
      const booting = waitForBoot({
        backend,
        name: "s",
        clock,
        probe: tcpBannerProbe,
        deadline: 60_000,
        timeoutSecs: 60,
      });
      await ssh.whenAccepted(1);
      await clock.sleeping(); // the probe's timeout
      clock.advance(PROBE_TIMEOUT_MS);
      await clock.sleeping(); // the gap before the next probe
      ssh.release();
      clock.advance(POLL_FIRST_MS);
      const result = await booting;
      assertEquals(result.probes, 2, "the silent connection did not count as booted");
      assertEquals(clock.now(), PROBE_TIMEOUT_MS + POLL_FIRST_MS);
    }
    // 2. The banner arrives on the open connection: seen by that probe, no time passes.
    {
      await using ssh = bannerServer({ ready: false });
      await backend.mutate("s", (sb) => void (sb.ssh = { host: "127.0.0.1", port: ssh.port }));
      const clock = new FakeClock(0);
      const booting = waitForBoot({
        backend,
        name: "s",
        clock,
        probe: tcpBannerProbe,
        deadline: 60_000,
        timeoutSecs: 60,
      });
      await ssh.whenAccepted(1);
      ssh.release();
      const result = await booting;
      assertEquals([result.probes, clock.now()], [1, 0]);
    }
  },
});
