/**
 * Share access (setfacl) for a container's ids: the read-write shares are granted concurrently
 * (each its own `getfacl` check, then `setfacl`, recursive only the first time), read-only ones
 * get nothing, and a failing share's error is thrown once every grant has ended.
 */
import { assertEquals, assertRejects } from "@std/assert";
import { grantShareAccess } from "../../../../src/backends/incus/share_access.ts";
import type { RunResult } from "../../../../src/lib/process.ts";
import { RuntimeError } from "../../../../src/lib/errors.ts";

const guest = { root: { uid: 1000000, gid: 1000000 }, user: { uid: 1001000, gid: 1001000 } };
const result = (code: number, stdout = "", stderr = ""): RunResult => ({
  code,
  stdout,
  stderr,
  timedOut: false,
});

function runner(options: { failOn?: string; granted?: string[] } = {}) {
  const events: string[] = [];
  let inFlight = 0;
  let most = 0;
  return {
    events,
    most: () => most,
    async run(cmd: string, args: string[]): Promise<RunResult> {
      const path = args[args.length - 1];
      inFlight++;
      most = Math.max(most, inFlight);
      events.push(`${cmd}${args.includes("-R") ? " -R" : ""} ${path}`);
      // Let every other grant get as far as it can before this one answers.
      for (let i = 0; i < 5; i++) await Promise.resolve();
      inFlight--;
      if (cmd === "getfacl") {
        return result(0, options.granted?.includes(path) ? "user:1001000:rwx\n" : "user::rwx\n");
      }
      return path === options.failOn ? result(1, "", "Operation not supported") : result(0);
    },
  };
}

Deno.test("grantShareAccess: read-write shares granted concurrently, read-only ones untouched", async () => {
  const r = runner({ granted: ["/repo/.git/objects"] });
  await grantShareAccess({
    runner: r,
    shares: [
      { name: "s", hostPath: "/wt", guestPath: "/code", readOnly: false },
      { name: "s", hostPath: "/repo/.git", guestPath: "/git", readOnly: true },
      { name: "s", hostPath: "/repo/.git/objects", guestPath: "/git/objects", readOnly: false },
    ],
    guest,
    hostUser: { uid: 1000, gid: 1000 },
  });
  assertEquals(r.events.sort(), [
    "getfacl /repo/.git/objects",
    "getfacl /wt",
    "setfacl -R /wt",
    "setfacl /repo/.git/objects",
  ]);
  assertEquals(r.most(), 2, "both grants ran at once");
});

Deno.test("grantShareAccess: a share without ACL support fails naming it, after the others end", async () => {
  const r = runner({ failOn: "/b" });
  const error = await assertRejects(
    () =>
      grantShareAccess({
        runner: r,
        shares: [
          { name: "s", hostPath: "/a", guestPath: "/a", readOnly: false },
          { name: "s", hostPath: "/b", guestPath: "/b", readOnly: false },
          { name: "s", hostPath: "/c", guestPath: "/c", readOnly: false },
        ],
        guest,
        hostUser: null,
      }),
    RuntimeError,
  );
  assertEquals(error.message, "cannot give the sandbox access to /b: Operation not supported");
  assertEquals(r.events.filter((e) => e.startsWith("setfacl")).length, 3);
});
