import { assertEquals } from "@std/assert";
import { HOME_LINK, linkHomeCode } from "../../../src/provision/code_git.ts";
import { GUEST_CODE_DIR } from "../../../src/provision/shares.ts";
import type { GuestResult } from "../../../src/provision/guest.ts";

const enc = new TextEncoder();

/** A guest whose `sh` runs the script for real with `sh`, HOME set to `home`. */
function shellGuest(home: string) {
  return {
    sandbox: "sb",
    async sh(script: string, args: string[]): Promise<GuestResult> {
      const out = await new Deno.Command("sh", {
        args: ["-c", script, "tachikoma", ...args],
        env: { HOME: home },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      return {
        code: out.code,
        stdout: dec.decode(out.stdout),
        stderr: dec.decode(out.stderr),
        bytes: out.stdout,
      };
    },
  };
}

/** A guest whose `sh` answers `result` (the guest is a double: no shell runs). */
function answeringGuest(result: { code: number; stdout?: string; stderr?: string }) {
  const calls: string[][] = [];
  return {
    calls,
    sandbox: "sb",
    sh(script: string, args: string[]): Promise<GuestResult> {
      calls.push([script, ...args]);
      const stdout = result.stdout ?? "";
      return Promise.resolve({
        code: result.code,
        stdout,
        stderr: result.stderr ?? "",
        bytes: enc.encode(stdout),
      });
    },
  };
}

function recorder() {
  const warnings: string[] = [];
  return { warnings, warn: (m: string) => void warnings.push(m) };
}

Deno.test("linkHomeCode: ~/code becomes a link (again), silently", async () => {
  const home = await Deno.makeTempDir();
  try {
    const host = recorder();
    await linkHomeCode(host, shellGuest(home));
    assertEquals(await Deno.readLink(`${home}/code`), GUEST_CODE_DIR);
    await Deno.remove(`${home}/code`);
    await Deno.symlink("/elsewhere", `${home}/code`);
    await linkHomeCode(host, shellGuest(home));
    assertEquals(await Deno.readLink(`${home}/code`), GUEST_CODE_DIR);
    assertEquals(host.warnings, []);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("linkHomeCode: a real ~/code is left alone, with a warning", async () => {
  const home = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${home}/code`);
    await Deno.writeTextFile(`${home}/code/mine`, "keep");
    const host = recorder();
    await linkHomeCode(host, shellGuest(home));
    assertEquals(await Deno.readTextFile(`${home}/code/mine`), "keep");
    assertEquals(host.warnings, [
      `~/code in sb is a real directory; not linking it to ${GUEST_CODE_DIR}`,
    ]);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("linkHomeCode: a link that cannot be made is a warning with the guest's reason", async () => {
  const failing = answeringGuest({ code: 1, stderr: "ln: cannot create: Read-only file system\n" });
  const host = recorder();
  await linkHomeCode(host, failing);
  assertEquals(failing.calls, [[HOME_LINK, GUEST_CODE_DIR]]);
  assertEquals(host.warnings, [
    `cannot link ~/code to ${GUEST_CODE_DIR} in sb: ln: cannot create: Read-only file system`,
  ]);
  const silent = recorder();
  await linkHomeCode(silent, answeringGuest({ code: 2 }));
  assertEquals(silent.warnings, [`cannot link ~/code to ${GUEST_CODE_DIR} in sb: exit 2`]);
});
