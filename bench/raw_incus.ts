/**
 * The raw Incus API sequences the lab benches compare tachikoma with (the floor any spawn or
 * exec pays): one HTTP request per call on the Incus socket, no tachikoma code in between.
 *
 * @module
 */

/** An Incus API document (the benches read only a few fields of it). */
// deno-lint-ignore no-explicit-any
export type IncusDoc = any;

/** The raw API over `http` (an Incus socket client). */
export class RawIncus {
  /** `http`: a client for the Incus unix socket (`incusSocketHttpClient`). */
  constructor(private readonly http: Deno.HttpClient) {}

  /** One request; an error document throws. */
  async api(method: string, path: string, body?: unknown): Promise<IncusDoc> {
    const r = await fetch(`http://localhost${path}`, {
      method,
      client: this.http,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const doc = await r.json();
    if (doc.type === "error") throw new Error(`${method} ${path}: ${doc.error}`);
    return doc;
  }

  /** Waits for the background operation `doc` started; its metadata. */
  async waitOp(doc: IncusDoc): Promise<IncusDoc> {
    const done = await this.api("GET", `${doc.operation}/wait?timeout=120`);
    if (done.metadata.status_code !== 200) {
      throw new Error(`operation failed: ${done.metadata.err}`);
    }
    return done.metadata;
  }

  /** Runs `true` in `name` (no websockets, no output); throws unless it exits 0. */
  async execTrue(name: string): Promise<void> {
    const op = await this.waitOp(
      await this.api("POST", `/1.0/instances/${name}/exec`, {
        command: ["true"],
        "wait-for-websocket": false,
        "record-output": false,
        interactive: false,
      }),
    );
    if (op.metadata.return !== 0) throw new Error(`true exited ${op.metadata.return}`);
  }

  /**
   * Creates container `name` (`create`: its `source`, `config`, `start`…), starts it unless
   * `create.start`, polls its state every 50 ms until eth0 has a global IPv4, runs `true`.
   * Returns the milliseconds the whole sequence took.
   */
  async launchToExec(
    name: string,
    create: Record<string, unknown>,
    ipTimeoutMs = 60_000,
  ): Promise<number> {
    const t0 = performance.now();
    await this.waitOp(
      await this.api("POST", "/1.0/instances", { name, type: "container", ...create }),
    );
    if (create.start !== true) {
      await this.waitOp(await this.api("PUT", `/1.0/instances/${name}/state`, { action: "start" }));
    }
    for (;;) {
      const state = (await this.api("GET", `/1.0/instances/${name}/state`)).metadata;
      const eth0: { family: string; scope: string }[] = state.network?.eth0?.addresses ?? [];
      if (eth0.some((a) => a.family === "inet" && a.scope === "global")) break;
      if (performance.now() - t0 > ipTimeoutMs) {
        throw new Error(`${name}: no IPv4 after ${ipTimeoutMs / 1000} s`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.execTrue(name);
    return performance.now() - t0;
  }

  /** Stops (forced) and deletes `name`; a stopped or missing one is fine. */
  async remove(name: string): Promise<void> {
    try {
      await this.waitOp(
        await this.api("PUT", `/1.0/instances/${name}/state`, { action: "stop", force: true }),
      );
    } catch {
      // not running
    }
    try {
      await this.waitOp(await this.api("DELETE", `/1.0/instances/${name}`));
    } catch {
      // gone
    }
  }
}
