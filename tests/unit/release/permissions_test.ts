/**
 * Runs main.ts with exactly the compiled binary's permission flags (scripts/permissions), so a
 * missing permission fails CI instead of a user.
 */
import { assert, assertEquals } from "@std/assert";

const ROOT = new URL("../../../", import.meta.url).pathname;

async function releaseFlags(): Promise<string[]> {
  const text = await Deno.readTextFile(`${ROOT}scripts/permissions`);
  return text.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter(Boolean);
}

async function runWithFlags(args: string[], home: string) {
  const flags = await releaseFlags();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--frozen", ...flags, `${ROOT}main.ts`, ...args],
    cwd: home,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: home,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
      // A socket path that does not exist: list must still work, doctor must report it.
      TACHIKOMA_INCUS_SOCKET: `${home}/no-incus.sock`,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const DENIED = /NotCapable|PermissionDenied|Requires \w+ access|--allow-\w+ flag/;

Deno.test("the release permission set is explicit: no blanket -A", async () => {
  const flags = await releaseFlags();
  assert(!flags.includes("-A") && !flags.includes("--allow-all"));
  assert(flags.every((f) => f.startsWith("--allow-")), flags.join(" "));
});

Deno.test("--help, list --json, config and doctor run with exactly the release permissions", async () => {
  const home = await Deno.makeTempDir({ prefix: "tk-perm-" });
  try {
    const help = await runWithFlags(["--help"], home);
    assertEquals(help.code, 0, help.stderr);
    const list = await runWithFlags(["list", "--json"], home);
    assert(!DENIED.test(list.stderr), list.stderr);
    assertEquals(list.code, 0, list.stderr);
    JSON.parse(list.stdout);
    const config = await runWithFlags(["config"], home);
    assert(!DENIED.test(config.stderr), config.stderr);
    assertEquals(config.code, 0, config.stderr);
    const doctor = await runWithFlags(["doctor", "--json"], home);
    assert(!DENIED.test(doctor.stderr + doctor.stdout), doctor.stderr);
    const report = JSON.parse(doctor.stdout) as { checks: { name: string }[] };
    assert(report.checks.some((c) => c.name === "git"));
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
