import { assertEquals } from "@std/assert";
import { harness } from "./helpers.ts";

Deno.test("exec: [env] session values reach the command's environment; the call's env wins", async () => {
  const seen: Record<string, string>[] = [];
  Deno.env.set("TK_UNIT_FWD", "forwarded-value-123");
  try {
    await using h = await harness({
      config: {
        env: {
          TK_UNIT_FWD: { forward: true },
          TK_UNIT_UNSET: { forward: true },
          TK_UNIT_ONLY: { value: "only", session_only: true },
          TK_UNIT_DISK: "disk",
        },
      },
      backend: {
        exec: (_name, req) => {
          seen.push(req.env ?? {});
          return { code: 0, stdout: new Uint8Array(), stderr: new Uint8Array() };
        },
      },
    });
    const { name } = await h.service.spawn({ branch: "env" });
    await h.service.exec(name, { argv: ["true"], env: { TK_UNIT_ONLY: "call" } });
    assertEquals(seen.at(-1), { TK_UNIT_FWD: "forwarded-value-123", TK_UNIT_ONLY: "call" });
  } finally {
    Deno.env.delete("TK_UNIT_FWD");
  }
});
