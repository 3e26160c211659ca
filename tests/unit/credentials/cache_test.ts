import { assertEquals } from "@std/assert";
import { FakeClock } from "../../testing/fake_clock.ts";
import { CredentialCache } from "../../../src/credentials/cache.ts";
import type { Credential, WaterfallResult } from "../../../src/credentials/types.ts";

function source(sequence: (Credential | null)[]) {
  let i = 0;
  const calls = { n: 0 };
  const resolve = (): Promise<WaterfallResult> => {
    calls.n++;
    const credential = sequence[Math.min(i++, sequence.length - 1)];
    return Promise.resolve({ credential, attempts: [] });
  };
  return { resolve, calls };
}

const KEY: Credential = { kind: "api_key", source: "api_key_env", value: "cache-key-1234" };
const KEY2: Credential = { kind: "api_key", source: "api_key_command", value: "cache-key-5678" };

Deno.test("cache: a hit is served for the whole TTL, then refreshed", async () => {
  const clock = new FakeClock();
  const s = source([KEY, KEY2]);
  const cache = new CredentialCache({ resolve: s.resolve, ttlMs: 300_000, clock });
  assertEquals(await cache.get(), KEY);
  clock.advance(299_999);
  assertEquals(await cache.get(), KEY);
  assertEquals(s.calls.n, 1);
  clock.advance(1);
  assertEquals(await cache.get(), KEY2);
  assertEquals(s.calls.n, 2);
});

Deno.test("cache: a miss is retried after a few seconds, not after the TTL", async () => {
  const clock = new FakeClock();
  const s = source([null, KEY]);
  const cache = new CredentialCache({
    resolve: s.resolve,
    ttlMs: 300_000,
    missRetryMs: 5_000,
    clock,
  });
  assertEquals(await cache.get(), null);
  clock.advance(4_999);
  assertEquals(await cache.get(), null);
  assertEquals(s.calls.n, 1);
  clock.advance(1); // the user logged in on the host meanwhile
  assertEquals(await cache.get(), KEY);
  assertEquals(s.calls.n, 2);
  clock.advance(200_000);
  assertEquals(await cache.get(), KEY);
  assertEquals(s.calls.n, 2);
});

Deno.test("cache: an OAuth token is never served past its expiresAt", async () => {
  const clock = new FakeClock(1_000_000);
  const token: Credential = {
    kind: "oauth",
    source: "credentials_file",
    value: "short-lived-token",
    expiresAt: 1_000_000 + 60_000,
  };
  const s = source([token, KEY]);
  const cache = new CredentialCache({ resolve: s.resolve, ttlMs: 300_000, clock });
  assertEquals(await cache.get(), token);
  clock.advance(60_000);
  assertEquals(await cache.get(), KEY);
});

Deno.test("cache: concurrent callers share one waterfall run", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  let runs = 0;
  const cache = new CredentialCache({
    resolve: async () => {
      runs++;
      await gate;
      return { credential: KEY, attempts: [] };
    },
    ttlMs: 1000,
    clock: new FakeClock(),
  });
  const all = Promise.all(Array.from({ length: 20 }, () => cache.get()));
  release();
  const got = await all;
  assertEquals(runs, 1);
  assertEquals(got.every((c) => c === KEY), true);
});

Deno.test("cache: invalidate forces a new run; peek never runs the waterfall", async () => {
  const clock = new FakeClock();
  const s = source([KEY, KEY2]);
  const cache = new CredentialCache({ resolve: s.resolve, ttlMs: 300_000, clock });
  assertEquals(cache.peek().source, "pending");
  assertEquals(s.calls.n, 0);
  await cache.get();
  assertEquals(cache.peek().source, "api_key_env");
  cache.invalidate();
  assertEquals(cache.peek().source, "pending");
  assertEquals(await cache.get(), KEY2);
  assertEquals(s.calls.n, 2);
});

Deno.test("cache: a miss is reported as source none", async () => {
  const cache = new CredentialCache({
    resolve: source([null]).resolve,
    ttlMs: 1000,
    clock: new FakeClock(),
  });
  await cache.get();
  assertEquals(cache.peek().source, "none");
});
