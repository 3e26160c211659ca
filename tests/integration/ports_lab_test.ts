/**
 * Port forwards on the Incus lab (issue 16): a web server in a lab container answers `curl` on
 * the host at 127.0.0.1:<host port> through `tachikoma port forward`; `port list` shows it; a
 * host port in use is one line; `port rm` ends it; `halt` ends the forwards of the sandbox (the
 * relay process is gone, the port closed). The CLI runs as a subprocess of main.ts.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { hostProcesses } from "../../src/lib/processes.ts";
import { labIgnored } from "./lab.ts";
import { openLabWorld } from "./lab_world.ts";
import { ok, type Run, run } from "../testing/run.ts";
import { freePort } from "./stock_lab.ts";

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
    await using world = await openLabWorld({
      prefix: "ports",
      env: { TACHIKOMA_EGRESS: "unrestricted", TACHIKOMA_TMUX_INSTALL: "skip" },
    });
    const { id, repo, cli } = world;
    const curl = (port: number) =>
      run("curl", ["-sS", "--max-time", "10", `http://127.0.0.1:${port}/`], { cwd: repo });

    const spawned = await world.spawn([`ports/${id}`, "--backend", "incus"]);
    const name = spawned.name;
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
  },
});
