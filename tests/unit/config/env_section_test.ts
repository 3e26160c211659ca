import { assert, assertEquals, assertThrows } from "@std/assert";
import { ConfigError } from "../../../src/lib/errors.ts";
import { validateFileText } from "../../../src/config/validate.ts";
import { diskEnv, sessionEnv, sessionEnvNames } from "../../../src/config/guest_env.ts";
import { redact } from "../../../src/lib/redact.ts";

const FORMS = `
[env]
PLAIN = "p $(x) 'q'"
TABLE = { value = "t" }
FWD = { forward = true }
UNSET_FWD = { forward = true }
ONLY = { value = "s", session_only = true }
`;

Deno.test("[env]: pixels' forms; disk values vs session values", () => {
  const layer = validateFileText(FORMS, "config.toml");
  const env = layer.values.get("env") as Record<string, unknown>;
  const config = { env } as Parameters<typeof diskEnv>[0];
  assertEquals(diskEnv(config), [["PLAIN", "p $(x) 'q'"], ["TABLE", "t"]]);
  const host: Record<string, string> = { FWD: "fwd-secret-0123456789" };
  assertEquals(sessionEnv(config, (n) => host[n]), { FWD: "fwd-secret-0123456789", ONLY: "s" });
  // what sshd must accept by name: every session entry, set on the host or not
  assertEquals(sessionEnvNames(config), ["FWD", "ONLY", "UNSET_FWD"]);
  assert(
    !redact("x fwd-secret-0123456789").includes("fwd-secret"),
    "forwarded values are redacted",
  );
});

Deno.test("[env]: an entry of the wrong type is one ConfigError naming file, line and key", () => {
  const cases: [string, string][] = [
    ["[env]\nN = 3\n", "env"],
    ['[env]\nN = { forward = true, value = "v" }\n', "env"],
    ["[env]\nN = { session_only = true }\n", "env"],
    ['[env]\nN = { value = "v", bogus = 1 }\n', "env"],
    ['[env]\n"BAD-NAME" = "v"\n', "env"],
    ["[env]\nN = { forward = false }\n", "env"],
  ];
  for (const [text, key] of cases) {
    const e = assertThrows(() => validateFileText(text, "config.toml"), ConfigError);
    assert(e.message.startsWith("config.toml:"), e.message);
    assert(e.message.includes(key), e.message);
    assert(!e.message.includes("\n"), `one line: ${e.message}`);
  }
});
