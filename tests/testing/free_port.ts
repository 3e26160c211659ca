/**
 * A loopback port nothing listens on right now (for tests and benches that start a server on
 * a port they choose).
 *
 * @module
 */

/** A free loopback port. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
