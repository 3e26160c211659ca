import { assertEquals } from "@std/assert";
import { likelyBackend } from "../../../src/cli/wiring.ts";
import { defaultBackend } from "../../../src/config/defaults.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("likelyBackend: the flag, else TACHIKOMA_BACKEND, else the platform's default", () => {
  assertEquals(likelyBackend("tart", env({ TACHIKOMA_BACKEND: "incus" })), "tart");
  assertEquals(likelyBackend(undefined, env({ TACHIKOMA_BACKEND: " truenas " })), "truenas");
  assertEquals(likelyBackend(undefined, env({})), defaultBackend());
  assertEquals(likelyBackend(undefined, env({ TACHIKOMA_BACKEND: "" })), defaultBackend());
  assertEquals(
    likelyBackend(undefined, env({ TACHIKOMA_BACKEND: "$(rm -rf /)" })),
    undefined,
    "no engine name: nothing is preloaded (the configuration reports the value)",
  );
});
