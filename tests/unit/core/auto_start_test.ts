import { assert, assertEquals, assertRejects } from "@std/assert";
import { ConflictError, NotFoundError } from "../../../src/lib/errors.ts";
import { harness } from "./helpers.ts";

const notes = (events: string[]) => events.filter((e) => e.startsWith("note "));

Deno.test("exec starts a stopped sandbox with a notice, then runs the command", async () => {
  const ran: string[][] = [];
  await using h = await harness({
    backend: {
      exec: (_name, req) => {
        ran.push(req.argv);
        return { code: 0, stdout: new Uint8Array(), stderr: new Uint8Array() };
      },
    },
  });
  const { name } = await h.service.spawn({ branch: "auto" });
  await h.service.halt(name);
  assertEquals((await h.backend.get(name)).state, "stopped");
  h.reporter.events.length = 0;
  const r = await h.service.exec(name, { argv: ["true"], raw: true, start: { start: true } });
  assertEquals(r.code, 0);
  assertEquals((await h.backend.get(name)).state, "running");
  assertEquals((await h.store.get(name))!.status, "running");
  assertEquals(notes(h.reporter.events), [
    `note sandbox ${name} is stopped: starting it (--no-start refuses)`,
  ]);
  assertEquals(ran.at(-1), ["true"]);
});

Deno.test("exec --no-start refuses a stopped sandbox in one line and leaves it stopped", async () => {
  await using h = await harness({
    backend: {
      exec: () => ({ code: 0, stdout: new Uint8Array(), stderr: new Uint8Array() }),
    },
  });
  const { name } = await h.service.spawn({ branch: "nostart" });
  await h.service.halt(name);
  const error = await assertRejects(
    () => h.service.exec(name, { argv: ["true"], start: { start: false, flag: "--no-start" } }),
    ConflictError,
  );
  assertEquals(error.message, `sandbox ${name} is stopped and --no-start was given`);
  assert(!error.message.includes("\n"));
  assertEquals((await h.backend.get(name)).state, "stopped");
  assertEquals(notes(h.reporter.events).filter((n) => n.includes("starting it")), []);
});

Deno.test("ready (enter) resumes a suspended sandbox; --no-start refuses; a vanished one is not found", async () => {
  await using h = await harness();
  const { name } = await h.service.spawn({ branch: "susp" });
  await h.service.suspend(name);
  assertEquals((await h.backend.get(name)).state, "suspended");
  await assertRejects(
    () => h.service.ready(name, { start: false, flag: "--no-start" }),
    ConflictError,
    "is suspended and --no-start was given",
  );
  assertEquals((await h.backend.get(name)).state, "suspended");
  h.reporter.events.length = 0;
  const { record } = await h.service.ready(name, { start: true });
  assertEquals(record.name, name);
  assertEquals((await h.backend.get(name)).state, "running");
  assertEquals(notes(h.reporter.events), [
    `note sandbox ${name} is suspended: starting it (--no-start refuses)`,
  ]);
  // Running: nothing to start, no notice.
  h.reporter.events.length = 0;
  await h.service.ready(name, { start: true });
  assertEquals(notes(h.reporter.events), []);
  await h.backend.vanish(name);
  await assertRejects(() => h.service.ready(name, { start: true }), NotFoundError, "no longer");
});
