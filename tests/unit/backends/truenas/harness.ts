/**
 * A fake TrueNAS on loopback with an in-memory world, and a client pointed at it.
 *
 * @module
 */
import { FakeTruenas, type FakeTruenasOptions } from "../../../fixtures/truenas/server.ts";
import { MemoryWorld } from "../../../fixtures/truenas/world.ts";
import {
  TruenasClient,
  type TruenasClientOptions,
} from "../../../../src/backends/truenas/client.ts";
import { nodeDialer } from "../../../../src/backends/truenas/transport.ts";
import { FakeClock } from "../../../testing/fake_clock.ts";

/** The API key of every fake. */
export const API_KEY = "1-fakeTrueNASkey0123456789";

/** A running fake and a client. */
export interface Rig {
  server: FakeTruenas;
  world: MemoryWorld;
  client: TruenasClient;
  clock: FakeClock;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a fake (options merged) and makes a client for it (options merged). */
export async function rig(
  server: Partial<FakeTruenasOptions> = {},
  client: Partial<TruenasClientOptions> = {},
): Promise<Rig> {
  const world = new MemoryWorld();
  const fake = new FakeTruenas({ world, apiKey: API_KEY, ...server });
  await fake.start();
  const clock = new FakeClock(1_700_000_000_000, { autoAdvance: true });
  const c = new TruenasClient({
    host: "127.0.0.1",
    port: fake.port,
    username: "root",
    apiKey: API_KEY,
    scheme: server.tls ? "wss" : "ws",
    dial: nodeDialer,
    clock,
    random: () => 0.5,
    ...client,
  });
  return {
    server: fake,
    world,
    client: c,
    clock,
    async [Symbol.asyncDispose]() {
      await c.close();
      await fake.stop();
    },
  };
}
