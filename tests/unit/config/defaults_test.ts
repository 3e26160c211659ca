import { assert, assertEquals, assertNotStrictEquals } from "@std/assert";
import {
  BACKENDS as DEFAULT_BACKENDS,
  defaultBackend,
  KEY_NAMES,
  KEYS,
} from "../../../src/config/defaults.ts";
import { defaultConfig } from "../../../src/config/default_config.ts";
import {
  BACKENDS,
  ConfigSchema,
  IncusSectionSchema,
  McpSectionSchema,
  TartSectionSchema,
  TruenasSectionSchema,
} from "../../../src/config/schema.ts";
import { ENV_VARS } from "../../../src/config/env.ts";
import { checkValue, fieldSchema } from "../../../src/config/validate.ts";

Deno.test("defaults from the plain object equal zod's parse of {}", () => {
  assertEquals(defaultConfig(Deno.build.os), ConfigSchema.parse({}));
});

Deno.test("defaults: backend is tart on macOS, incus elsewhere; everything else is equal", () => {
  assertEquals(defaultBackend("darwin"), "tart");
  assertEquals(defaultBackend("linux"), "incus");
  assertEquals(defaultConfig("darwin").backend, "tart");
  assertEquals(defaultConfig("linux").backend, "incus");
  for (const os of ["darwin", "linux"] as const) {
    const d = defaultConfig(os);
    assertEquals(d, ConfigSchema.parse({ backend: d.backend }));
  }
});

Deno.test("defaults: each call returns a fresh object (arrays are not shared)", () => {
  const a = defaultConfig("linux");
  const b = defaultConfig("linux");
  assertNotStrictEquals(a.share_claude_dirs, b.share_claude_dirs);
  a.share_claude_dirs.push("x");
  assertEquals(b.share_claude_dirs, ["rules", "agents", "plugins", "skills"]);
  const z1 = ConfigSchema.parse({});
  z1.provision_scripts.push("y");
  assertEquals(ConfigSchema.parse({}).provision_scripts, []);
});

Deno.test("defaults: schema.ts re-exports the same BACKENDS", () => {
  assertEquals(BACKENDS, DEFAULT_BACKENDS);
  assertEquals([...BACKENDS], ["tart", "incus", "truenas"]);
});

Deno.test("key table lists exactly the schema's keys", () => {
  const fromSchema: string[] = [];
  const sections: Record<string, { shape: Record<string, unknown> }> = {
    tart: TartSectionSchema,
    incus: IncusSectionSchema,
    truenas: TruenasSectionSchema,
    mcp: McpSectionSchema,
  };
  for (const key of Object.keys(ConfigSchema.shape)) {
    if (key in sections) {
      for (const sub of Object.keys(sections[key].shape)) fromSchema.push(`${key}.${sub}`);
    } else fromSchema.push(key);
  }
  assertEquals([...KEY_NAMES].sort(), fromSchema.sort());
});

Deno.test("key table types agree with the schema (right type accepted, wrong type rejected)", () => {
  const wrong = { string: 1, integer: "1", boolean: "true", "string[]": "a", table: "t" } as const;
  for (const key of KEY_NAMES) {
    const spec = KEYS[key];
    const schema = fieldSchema(key);
    const bad = schema.safeParse(wrong[spec.type]);
    assert(!bad.success, `${key} accepted ${JSON.stringify(wrong[spec.type])}`);
    // The message names the expected type and what was found.
    const problem = checkValue(key, wrong[spec.type])?.problem ?? "";
    assert(/^expected .+, got /.test(problem), `${key}: ${problem}`);
    if (spec.choices) {
      for (const c of spec.choices) assert(schema.safeParse(c).success, `${key}: ${c}`);
      assert(!schema.safeParse("not-a-choice").success, key);
    }
  }
  // Every default satisfies its own schema.
  const d = defaultConfig("linux") as unknown as Record<string, unknown>;
  for (const key of KEY_NAMES) {
    const [a, b] = key.split(".");
    const v = b === undefined ? d[a] : (d[a] as Record<string, unknown>)[b];
    if (v !== undefined) assert(fieldSchema(key).safeParse(v).success, key);
  }
});

Deno.test("every key has its own TACHIKOMA_ variable (no two keys share one)", () => {
  assertEquals(ENV_VARS.size, KEY_NAMES.length);
  assertEquals(ENV_VARS.get("TACHIKOMA_INCUS_SOCKET"), "incus.socket");
  assertEquals(ENV_VARS.get("TACHIKOMA_VM_CPUS"), "vm_cpus");
  assertEquals(ENV_VARS.get("TACHIKOMA_TRUENAS_API_KEY"), "truenas.api_key");
  assert(!ENV_VARS.has("TACHIKOMA_CONFIG_DIR"));
});

Deno.test("only truenas.api_key is secret; the gated keys are marked, each with a reason", () => {
  assertEquals(KEY_NAMES.filter((k) => KEYS[k].secret), ["truenas.api_key"]);
  // Host commands, host files into the guest, where credentials/secrets/code go, what the
  // guest may reach, where guest-written files land on the host.
  assertEquals(KEY_NAMES.filter((k) => KEYS[k].trust).sort(), [
    "api_key_command",
    "bases",
    "credential_command",
    "credential_proxy",
    "credential_proxy_bind",
    "credential_proxy_port",
    "credential_proxy_upstream",
    "egress",
    "egress_allow",
    "env",
    "guest_secrets",
    "incus.client_cert",
    "incus.client_key",
    "incus.image_servers",
    "incus.network",
    "incus.project",
    "incus.remote",
    "incus.server_cert",
    "incus.socket",
    "mcp.hard_destroy_after",
    "mcp.listen",
    "provision_scripts",
    "share_claude_dirs",
    "sync_gh_auth",
    "sync_mcp_servers",
    "tart.binary",
    "truenas.api_key",
    "truenas.host",
    "truenas.insecure_skip_verify",
    "truenas.port",
    "truenas.server_cert",
    "truenas.username",
    "worktree_dir",
  ]);
  for (const key of KEY_NAMES) {
    const why = KEYS[key].trust;
    if (why !== undefined) assert(why.length > 10 && !why.includes("\n"), key);
  }
});
