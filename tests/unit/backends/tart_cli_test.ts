import { assertEquals, assertMatch, assertRejects, assertThrows } from "@std/assert";
import { TartCli } from "../../../src/backends/tart/cli.ts";
import { tartError } from "../../../src/backends/tart/errors.ts";
import {
  ConflictError,
  NotFoundError,
  RuntimeError,
  UnreachableError,
  UsageError,
} from "../../../src/lib/errors.ts";
import { fail, listJson, ok, ScriptedRunner } from "./tart_doubles.ts";

const NOT_EXIST = (n: string) => fail(2, `the specified VM "${n}" does not exist\n`);

function cli(runner: ScriptedRunner, env?: Record<string, string>) {
  return new TartCli(runner, { binary: "/opt/tart", env });
}

Deno.test("list/find: --format json, exact local name match, OCI entries ignored", async () => {
  const runner = new ScriptedRunner().on(
    ["list"],
    ok(listJson(["vm-a", "running"], ["vm-ab", "stopped"])),
  );
  const tart = cli(runner, { TART_HOME: "/th" });
  assertEquals((await tart.find("vm-a"))?.state, "running");
  assertEquals(await tart.find("vm"), undefined);
  assertEquals(runner.calls[0].cmd, "/opt/tart");
  assertEquals(runner.calls[0].args, ["list", "--format", "json"]);
  assertEquals(runner.calls[0].options.env, { TART_HOME: "/th" });
  const oci = new ScriptedRunner().on(
    ["list"],
    ok(JSON.stringify([{ Name: "x", Source: "OCI", State: "stopped" }])),
  );
  assertEquals(await cli(oci).find("x"), undefined);
});

Deno.test("list: failure maps to a typed error carrying tart's stderr", async () => {
  const runner = new ScriptedRunner().on(["list"], fail(1, "TART_HOME is invalid: denied\n"));
  const error = await assertRejects(() => cli(runner).list(), RuntimeError);
  assertMatch(error.message, /tart list.*exit 1.*TART_HOME is invalid: denied/);
});

Deno.test("get: argv and Size-as-string parsing; exit 2 → NotFoundError", async () => {
  const runner = new ScriptedRunner()
    .once(["get", "vm"], ok('{"CPU" : 2, "Memory" : 2048, "Size" : "1.500", "State" : "stopped"}'))
    .once(["get", "gone"], NOT_EXIST("gone"));
  const d = await cli(runner).get("vm");
  assertEquals([d.cpu, d.memoryMb, d.sizeGb], [2, 2048, 1.5]);
  assertEquals(runner.calls[0].args, ["get", "vm", "--format", "json"]);
  await assertRejects(() => cli(runner).get("gone"), NotFoundError, "does not exist");
});

Deno.test("clone refuses to overwrite (tart would silently replace it), checking list first", async () => {
  const runner = new ScriptedRunner().on(["list"], ok(listJson(["taken", "running"])));
  const error = await assertRejects(() => cli(runner).clone("ubuntu", "taken"), ConflictError);
  assertMatch(error.message, /already exists/);
  assertEquals(runner.argsOf("clone"), []);
});

Deno.test("clone: argv, and a missing source is NotFoundError with a hint", async () => {
  const runner = new ScriptedRunner()
    .on(["list"], ok("[]"))
    .once(["clone"], ok(""), NOT_EXIST("nope"));
  await cli(runner).clone("ghcr.io/cirruslabs/ubuntu:latest", "new-vm");
  assertEquals(runner.argsOf("clone"), [["clone", "ghcr.io/cirruslabs/ubuntu:latest", "new-vm"]]);
  const error = await assertRejects(() => cli(runner).clone("nope", "other"), NotFoundError);
  assertMatch(error.hint ?? "", /tart clone ghcr.io/);
  assertThrows(() => cli(runner).runArgs("a/b", { noGraphics: true, dirs: [] }), UsageError);
});

Deno.test("local names with '/' or a leading '-' are refused before tart runs", async () => {
  const runner = new ScriptedRunner();
  await assertRejects(() => cli(runner).clone("ubuntu", "a/b"), UsageError);
  await assertRejects(() => cli(runner).stop("--timeout", 1), UsageError);
  await assertRejects(() => cli(runner).clone("-x", "ok"), UsageError);
  assertEquals(runner.calls.length, 0);
});

Deno.test("set: only the given settings, in tart's units (MB, GB)", async () => {
  const runner = new ScriptedRunner().on(["set"], ok());
  await cli(runner).set("vm", { cpu: 2, memoryMb: 4096, diskSizeGb: 80 });
  await cli(runner).set("vm", { cpu: 8 });
  await cli(runner).set("vm", {});
  assertEquals(runner.argsOf("set"), [
    ["set", "vm", "--cpu", "2", "--memory", "4096", "--disk-size", "80"],
    ["set", "vm", "--cpu", "8"],
  ]);
  await assertRejects(() => cli(runner).set("vm", { cpu: 0 }), UsageError);
  await assertRejects(() => cli(runner).set("vm", { memoryMb: 1.5 }), UsageError);
});

Deno.test("stop: --timeout; 'is not running' (exit 2) is success; missing is NotFound", async () => {
  const runner = new ScriptedRunner()
    .once(["stop", "a"], ok())
    .once(["stop", "b"], fail(2, 'VM "b" is not running\n'))
    .once(["stop", "c"], NOT_EXIST("c"));
  assertEquals(await cli(runner).stop("a", 30), "stopped");
  assertEquals(await cli(runner).stop("b", 0), "was-not-running");
  await assertRejects(() => cli(runner).stop("c", 5), NotFoundError);
  assertEquals(runner.argsOf("stop")[0], ["stop", "a", "--timeout", "30"]);
  assertEquals(runner.argsOf("stop")[1], ["stop", "b", "--timeout", "0"]);
});

Deno.test("delete: missing → false; running (exit 1) → error", async () => {
  const runner = new ScriptedRunner()
    .once(["delete", "a"], ok())
    .once(["delete", "b"], NOT_EXIST("b"))
    .once(["delete", "c"], fail(1, 'VM "c" is running\n'));
  assertEquals(await cli(runner).delete("a"), true);
  assertEquals(await cli(runner).delete("b"), false);
  await assertRejects(() => cli(runner).delete("c"), RuntimeError, 'VM "c" is running');
});

Deno.test("ip: --wait and --resolver; exit 1 → null; exit 2 → NotFound; garbage → null", async () => {
  const runner = new ScriptedRunner()
    .once(["ip", "a"], ok("192.168.64.7\n"))
    .once(["ip", "b"], fail(1, "no IP address found\n"))
    .once(["ip", "c"], NOT_EXIST("c"))
    .once(["ip", "d"], ok("oops\n"));
  assertEquals(await cli(runner).ip("a", "arp", { waitSecs: 7 }), "192.168.64.7");
  assertEquals(runner.calls[0].args, ["ip", "a", "--wait", "7", "--resolver", "arp"]);
  assertEquals(await cli(runner).ip("b", "dhcp"), null);
  await assertRejects(() => cli(runner).ip("c", "dhcp", { waitSecs: 1 }), NotFoundError);
  assertEquals(await cli(runner).ip("d", "agent", { waitSecs: 1 }), null);
});

Deno.test("exec: argv verbatim after the name, no '--', -i only with stdin, never -t", async () => {
  const runner = new ScriptedRunner().on(["exec"], ok("out"));
  const hostile = ["sh", "-c", 'echo "$1"', "--", "a'b $(rm -rf /) `x`\nnew line ü"];
  await cli(runner).exec("vm", hostile);
  await cli(runner).exec("vm", ["cat"], { stdin: "data" });
  const [plain, withStdin] = runner.argsOf("exec");
  assertEquals(plain, ["exec", "vm", ...hostile]);
  assertEquals(withStdin, ["exec", "-i", "vm", "cat"]);
  assertEquals(runner.calls[1].options.stdin, "data");
  assertEquals(runner.calls.some((c) => c.args.includes("-t")), false);
  assertThrows(() => cli(runner).exec("vm", []), UsageError);
});

Deno.test("runArgs: --no-graphics, one --dir per share, name last", () => {
  const tart = cli(new ScriptedRunner());
  assertEquals(
    tart.runArgs("vm", { noGraphics: true, dirs: ["--dir", "code:/w", "--dir", "r:/r:ro"] }),
    ["run", "--no-graphics", "--dir", "code:/w", "--dir", "r:/r:ro", "vm"],
  );
  assertEquals(tart.runArgs("vm", { noGraphics: false, dirs: [] }), ["run", "vm"]);
});

Deno.test("tartError: exit codes map to typed errors", () => {
  const r = (code: number, stderr: string, timedOut = false) => ({
    code,
    stderr,
    stdout: "",
    timedOut,
  });
  assertEquals(
    tartError("get", r(2, 'the specified VM "x" does not exist'), "x") instanceof NotFoundError,
    true,
  );
  assertEquals(
    tartError("run", r(2, 'VM "x" is already running!'), "x") instanceof ConflictError,
    true,
  );
  assertEquals(
    tartError("exec", r(2, 'VM "x" is not running'), "x") instanceof ConflictError,
    true,
  );
  const usage = tartError("list", r(64, "Error: Unknown option '--x'\nUsage: tart list"));
  assertEquals((usage as RuntimeError).code, "tart_usage");
  assertMatch(usage.message, /exit 64.*Unknown option/s);
  assertEquals(tartError("list", r(-1, "", true)) instanceof UnreachableError, true);
  assertEquals(tartError("list", r(127, "sh: tart: not found")) instanceof UnreachableError, true);
  const other = tartError(
    "set",
    r(1, "Error: LessThanMinimalResourcesError: VM should have 1 CPU"),
    "vm",
  );
  assertMatch(other.message, /`tart set vm` failed \(exit 1\): Error: LessThanMinimalResources/);
});
