/**
 * The lab's image server, started by `tests/lab/up.sh` (phase 6) as a daemon: static files over
 * HTTPS with a self-signed certificate (the simplestreams tree Incus pulls stock images from)
 * and over plain HTTP (the apt repository the stock image's guests install packages from; a
 * stock image has no CA certificates yet). GET and HEAD only, no directory listings, nothing
 * outside the served directories. One access line per request on stderr (the daemon log).
 *
 * Usage: deno run --allow-net --allow-read image_server.ts \
 *   --https 127.0.0.1:18443=/srv/simplestreams --cert cert.pem --key key.pem \
 *   --http 10.213.0.1:18080=/srv/apt
 *
 * @module
 */

interface Site {
  hostname: string;
  port: number;
  root: string;
  tls: boolean;
}

const TYPES: Record<string, string> = {
  json: "application/json",
  xz: "application/x-xz",
  squashfs: "application/octet-stream",
  deb: "application/vnd.debian.binary-package",
};

function fail(message: string): never {
  console.error(`image_server: ${message}`);
  Deno.exit(2);
}

function parseSite(spec: string, tls: boolean): Site {
  const m = /^([0-9.]+):(\d+)=(\/.+)$/.exec(spec);
  if (!m) fail(`bad site ${JSON.stringify(spec)} (want ADDRESS:PORT=/DIR)`);
  return { hostname: m[1], port: Number(m[2]), root: m[3].replace(/\/+$/, ""), tls };
}

function parseArgs(args: string[]): { sites: Site[]; cert?: string; key?: string } {
  const sites: Site[] = [];
  let cert: string | undefined;
  let key: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const value = args[i + 1];
    if (value === undefined) fail(`${args[i]} needs a value`);
    switch (args[i]) {
      case "--https":
        sites.push(parseSite(value, true));
        break;
      case "--http":
        sites.push(parseSite(value, false));
        break;
      case "--cert":
        cert = value;
        break;
      case "--key":
        key = value;
        break;
      default:
        fail(`unknown argument ${args[i]}`);
    }
    i++;
  }
  if (sites.length === 0) fail("nothing to serve (--https or --http)");
  if (sites.some((s) => s.tls) && (!cert || !key)) fail("--https needs --cert and --key");
  return { sites, cert, key };
}

/** The file under `root` that a request path names, or null (traversal, dotfiles, bad escapes). */
function fileFor(root: string, pathname: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  const parts = decoded.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length === 0) return null;
  if (parts.some((p) => p === ".." || p.startsWith(".") || p.includes("\0"))) return null;
  return `${root}/${parts.join("/")}`;
}

async function serveFile(site: Site, request: Request): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  const path = fileFor(site.root, new URL(request.url).pathname);
  if (!path) return new Response("not found\n", { status: 404 });
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    return new Response("not found\n", { status: 404 });
  }
  const stat = await file.stat();
  if (!stat.isFile) {
    file.close();
    return new Response("not found\n", { status: 404 });
  }
  const ext = path.slice(path.lastIndexOf(".") + 1);
  const headers = {
    "content-type": TYPES[ext] ?? "application/octet-stream",
    "content-length": String(stat.size),
  };
  if (request.method === "HEAD") {
    file.close();
    return new Response(null, { headers });
  }
  return new Response(file.readable, { headers });
}

const { sites, cert, key } = parseArgs(Deno.args);
const certText = cert ? Deno.readTextFileSync(cert) : undefined;
const keyText = key ? Deno.readTextFileSync(key) : undefined;
for (const site of sites) {
  const handler = async (request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => {
    const response = await serveFile(site, request);
    const path = new URL(request.url).pathname;
    console.error(
      `${new Date().toISOString()} ${info.remoteAddr.hostname} ${request.method} ` +
        `${site.tls ? "https" : "http"}:${site.port}${path} ${response.status}`,
    );
    return response;
  };
  const options = {
    hostname: site.hostname,
    port: site.port,
    onListen: () =>
      console.error(
        `image_server: ${site.tls ? "https" : "http"}://${site.hostname}:${site.port}/ ← ${site.root}`,
      ),
  };
  if (site.tls) Deno.serve({ ...options, cert: certText!, key: keyText! }, handler);
  else Deno.serve(options, handler);
}
