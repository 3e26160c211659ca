import { assertEquals, assertStringIncludes } from "@std/assert";
import { setupDocument, setupText } from "../../../src/commands/setup.ts";
import { runSetup } from "../../../src/core/setup.ts";
import { fakeDeps, freshWorld, readyWorld } from "../core/setup_doubles.ts";
import { runCli } from "../cli/helpers.ts";

Deno.test("setup output: the JSON document and the text of a first run and of a no-op run", async () => {
  const world = freshWorld();
  const first = await runSetup(fakeDeps(world), { yes: true, image: "images:debian/12" });
  const doc = setupDocument(first);
  assertEquals(Object.keys(doc), ["steps", "changed", "completed", "notes"]);
  assertEquals(JSON.parse(JSON.stringify(doc)).steps[0], {
    step: "incus",
    status: "done",
    detail: "installed incus 6.0.4-2~bpo12+1",
  });
  const text = setupText(first);
  assertStringIncludes(
    text,
    "network       done     created bridge incusbr0 (10.218.51.1/24, NAT)",
  );
  assertStringIncludes(text, "Incus is set up.\nalice was added to incus-admin: log in again");

  const noop = await runSetup(fakeDeps(readyWorld()), { yes: false, image: "images:debian/12" });
  assertStringIncludes(setupText(noop), "Incus was already set up: nothing changed.");

  const declined = await runSetup(fakeDeps(freshWorld(), false), {
    yes: false,
    image: "images:debian/12",
  });
  assertStringIncludes(setupText(declined), "Setup stopped: Incus is not installed.");
});

Deno.test("setup --help names --yes", async () => {
  const help = await runCli(["setup", "--help"]);
  assertEquals(help.code, 0, help.stderr);
  assertStringIncludes(help.stdout, "--yes");
});
