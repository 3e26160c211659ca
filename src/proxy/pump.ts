/**
 * Copying bytes between two connections with bounded memory: one small buffer per direction,
 * and each write awaited before the next read, so a slow reader slows the writer down
 * (backpressure) instead of growing a queue.
 *
 * @module
 */

/** Bytes moved by {@link splice}. */
export interface SpliceCounts {
  /** a → b */
  up: number;
  /** b → a */
  down: number;
}

const CHUNK = 16 * 1024;

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

async function copy(
  from: Deno.Conn,
  to: Deno.Conn,
  count: (n: number) => void,
): Promise<void> {
  const buf = new Uint8Array(CHUNK);
  for (;;) {
    const n = await from.read(buf);
    if (n === null) return;
    await writeAll(to, buf.subarray(0, n));
    count(n);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/**
 * Copies `client` ↔ `server` until the connection is over. When the client finishes sending,
 * the server's side is half-closed and the response keeps flowing; when the server finishes
 * (or either side fails), both are closed. Resolves with the byte counts; never rejects.
 */
export async function splice(client: Deno.Conn, server: Deno.Conn): Promise<SpliceCounts> {
  const counts: SpliceCounts = { up: 0, down: 0 };
  const closeBoth = () => {
    closeQuietly(client);
    closeQuietly(server);
  };
  const up = (async () => {
    try {
      await copy(client, server, (n) => counts.up += n);
      await (server as Deno.TcpConn).closeWrite();
    } catch {
      closeBoth();
    }
  })();
  const down = (async () => {
    try {
      await copy(server, client, (n) => counts.down += n);
    } catch {
      // either side went away
    }
    closeBoth();
  })();
  await Promise.all([up, down]);
  return counts;
}

export { writeAll };
