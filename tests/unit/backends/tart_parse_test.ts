import { assertEquals, assertThrows } from "@std/assert";
import {
  parseGet,
  parseIp,
  parseList,
  parseState,
  parseVersion,
} from "../../../src/backends/tart/parse.ts";
import { RuntimeError } from "../../../src/lib/errors.ts";

// tart ≥ 2.31: Accessed, Source "OCI", Apple pretty printer (`"Key" : value`, `\/` escaped).
const NEW_LIST = `[
  {
    "Accessed" : "2026-03-03T17:53:33Z",
    "Disk" : 50,
    "Name" : "tachikoma-myapp-main",
    "Running" : true,
    "Size" : 31,
    "Source" : "local",
    "State" : "running"
  },
  {
    "Accessed" : "2026-02-01T10:00:00Z",
    "Disk" : 50,
    "Name" : "ghcr.io\\/cirruslabs\\/ubuntu:latest",
    "Running" : false,
    "Size" : 20,
    "Source" : "OCI",
    "State" : "stopped"
  }
]
`;

// tart 2.15–2.30: SizeOnDisk instead of Accessed; before 2.11 Source was "oci".
const OLD_LIST = `[
  { "Disk" : 50, "Name" : "ubuntu", "Running" : false, "Size" : 20, "SizeOnDisk" : 18,
    "Source" : "local", "State" : "suspended" },
  { "Disk" : 25, "Name" : "ghcr.io\\/x\\/y@sha256:abc", "Running" : false, "Size" : 9,
    "Source" : "oci", "State" : "stopped" }
]`;

Deno.test("parseList: tart 2.31+ field set, escaped slashes, OCI entries", () => {
  const vms = parseList(NEW_LIST);
  assertEquals(vms, [
    {
      name: "tachikoma-myapp-main",
      source: "local",
      state: "running",
      diskGb: 50,
      sizeGb: 31,
      accessed: "2026-03-03T17:53:33Z",
    },
    {
      name: "ghcr.io/cirruslabs/ubuntu:latest",
      source: "oci",
      state: "stopped",
      diskGb: 50,
      sizeGb: 20,
      accessed: "2026-02-01T10:00:00Z",
    },
  ]);
});

Deno.test("parseList: tart 2.15-2.30 field set (SizeOnDisk, lowercase oci)", () => {
  const vms = parseList(OLD_LIST);
  assertEquals(vms[0], {
    name: "ubuntu",
    source: "local",
    state: "suspended",
    diskGb: 50,
    sizeGb: 20,
    sizeOnDiskGb: 18,
  });
  assertEquals(vms[1].source, "oci");
  assertEquals(vms[1].name, "ghcr.io/x/y@sha256:abc");
  assertEquals(vms[1].accessed, undefined);
});

Deno.test("parseList: State is the truth, Running only a fallback; case-insensitive", () => {
  const vms = parseList(JSON.stringify([
    { Name: "a", State: "stopped", Running: true },
    { Name: "b", State: "Running", Running: false },
    { Name: "c", Running: true },
    { Name: "d" },
    { Name: "e", State: "paused" },
  ]));
  assertEquals(vms.map((v) => v.state), ["stopped", "running", "running", "unknown", "unknown"]);
});

Deno.test("parseList: minimal and odd entries are tolerated, unknown fields ignored", () => {
  const vms = parseList(JSON.stringify([
    { Name: "min", State: "stopped" },
    { Name: "", State: "stopped" },
    { State: "running" },
    "not an object",
    null,
    { Name: "extra", State: "stopped", Future: { nested: true }, Disk: "12" },
  ]));
  assertEquals(vms, [
    { name: "min", source: "local", state: "stopped" },
    { name: "extra", source: "local", state: "stopped", diskGb: 12 },
  ]);
});

Deno.test("parseList: empty outputs are empty lists", () => {
  assertEquals(parseList("[\n\n]\n"), []);
  assertEquals(parseList("[]"), []);
  assertEquals(parseList("  \n"), []);
});

Deno.test("parseList: garbage is a RuntimeError naming the command", () => {
  const error = assertThrows(() => parseList("Source Name State\nlocal x running"), RuntimeError);
  assertEquals(error.code, "tart_output");
  assertEquals(/tart list --format json/.test(error.message), true);
  assertThrows(() => parseList('{"Name":"x"}'), RuntimeError, "did not print a JSON array");
});

Deno.test("parseGet: Size is a string in get, Memory is MB", () => {
  const details = parseGet(`{
  "CPU" : 4,
  "Disk" : 50,
  "DiskFormat" : "raw",
  "Display" : "1024x768",
  "Memory" : 8192,
  "OS" : "linux",
  "Running" : false,
  "Size" : "20.123",
  "State" : "stopped"
}`);
  assertEquals(details, {
    os: "linux",
    cpu: 4,
    memoryMb: 8192,
    diskGb: 50,
    diskFormat: "raw",
    sizeGb: 20.123,
    display: "1024x768",
    state: "stopped",
  });
});

Deno.test("parseGet: old tart (no OS/DiskFormat, numeric Size) and State vs Running", () => {
  const details = parseGet('{"CPU":2,"Memory":4096,"Size":20,"Running":true,"State":"stopped"}');
  assertEquals(details, { cpu: 2, memoryMb: 4096, sizeGb: 20, state: "stopped" });
  assertThrows(() => parseGet("[]"), RuntimeError, "JSON object");
});

Deno.test("parseIp: trims, takes the first line, rejects non-IPv4", () => {
  assertEquals(parseIp("192.168.64.5\n"), "192.168.64.5");
  assertEquals(parseIp("\n  10.0.0.1  \n"), "10.0.0.1");
  assertEquals(parseIp(""), null);
  assertEquals(parseIp("no IP address found"), null);
  assertEquals(parseIp("256.1.1.1"), null);
  assertEquals(parseIp("fe80::1"), null);
});

Deno.test("parseState and parseVersion", () => {
  assertEquals(parseState("SUSPENDED"), "suspended");
  assertEquals(parseState(undefined, false), "stopped");
  assertEquals(parseVersion("2.32.1\n"), "2.32.1");
  assertEquals(parseVersion("SNAPSHOT"), "SNAPSHOT");
});
