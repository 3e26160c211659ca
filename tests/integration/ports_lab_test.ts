/**
 * Port forwards on the Incus lab (issue 16): a web server in a lab container answers `curl` on
 * the host at 127.0.0.1:<host port> through `tachikoma port forward`; `port list` shows it; a
 * host port in use is one line; `port rm` ends it; `halt` ends the forwards of the sandbox (the
 * relay process is gone, the port closed). The CLI runs as a subprocess of main.ts.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { IncusBackend, IncusClient } from "../../src/backends/incus/mod.ts";
import { hostProcesses } from "../../src/lib/processes.ts";
import { labEnv, labIgnored } from "./lab.ts";
import { freePort } from "./stock_lab.ts";

const lab = labEnv();
const ROOT = new URL("../../", import.meta.url).pathname;
const dec = new TextDecoder();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  cmd: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<Run> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    clearEnv: options.env !== undefined,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function ok(r: Run, what: string): Run {
  assertEquals(r.code, 0, `${what} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** A one-file web server for a guest with python3-minimal (socket only): argv port, body. */
const SERVER = [
  "import socket, sys",
  "s = socket.socket()",
  "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)",
  "s.bind(('0.0.0.0', int(sys.argv[1])))",
  "s.listen(8)",
  "body = sys.argv[2].encode()",
  "while True:",
  "    c, _ = s.accept()",
  "    c.recv(65536)",
  "    c.sendall(b'HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body) + body)",
  "    c.close()",
].join("\n");

Deno.test({
  name: "incus lab: port forward answered with curl on the host; list, in use, rm, ended by halt",
  ignore: labIgnored(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const top = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "tk-ports-" });
    const id = top.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, "x");
    const repo = `${top}/tkt-ports-${id}`;
    const home = `${top}/home`;
    await Deno.mkdir(repo, { recursive: true });
    await Deno.mkdir(home);
    const realHome = Deno.env.get("HOME") ?? "/root";
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: home,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${realHome}/.cache/deno`,
      TACHIKOMA_CONFIG_DIR: `${top}/config`,
      TACHIKOMA_BASE_IMAGE: lab!.image,
      TACHIKOMA_INCUS_SOCKET: lab!.socket,
      TACHIKOMA_CREDENTIAL_PROXY: "false",
      TACHIKOMA_EGRESS: "unrestricted",
      TACHIKOMA_CLAUDE_INSTALL: "skip",
      TACHIKOMA_TMUX_INSTALL: "skip",
      TACHIKOMA_VM_CPUS: "1",
      TACHIKOMA_VM_MEMORY: "1024",
      NO_COLOR: "1",
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.invalid",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.invalid",
    };
    const cli = (args: string[], cwd = repo) =>
      run(Deno.execPath(), [
        "run",
        "-A",
        "--frozen",
        "--config",
        `${ROOT}deno.json`,
        `${ROOT}main.ts`,
        ...args,
      ], { cwd, env });
    const curl = (port: number) =>
      run("curl", ["-sS", "--max-time", "10", `http://127.0.0.1:${port}/`], { cwd: repo });

    const client = await IncusClient.open({ socket: lab!.socket });
    const backend = new IncusBackend(client, {
      endpoint: { socket: lab!.socket },
      cpus: 1,
      memoryMb: 1024,
      sshUser: "admin",
      sshPort: 22,
    });
    let name = "";
    try {
      ok(await run("git", ["init", "-q", "-b", "main"], { cwd: repo, env }), "git init");
      await Deno.writeTextFile(`${repo}/README.md`, "hello\n");
      ok(await run("git", ["add", "."], { cwd: repo, env }), "git add");
      ok(await run("git", ["commit", "-qm", "init"], { cwd: repo, env }), "git commit");
      const spawned = JSON.parse(
        ok(
          await cli(["spawn", `ports/${id}`, "--backend", "incus", "--no-attach", "--json"]),
          "spawn",
        )
          .stdout,
      );
      name = spawned.name;
      const wt = (args: string[]) => cli(args, spawned.worktree_path);
      const body = `hello-from-${id}`;
      ok(
        await wt([
          "exec",
          "--",
          "sh",
          "-c",
          'setsid python3 -c "$1" 8000 "$2" </dev/null >/dev/null 2>&1 &',
          "sh",
          SERVER,
          body,
        ]),
        "start the guest's server",
      );

      const hostPort = freePort();
      // The guest server may take a moment to listen: the forward exists at once, curl retries.
      const fwd = JSON.parse(
        ok(await wt(["port", "forward", "8000", String(hostPort), "--json"]), "port forward")
          .stdout,
      );
      assertEquals(
        [fwd.sandbox, fwd.guest_port, fwd.host_port, fwd.bind],
        [name, 8000, hostPort, "127.0.0.1"],
      );
      let answer: Run | null = null;
      for (let i = 0; i < 50; i++) {
        answer = await curl(hostPort);
        if (answer.code === 0) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assertEquals(answer!.stdout, body, answer!.stderr);
      // Twice more: one relay serves every connection.
      assertEquals((await curl(hostPort)).stdout, body);

      const listed = JSON.parse(ok(await wt(["port", "list", "--json"]), "port list").stdout);
      assertEquals(listed.forwards.map((f: { host_port: number }) => f.host_port), [hostPort]);
      assertStringIncludes(ok(await wt(["port", "list"]), "list").stdout, `127.0.0.1:${hostPort}`);

      const busy = await wt(["port", "forward", name, "8000", String(hostPort)]);
      assertEquals(busy.code, 1);
      assertStringIncludes(busy.stderr, `port 127.0.0.1:${hostPort} is in use`);
      const bad = await wt(["port", "forward", "80000"]);
      assertEquals(bad.code, 2);
      assertStringIncludes(bad.stderr, 'guest port "80000" is not a port');

      const removed = JSON.parse(
        ok(await wt(["port", "rm", String(hostPort), "--json"]), "port rm").stdout,
      );
      assertEquals(removed.removed.length, 1);
      assert((await curl(hostPort)).code !== 0, "the port is closed after rm");
      const again = await wt(["port", "rm", String(hostPort)]);
      assertEquals(again.code, 3);

      // halt ends the sandbox's forwards.
      const second = JSON.parse(
        ok(await wt(["port", "forward", "8000", String(hostPort), "--json"]), "forward again")
          .stdout,
      );
      ok(await wt(["halt"]), "halt");
      assertEquals(await hostProcesses.alive(second.pid), false, "the relay ended with halt");
      // (halt waits until the relay is gone, so no polling here.)
      assert((await curl(hostPort)).code !== 0, "the port is closed after halt");
      assertEquals(JSON.parse(ok(await wt(["port", "list", "--json"]), "list").stdout), {
        forwards: [],
      });
    } finally {
      await cli(["proxy", "stop"]).catch(() => {});
      if (name) await backend.delete(name).catch(() => {});
      await backend.close();
      await Deno.remove(top, { recursive: true }).catch(() => {});
    }
  },
});
