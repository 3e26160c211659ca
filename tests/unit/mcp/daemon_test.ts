/**
 * The MCP daemon as a process: one per configuration directory (a second one fails with one
 * line naming the first), `mcp status`, `mcp token`, `mcp stop` (and what a killed daemon
 * leaves), the token file's modes, the listen refusals (non-loopback without
 * `--allow-remote` and TLS, malformed addresses), HTTPS on loopback with a self-signed
 * certificate, and `stop` refusing to signal a process that is not the daemon.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { ConflictError } from "../../../src/lib/errors.ts";
import { mcpPaths, writeMcpRuntime } from "../../../src/mcp/daemon_files.ts";
import { isMcpDaemonCommandLine, stopDaemon } from "../../../src/mcp/daemon_control.ts";
import { eventually, mcpWorld } from "./helpers.ts";
import { bearer, cli, httpClient, startDaemon } from "./http_helpers.ts";

Deno.test("daemon: one per config dir; status, token, stop; a killed daemon leaves nothing that blocks", async () => {
  await using w = await mcpWorld();
  const first = await startDaemon(w);
  try {
    const token = await Deno.stat(`${w.configDir}/mcp/token`);
    assertEquals(token.mode! & 0o777, 0o600);
    assertEquals((await Deno.stat(`${w.configDir}/mcp`)).mode! & 0o777, 0o700);
    assertEquals((await Deno.stat(`${w.configDir}/logs/mcp.log`)).mode! & 0o777, 0o600);

    const second = await cli(w, ["mcp", "--http", "--listen", "127.0.0.1:0"]);
    assertEquals(second.code, 1);
    const line = second.stderr.trim().split("\n")[0];
    assertEquals(
      line,
      `tachikoma: another tachikoma mcp daemon is running for ${w.configDir} (PID ${first.pid}, ${first.url})`,
    );

    const status = await cli(w, ["--json", "mcp", "status"]);
    assertEquals(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout);
    assertEquals([s.running, s.answering, s.pid, s.url], [true, true, first.pid, first.url]);
    assertEquals(s.live.sessions, 0);
    assertEquals(s.live.reaper.enabled, true);
    assertEquals(s.live.reaper.idle_stop_after, "1h");
    const human = await cli(w, ["mcp", "status"]);
    assertStringIncludes(human.stdout, `MCP daemon is running at ${first.url} (PID ${first.pid}`);

    const tok = await cli(w, ["--json", "mcp", "token"]);
    const t = JSON.parse(tok.stdout);
    assertEquals(t.token, first.token);
    assertEquals(t.url, first.url);
    assertEquals(
      t.claude_command,
      `claude mcp add --transport http tachikoma '${first.url}' --header 'Authorization: Bearer ${first.token}'`,
    );
    // The printed line works: a client with that header connects.
    await using client = await httpClient(first.url, bearer(first.token));
    assert((await client.listTools()).tools.length > 10);

    const stop = await cli(w, ["--json", "mcp", "stop"]);
    assertEquals(JSON.parse(stop.stdout), {
      outcome: "stopped",
      pid: first.pid,
      message: `stopped the MCP daemon (PID ${first.pid})`,
    });
    assertEquals(await first.stop(), 0, "a clean exit on SIGTERM");
    await assertRejects(() => Deno.stat(`${w.configDir}/mcp/daemon.json`), Deno.errors.NotFound);
    const log = await Deno.readTextFile(`${w.configDir}/logs/mcp.log`);
    assertMatch(log, /^\d{4}-\d\d-\d\dT\S+ mcp: listening on /m);
    assertMatch(log, /mcp: stopping \(SIGTERM\)/);
    const again = await cli(w, ["--json", "mcp", "stop"]);
    assertEquals(JSON.parse(again.stdout).outcome, "not_running");
    const down = JSON.parse((await cli(w, ["--json", "mcp", "status"])).stdout);
    assertEquals([down.running, down.answering, down.pid], [false, false, null]);
  } finally {
    await first.stop();
  }

  // SIGKILL: the kernel drops the lock; the stale record does not block a new daemon.
  const killed = await startDaemon(w);
  killed.child.kill("SIGKILL");
  await killed.stop();
  const stale = JSON.parse((await cli(w, ["--json", "mcp", "status"])).stdout);
  assertEquals(stale.running, false);
  await using next = await startDaemon(w);
  assertEquals((await cli(w, ["--json", "mcp", "token"])).stdout.includes(next.token), true);
  assertEquals(next.token, killed.token, "the token is kept across restarts");
});

Deno.test("daemon: listen refusals name the flag or key; --listen needs --http", async () => {
  await using w = await mcpWorld();
  const cases: [string[], Record<string, string>, RegExp][] = [
    [
      ["mcp", "--http", "--listen", "0.0.0.0:8765"],
      {},
      /refusing to listen on 0\.0\.0\.0:8765: not a loopback address/,
    ],
    [
      ["mcp", "--http", "--listen", "10.213.0.1:8765", "--allow-remote"],
      {},
      /--allow-remote needs --tls-cert and --tls-key/,
    ],
    [["mcp", "--http", "--tls-cert", "/x.pem"], {}, /--tls-cert and --tls-key go together/],
    [["mcp", "--http", "--listen", "nope"], {}, /--listen: expected host:port .*got 'nope'/],
    [["mcp", "--http"], { TACHIKOMA_MCP_LISTEN: "8765" }, /mcp\.listen: expected host:port/],
    [
      ["mcp", "--http"],
      { TACHIKOMA_MCP_IDLE_STOP_AFTER: "1 hour" },
      /TACHIKOMA_MCP_IDLE_STOP_AFTER: expected a duration like 30m/,
    ],
    [
      ["mcp", "--listen", "127.0.0.1:1"],
      {},
      /--listen, --allow-remote and --tls-\* go with --http/,
    ],
    [
      ["mcp", "--http", "--listen", "127.0.0.1:0", "--tls-cert", "/no/cert", "--tls-key", "/k"],
      {},
      /--tls-cert: cannot read \/no\/cert: no such file/,
    ],
  ];
  for (const [args, env, expected] of cases) {
    const r = await cli(w, args, env);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assertMatch(r.stderr, expected);
  }
  await assertRejects(() => Deno.stat(`${w.configDir}/mcp/daemon.json`), Deno.errors.NotFound);
});

Deno.test("daemon: HTTPS on loopback with a self-signed certificate", async () => {
  await using w = await mcpWorld();
  const dir = await Deno.makeTempDir({ prefix: "tk-mcp-tls-" });
  try {
    const made = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=serverAuth",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assertEquals(made.code, 0, new TextDecoder().decode(made.stderr));
    await using d = await startDaemon(w, {
      args: ["--tls-cert", `${dir}/cert.pem`, "--tls-key", `${dir}/key.pem`],
    });
    assertMatch(d.url, /^https:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const http = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(`${dir}/cert.pem`)] });
    try {
      const tlsFetch: typeof fetch = (input, init) => fetch(input, { ...init, client: http });
      await using client = await httpClient(d.url, bearer(d.token), { fetch: tlsFetch });
      const listed = await client.callTool({ name: "list_sandboxes", arguments: { all: true } });
      assertEquals((listed.structuredContent as { sandboxes: unknown[] }).sandboxes, []);
      const plain = await fetch(d.url.replace("https:", "http:"), { headers: bearer(d.token) })
        .then((r) => r.status, () => "refused");
      assert(plain !== 200, "no plain HTTP on the TLS port");
      const status = JSON.parse((await cli(w, ["--json", "mcp", "status"])).stdout);
      assertEquals([status.running, status.answering], [true, true], status.reason);
    } finally {
      http.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("daemon: stop never signals a PID that is not the daemon; a command line is recognised", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tk-mcp-stop-" });
  const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    const paths = mcpPaths(dir);
    await writeMcpRuntime(paths, {
      pid: sleeper.pid,
      url: "http://127.0.0.1:1/mcp",
      host: "127.0.0.1",
      port: 1,
      tls: false,
      tls_cert: null,
      started_at: new Date().toISOString(),
      version: "0",
      log: paths.log,
    });
    // Nobody holds the lock: nothing runs, whatever the record says.
    assertEquals((await stopDaemon(paths)).outcome, "not_running");
    const lock = await Deno.open(paths.lock, { read: true, write: true, create: true });
    try {
      lock.lockSync(true);
      await assertRejects(() => stopDaemon(paths), ConflictError, "not a tachikoma MCP daemon");
    } finally {
      lock.close();
    }
    await eventually("the sleeper still runs", async () => {
      const stat = await Deno.readTextFile(`/proc/${sleeper.pid}/stat`).catch(() => "");
      return stat !== "" && !/\) [ZX] /.test(stat);
    }, 1000);
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
    await Deno.remove(dir, { recursive: true });
  }
  assert(isMcpDaemonCommandLine("/usr/local/bin/tachikoma mcp --http --listen 127.0.0.1:8765"));
  assert(isMcpDaemonCommandLine("deno run -A /src/main.ts -v mcp --http"));
  assert(!isMcpDaemonCommandLine("tachikoma mcp"));
  assert(!isMcpDaemonCommandLine("sleep 30"));
});
