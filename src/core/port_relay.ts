/**
 * The relay behind a port forward (`tachikoma port serve`, started detached by `port forward`):
 * listens on `bind:hostPort` and pipes each connection to `guestAddress:guestPort`, both ways,
 * until it is signalled (`port rm`, halt, destroy). A connection the guest refuses is closed.
 *
 * @module
 */

/** What to relay. */
export interface RelayOptions {
  bind: string;
  hostPort: number;
  guestAddress: string;
  guestPort: number;
  signal?: AbortSignal;
}

async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  try {
    await from.readable.pipeTo(to.writable);
  } catch {
    // either side went away
  }
}

/** Serves until `signal` aborts (or forever). */
export async function relay(options: RelayOptions): Promise<void> {
  const listener = Deno.listen({ hostname: options.bind, port: options.hostPort });
  options.signal?.addEventListener("abort", () => listener.close(), { once: true });
  try {
    for await (const conn of listener) {
      (async () => {
        let upstream: Deno.Conn;
        try {
          upstream = await Deno.connect({
            hostname: options.guestAddress,
            port: options.guestPort,
          });
        } catch {
          conn.close();
          return;
        }
        await Promise.all([pipe(conn, upstream), pipe(upstream, conn)]);
        try {
          conn.close();
        } catch { /* closed */ }
        try {
          upstream.close();
        } catch { /* closed */ }
      })();
    }
  } catch (error) {
    if (!options.signal?.aborted) throw error;
  }
}
