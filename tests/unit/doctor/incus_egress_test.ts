/**
 * `doctor`'s egress enforcement check: ok when `nft` reads the ruleset, a warning naming what is
 * missing (nft, root) or that a remote server is not enforced from this host. A scripted runner
 * for the failures, the real `nft` when this test runs as root.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { egressCheck } from "../../../src/doctor/incus_egress.ts";
import type { CommandRunner, RunResult } from "../../../src/lib/process.ts";
import { UnreachableError } from "../../../src/lib/errors.ts";

function scripted(answer: RunResult | Error, calls: string[][] = []): CommandRunner {
  return {
    run: (cmd, args) => {
      calls.push([cmd, ...args]);
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
  };
}

Deno.test("doctor egress: nft reads the ruleset → ok, and only a read was asked", async () => {
  const calls: string[][] = [];
  const check = await egressCheck(
    undefined,
    scripted({ code: 0, stdout: "", stderr: "", timedOut: false }, calls),
  );
  assertEquals(check.ok, true);
  assertEquals(calls, [["nft", "list", "tables"]]);
});

Deno.test("doctor egress: no nft → a warning that says how to install it", async () => {
  const check = await egressCheck(
    undefined,
    scripted(new UnreachableError("'nft' is not installed or not on PATH")),
  );
  assertEquals([check.ok, check.required], [false, false]);
  assertStringIncludes(check.message, "needs nft");
  assertStringIncludes(check.hint ?? "", "apt install nftables");
  assertStringIncludes(check.hint ?? "", "only through the proxy");
});

Deno.test("doctor egress: not root → a warning that names root", async () => {
  const check = await egressCheck(
    undefined,
    scripted({ code: 1, stdout: "", stderr: "Error: Operation not permitted\n", timedOut: false }),
  );
  assertEquals(check.ok, false);
  assertStringIncludes(check.message, "needs root");
  assertStringIncludes(check.hint ?? "", "only through the proxy");
});

Deno.test("doctor egress: a remote server → a warning, nft never run", async () => {
  const calls: string[][] = [];
  const check = await egressCheck(
    "https://incus.example:8443",
    scripted({ code: 0, stdout: "", stderr: "", timedOut: false }, calls),
  );
  assertEquals([check.ok, calls.length], [false, 0]);
  assertStringIncludes(check.message, "https://incus.example:8443");
});

Deno.test({
  name: "doctor egress: the real nft as root → ok",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const check = await egressCheck(undefined);
    assert(check.ok, `${check.message} (${check.hint})`);
  },
});
