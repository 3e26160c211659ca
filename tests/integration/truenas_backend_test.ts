/**
 * The TrueNAS backend on the fake TrueNAS whose instances are real lab containers from the
 * lab's stock image: create (the real first-boot bootstrap: apt, user, sudo, sshd) → start →
 * exec over SSH → files → checkpoint → restore → clone → delete, and the faults (wrong API key,
 * server too old, certificate that does not verify, socket dropped mid-job, failing job): one
 * line naming the host, no ghost container left. Every container is `tn<random>-px-…`; only
 * this fake's own are removed.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { ConfigSchema } from "../../src/config/schema.ts";
import { openTruenas } from "../../src/backends/truenas/mod.ts";
import type { TruenasBackend } from "../../src/backends/truenas/backend.ts";
import { FakeTruenas } from "../fixtures/truenas/server.ts";
import { IncusWorld } from "../fixtures/truenas/incus_world.ts";
import { labEnv, labIgnored } from "./lab.ts";
import { systemClock } from "../../src/lib/clock.ts";

const lab = labEnv();
const ignore = labIgnored() || !lab?.imageServer;
const opts = { ignore, sanitizeOps: false, sanitizeResources: false };
const KEY = "1-labFakeTrueNASkey-0123456789abcdef";
const dec = new TextDecoder();

interface Rig {
  server: FakeTruenas;
  world: IncusWorld;
  stateDir: string;
  open(overrides?: Record<string, unknown>, scheme?: "ws" | "wss"): Promise<TruenasBackend>;
  [Symbol.asyncDispose](): Promise<void>;
}

async function rig(tls?: { cert: string; key: string }): Promise<Rig> {
  const server = lab!.imageServer!;
  const world = new IncusWorld(lab!.socket, {
    url: server.url,
    certificate: await Deno.readTextFile(server.cert),
    alias: server.stock,
  });
  const fake = new FakeTruenas({ world, apiKey: KEY, tls });
  await fake.start();
  const stateDir = await Deno.makeTempDir({ prefix: "tn-state-" });
  const opened: TruenasBackend[] = [];
  return {
    server: fake,
    world,
    stateDir,
    async open(overrides = {}, scheme = "ws") {
      const config = ConfigSchema.parse({
        backend: "truenas",
        ssh_user: "dev",
        vm_cpus: 1,
        vm_memory: 1024,
        base_image: "debian/12",
        truenas: { host: "127.0.0.1", port: fake.port, api_key: KEY, ...overrides },
      });
      const b = await openTruenas(config, { stateDir }, { scheme });
      opened.push(b);
      return b;
    },
    async [Symbol.asyncDispose]() {
      for (const b of opened) await b.close().catch(() => {});
      await fake.stop();
      await world.cleanup();
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    },
  };
}

async function untilSsh(b: TruenasBackend, name: string): Promise<number> {
  const started = Date.now();
  const deadline = systemClock.now() + 240_000;
  await b.waitForAddress(name, { deadline, clock: systemClock });
  let last = "";
  while (systemClock.now() < deadline) {
    try {
      const r = await b.exec(name, { argv: ["true"], timeoutMs: 10_000 });
      if (r.code === 0) return Date.now() - started;
      last = `exit ${r.code}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await systemClock.sleep(1000);
  }
  throw new Error(`no SSH to ${name} after the first boot: ${last}`);
}

Deno.test({
  name:
    "truenas lab: create (bootstrap) → start → exec → files → checkpoint → restore → clone → delete",
  ...opts,
  async fn() {
    await using r = await rig();
    const b = await r.open();
    const name = "web";
    // The socket drops right after the create job's id: the backend re-authenticates and polls.
    r.server.faults.dropAfterJobReply = "virt.instance.create";
    let t = Date.now();
    await b.create(name, { image: "debian/12" });
    const createMs = Date.now() - t;
    assertEquals(r.server.logins, 2);
    assertEquals((await b.get(name)).state, "stopped");
    await b.start(name, { shares: [] });
    const sshMs = await untilSsh(b, name);
    console.error(`truenas lab: create ${createMs} ms, start → SSH (first boot) ${sshMs} ms`);

    const id = await b.exec(name, { argv: ["sh", "-c", "id -u; id -nG; sudo -n id -u"] });
    assertEquals(id.code, 0, dec.decode(id.stderr));
    const [uid, groups, rootUid] = dec.decode(id.stdout).trim().split("\n");
    assertEquals(uid, "1000");
    assert(groups.split(" ").includes("sudo"), groups);
    assertEquals(rootUid, "0");
    const hostile = 'it\'s $(whoami) `id`\n"ü"';
    const echo = await b.exec(name, { argv: ["printf", "%s", hostile] });
    assertEquals(dec.decode(echo.stdout), hostile);

    await b.pushFile(name, {
      path: "/home/dev/notes/a file.txt",
      data: new TextEncoder().encode(hostile),
    });
    assertEquals(dec.decode(await b.pullFile(name, "/home/dev/notes/a file.txt")), hostile);

    await b.createCheckpoint(name, "clean");
    await b.pushFile(name, {
      path: "/home/dev/later.txt",
      data: new TextEncoder().encode("later"),
    });
    assertEquals((await b.listCheckpoints(name)).map((c) => c.name), ["clean"]);
    await b.restoreCheckpoint(name, "clean");
    await untilSsh(b, name);
    const gone = await b.exec(name, { argv: ["test", "-e", "/home/dev/later.txt"] });
    assertEquals(gone.code, 1, "the restore dropped the later file");
    assertEquals(dec.decode(await b.pullFile(name, "/home/dev/notes/a file.txt")), hostile);

    t = Date.now();
    await b.clone("copy", { sandbox: name, checkpoint: "clean" });
    await b.start("copy", { shares: [] });
    await untilSsh(b, "copy");
    console.error(`truenas lab: clone → SSH ${Date.now() - t} ms`);
    assertEquals(dec.decode(await b.pullFile("copy", "/home/dev/notes/a file.txt")), hostile);

    await b.delete("copy");
    await b.deleteCheckpoint(name, "clean");
    await b.delete(name);
    assertEquals(await b.list(), []);
    assertEquals(await r.world.list(), [], "no container left in Incus");
  },
});

Deno.test({
  name: "truenas lab: wrong key, too old, failing job → one line naming the host, no ghost",
  ...opts,
  async fn() {
    await using r = await rig();
    const host = `127.0.0.1:${r.server.port}`;
    const wrong = await r.open({ api_key: "1-not-the-right-key-000000" });
    const e1 = await assertRejects(() => wrong.create("a", { image: "debian/12" }));
    assertEquals(
      (e1 as Error).message,
      `TrueNAS ${host}: auth.login_ex: the server refused the API key of user root (AUTH_ERR)`,
    );
    assert(!(e1 as Error).message.includes("not-the-right"));

    r.server.version = "TrueNAS-SCALE-24.10.2.1";
    const old = await r.open();
    const e2 = await assertRejects(() => old.create("a", { image: "debian/12" }));
    assertMatch((e2 as Error).message, new RegExp(`^TrueNAS ${host} runs TrueNAS-SCALE-24\\.10`));
    r.server.version = "TrueNAS-25.04.2.4";

    const b = await r.open();
    r.server.faults.failJob = { method: "virt.instance.stop", error: "[EFAULT] stop failed" };
    const e3 = await assertRejects(() => b.create("a", { image: "debian/12" }));
    assertMatch((e3 as Error).message, new RegExp(`^TrueNAS ${host}: virt\\.instance\\.stop`));
    assert(!(e3 as Error).message.includes("\n"));
    assertEquals(await r.world.list(), [], "the half-made container is gone from Incus");
  },
});

Deno.test({
  name: "truenas lab: a certificate that does not verify → one line naming the host",
  ...opts,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "tn-cert-" });
    try {
      const gen = await new Deno.Command("openssl", {
        args: [
          "req",
          "-x509",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-keyout",
          `${dir}/k.pem`,
          "-out",
          `${dir}/c.pem`,
          "-days",
          "1",
          "-subj",
          "/CN=127.0.0.1",
        ],
        stdout: "null",
        stderr: "null",
      }).output();
      assert(gen.success);
      await using r = await rig({
        cert: await Deno.readTextFile(`${dir}/c.pem`),
        key: await Deno.readTextFile(`${dir}/k.pem`),
      });
      const b = await r.open({}, "wss");
      const e = await assertRejects(() => b.list());
      assertMatch(
        (e as Error).message,
        new RegExp(
          `^TrueNAS 127\\.0\\.0\\.1:${r.server.port}: connecting: the TLS certificate does not verify`,
        ),
      );
      assert(!(e as Error).message.includes("\n"));
      assertEquals(r.server.logins, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
