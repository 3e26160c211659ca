/**
 * A flat apt repository on the lab bridge's host address, made from packages installed on the
 * host (repacked with dpkg-deb from `dpkg -L` and `dpkg-query`), so a lab guest can install them
 * with its own apt-get without reaching any mirror. Used to install tmux in the sessions lab test.
 * The host must run the guest's distribution (the lab: Debian 12 on both sides).
 *
 * @module
 */

const dec = new TextDecoder();

async function out(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${dec.decode(r.stderr)}`);
  return dec.decode(r.stdout);
}

const CONTROL = "Package: ${Package}\nVersion: ${Version}\nArchitecture: ${Architecture}\n" +
  "Maintainer: ${Maintainer}\nDepends: ${Depends}\nSection: ${Section}\nPriority: ${Priority}\n" +
  "Description: ${Description}\n";

/** Repacks the installed package `pkg` into `dir/<pkg>.deb`. */
async function repack(pkg: string, dir: string): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: `tk-repack-${pkg}-` });
  try {
    const files = (await out("dpkg", ["-L", pkg])).split("\n").filter((p) => p.startsWith("/"));
    const plain: string[] = [];
    for (const f of files) {
      const st = await Deno.lstat(f).catch(() => null);
      if (st && !st.isDirectory) plain.push(f.slice(1));
    }
    await Deno.mkdir(`${root}/DEBIAN`);
    // Copy with parents, modes and links kept (cp -a --parents from /).
    if (plain.length) await out("cp", ["-a", "--parents", ...plain, root], "/");
    const control = (await out("dpkg-query", ["-W", `-f=${CONTROL}`, pkg]))
      .split("\n").filter((l) => !/^[A-Za-z-]+: ?$/.test(l)).join("\n").replace(/\n*$/, "\n");
    await Deno.writeTextFile(`${root}/DEBIAN/control`, control);
    const deb = `${dir}/${pkg}.deb`;
    await out("dpkg-deb", ["--root-owner-group", "-Zgzip", "--build", root, deb]);
    return deb;
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A running repository. */
export interface HostAptRepo extends AsyncDisposable {
  /** `deb [trusted=yes] http://<host>:<port>/ ./` */
  sourcesLine: string;
}

/** Builds the repository from the host's installed `packages` and serves it on `hostname`. */
export async function hostAptRepo(hostname: string, packages: string[]): Promise<HostAptRepo> {
  const dir = await Deno.makeTempDir({ prefix: "tk-apt-" });
  const files = new Map<string, Uint8Array<ArrayBuffer>>();
  let index = "";
  for (const pkg of packages) {
    const deb = await repack(pkg, dir);
    const bytes = await Deno.readFile(deb);
    const name = `${pkg}.deb`;
    files.set(`/${name}`, bytes);
    index += (await out("dpkg-deb", ["-f", deb])).replace(/\n*$/, "\n") +
      `Filename: ./${name}\nSize: ${bytes.length}\nSHA256: ${await sha256(bytes)}\n\n`;
  }
  const packagesBytes = new TextEncoder().encode(index);
  files.set("/Packages", packagesBytes);
  files.set(
    "/Release",
    new TextEncoder().encode(
      `Origin: tachikoma-test\nLabel: tachikoma-test\nSHA256:\n ${await sha256(
        packagesBytes,
      )} ${packagesBytes.length} Packages\n`,
    ),
  );
  const server = Deno.serve({ hostname, port: 0, onListen() {} }, (req) => {
    const body = files.get(new URL(req.url).pathname);
    return body ? new Response(body) : new Response("not found", { status: 404 });
  });
  return {
    sourcesLine: `deb [trusted=yes] http://${hostname}:${server.addr.port}/ ./`,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
