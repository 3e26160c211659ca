/**
 * The baseline of `tachikoma exec -- true` in bench/incus_bench.ts: a Deno program that does
 * nothing but one Incus API exec of `true` (POST /exec without websockets, wait for the
 * operation), started as a process exactly like the CLI is.
 *
 * Run: deno run -A --frozen bench/incus_exec_bare.ts <socket> <instance>
 *
 * @module
 */
const [socket, name] = Deno.args;
const client = Deno.createHttpClient({
  proxy: { transport: "unix", path: socket },
  http2: false,
  poolMaxIdlePerHost: 0,
});
interface Doc {
  type?: string;
  error?: string;
  operation?: string;
  metadata?: { status_code?: number; metadata?: { return?: number } };
}
async function api(method: string, path: string, body?: unknown): Promise<Doc> {
  const r = await fetch(`http://localhost${path}`, {
    method,
    client,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const doc = await r.json() as Doc;
  if (doc.type === "error") throw new Error(`${method} ${path}: ${doc.error}`);
  return doc;
}
const op = await api("POST", `/1.0/instances/${name}/exec`, {
  command: ["true"],
  "wait-for-websocket": false,
  "record-output": false,
  interactive: false,
});
const done = await api("GET", `${op.operation}/wait?timeout=60`);
client.close();
Deno.exit(done.metadata?.status_code === 200 ? done.metadata.metadata?.return ?? 1 : 1);
