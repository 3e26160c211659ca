/**
 * The hand-written checks (`src/config/fast_check.ts`) and the zod-free build
 * (`src/config/fast_build.ts`) against the zod path they stand in for: a value the fast check
 * accepts is one zod accepts unchanged, the usual values take the fast path, and the fast build
 * gives exactly `buildConfig`'s result — or null, leaving the error to zod.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { KEY_NAMES, KEYS } from "../../../src/config/defaults.ts";
import { FAST_CHECKED_KEYS, fastCheck } from "../../../src/config/fast_check.ts";
import { fastBuildConfig } from "../../../src/config/fast_build.ts";
import {
  buildConfig,
  type BuildInput,
  checkValue,
  fieldSchema,
} from "../../../src/config/validate.ts";
import { ConfigError } from "../../../src/lib/errors.ts";

const POOL: unknown[] = [
  undefined,
  null,
  true,
  false,
  0,
  1,
  -1,
  1.5,
  255,
  256,
  65535,
  65536,
  2 ** 53,
  Number.NaN,
  10n,
  "",
  " ",
  "x",
  "a b",
  "dhcp",
  "agent",
  "incus",
  "tart",
  "npm",
  "system",
  "allowlist",
  "https://a.example",
  "https://a.example/v1?x=1",
  " https://a.example",
  "https://a.example\n",
  "http://a.example",
  "https:/x",
  "https:example",
  "ftp://x",
  "not a url",
  "1h",
  "0",
  "1h30m",
  "90x",
  "10.0.0.1",
  "10.0.0.256",
  "0.0.0.0",
  "127.0.0.1",
  "::1",
  "::",
  "rules",
  "env.FOO",
  "mcp.*.headers.Authorization",
  "env.",
  [],
  ["x"],
  [""],
  [1],
  ["rules", "a b"],
  ["env.FOO"],
  [, "x"],
  {},
  { a: 1 },
  { images: { url: "https://x.example" } },
  { lab: { url: "https://10.213.0.1:8443", protocol: "incus", certificate: "/c.pem" } },
  { Bad: { url: "https://x.example" } },
  { a: { url: "http://x.example" } },
  { a: { url: "https://x.example", extra: 1 } },
  { a: { url: "https://x.example", certificate: "" } },
  { a: { url: "https://x.example", protocol: "ftp" } },
  { a: "https://x.example" },
  { A: "1", B: { forward: true } },
  { A: { value: "x", forward: true } },
  { A: { forward: false } },
  { "1A": "x" },
  { A: { value: 1 } },
  { py: { image: "x" } },
  { py: { image: "" } },
  { Py: { image: "x" } },
  { py: { image: "x", extra: 1 } },
  { py: { from: "web", setup: 1 } },
  new Date(0),
];

/** Values each key commonly has: these must take the fast path. */
const USUAL: Record<string, unknown[]> = {
  backend: ["incus", "tart", "truenas"],
  base_image: ["tachikoma-test", "images:debian/12"],
  vm_cpus: [1, 4],
  vm_memory: [256, 8192],
  vm_display: ["none", ""],
  ssh_user: ["admin"],
  ssh_port: [22, 65535],
  ssh_command: ["builtin", "system"],
  worktree_dir: ["/w"],
  provision_scripts: [[], ["/a.sh"]],
  claude_flags: [[], ["--verbose", ""]],
  claude_install: ["script", "npm", "skip"],
  tmux_install: ["package", "skip"],
  env: [{}, { A: "1", B: { value: "x", session_only: true }, TOKEN: { forward: true } }],
  bases: [{}, { py: { image: "images:debian/12", setup: "apt-get install -y python3" } }, {
    web: { from: "py", setup_script: "/s.sh", description: "node too" },
    py: { image: "images:debian/12" },
  }],
  boot_timeout_secs: [1, 120],
  prune_after_days: [0, 30],
  credential_command: ["pass show x"],
  api_key_command: ["cat key"],
  sync_gh_auth: [true, false],
  share_claude_dirs: [[], ["rules", "my_dir-2"]],
  sync_mcp_servers: [true],
  guest_secrets: [["env.FOO", "mcp.*.url", "mcp.gh.headers.Authorization"]],
  credential_proxy: [false],
  credential_proxy_port: [19280],
  credential_proxy_bind: ["10.213.0.1", "127.0.0.1"],
  credential_proxy_ttl_secs: [0, 300],
  credential_proxy_upstream: ["https://api.anthropic.com", "http://127.0.0.1:9/x"],
  egress: ["unrestricted", "agent", "allowlist", "none"],
  egress_allow: [["pypi.org"]],
  "tart.binary": ["/opt/tart"],
  "tart.resolver": ["dhcp", "arp", "agent"],
  "tart.stop_timeout_secs": [0, 30],
  "tart.disk_size_gb": [50],
  "incus.socket": ["/var/lib/incus/unix.socket"],
  "incus.remote": ["https://10.213.0.1:8443"],
  "incus.client_cert": ["/c.crt"],
  "incus.client_key": ["/c.key"],
  "incus.server_cert": ["/s.crt"],
  "incus.project": ["default"],
  "incus.storage_pool": ["tachikoma"],
  "incus.network": ["tkbr0"],
  "incus.image": ["lab:debian/12"],
  "incus.image_servers": [
    {},
    { lab: { url: "https://10.213.0.1:8443", protocol: "incus", certificate: "/c.pem" } },
    { images: { url: "https://images.linuxcontainers.org" } },
  ],
  "truenas.host": ["nas.example"],
  "truenas.port": [443],
  "truenas.username": ["root"],
  "truenas.api_key": ["1-abc"],
  "truenas.server_cert": ["/tn-ca.pem"],
  "truenas.insecure_skip_verify": [false],
  "mcp.listen": ["127.0.0.1:8765"],
  "mcp.idle_stop_after": ["1h", "0"],
  "mcp.hard_destroy_after": ["24h"],
  "mcp.reap_interval": ["1m", "250ms"],
};

Deno.test("fast check: covers every key of the key table", () => {
  assertEquals([...FAST_CHECKED_KEYS].sort(), [...KEY_NAMES].sort());
  assertEquals(Object.keys(USUAL).sort(), [...KEY_NAMES].sort());
  assert(!fastCheck("no_such_key", "x"));
});

Deno.test("fast check: what it accepts, zod accepts unchanged", () => {
  for (const key of KEY_NAMES) {
    for (const value of [...POOL, ...USUAL[key]]) {
      if (!fastCheck(key, value)) continue;
      assertEquals(checkValue(key, value), null, `${key} = ${String(value)}`);
      const parsed = fieldSchema(key).safeParse(value);
      assert(parsed.success);
      if (KEYS[key].type !== "table") assertEquals(parsed.data, value, key);
    }
  }
});

Deno.test("fast check: the usual values take the fast path; invalid ones never do", () => {
  for (const key of KEY_NAMES) {
    for (const value of USUAL[key]) assert(fastCheck(key, value), `${key} = ${String(value)}`);
  }
  for (
    const [key, value] of [
      ["vm_cpus", 0],
      ["vm_cpus", 1.5],
      ["vm_cpus", "4"],
      ["vm_memory", 255],
      ["ssh_port", 65536],
      ["backend", "vbox"],
      ["ssh_user", ""],
      ["share_claude_dirs", ["a/b"]],
      ["guest_secrets", ["FOO"]],
      ["credential_proxy_bind", "0.0.0.0"],
      ["credential_proxy_upstream", "not a url"],
      ["incus.image_servers", { a: { url: "http://x.example" } }],
      ["mcp.idle_stop_after", "1d"],
    ] as const
  ) {
    assert(!fastCheck(key, value), `${key} = ${JSON.stringify(value)}`);
    assert(checkValue(key, value) !== null, `${key} = ${JSON.stringify(value)}`);
  }
});

function input(over: Partial<BuildInput>): BuildInput {
  return {
    os: "linux",
    files: [],
    env: [],
    flags: {},
    home: "/home/u",
    cwd: "/work",
    display: (p) => p,
    ...over,
  };
}

const GLOBAL_TOML = `
backend = "incus"
vm_cpus = 2
base_image = "tachikoma-test"
provision_scripts = ["~/setup.sh", "rel/x.sh"]
claude_flags = ["--verbose"]
credential_proxy_bind = "10.213.0.1"
worktree_dir = "~/wt"

[incus]
socket = "/var/lib/incus/unix.socket"
image = "lab:debian/12"

[incus.image_servers.lab]
url = "https://10.213.0.1:8443"
certificate = "certs/lab.pem"

[mcp]
idle_stop_after = "2h"
`;

const REPO_TOML = `
vm_memory = 2048
credential_command = "pass show claude"
egress_allow = ["pypi.org"]
`;

Deno.test("fast build: the same configuration, sources and ignored values as buildConfig", async () => {
  const cases: BuildInput[] = [
    input({}),
    input({ flags: { backend: "tart" } }),
    input({
      env: [
        { key: "base_image", variable: "TACHIKOMA_BASE_IMAGE", raw: "tachikoma-test" },
        { key: "incus.socket", variable: "TACHIKOMA_INCUS_SOCKET", raw: "~/incus.sock" },
        { key: "credential_proxy", variable: "TACHIKOMA_CREDENTIAL_PROXY", raw: "false" },
        { key: "claude_install", variable: "TACHIKOMA_CLAUDE_INSTALL", raw: "skip" },
        { key: "vm_cpus", variable: "TACHIKOMA_VM_CPUS", raw: " 1 " },
        { key: "vm_memory", variable: "TACHIKOMA_VM_MEMORY", raw: "1_024" },
        { key: "egress_allow", variable: "TACHIKOMA_EGRESS_ALLOW", raw: "a.example, b.example" },
        { key: "claude_flags", variable: "TACHIKOMA_CLAUDE_FLAGS", raw: '["--x", "y z"]' },
        {
          key: "incus.image_servers",
          variable: "TACHIKOMA_INCUS_IMAGE_SERVERS",
          raw: '{lab = {url = "https://10.213.0.1:8443"}}',
        },
      ],
      flags: { backend: "incus" },
    }),
    input({
      files: [
        { kind: "global", file: "/home/u/.config/tachikoma/config.toml", text: GLOBAL_TOML },
        { kind: "repo", file: "/r/.tachikoma.toml", text: REPO_TOML, trusted: false },
        { kind: "local", file: "/r/.tachikoma.local.toml", text: REPO_TOML, trusted: true },
      ],
      env: [{ key: "vm_cpus", variable: "TACHIKOMA_VM_CPUS", raw: "3" }],
    }),
  ];
  for (const c of cases) {
    const fast = await fastBuildConfig(c);
    assert(fast !== null, "the fast path is taken");
    assertEquals(fast, buildConfig(c));
  }
});

Deno.test("fast build: anything the zod path must judge gives null, and zod's message stands", async () => {
  const bad: [BuildInput, string | null][] = [
    [input({ files: [{ kind: "global", file: "/c.toml", text: "vm_cpu = 2\n" }] }), null],
    [input({ files: [{ kind: "global", file: "/c.toml", text: "[tartt]\nx = 1\n" }] }), null],
    [
      input({ files: [{ kind: "global", file: "/c.toml", text: "vm_cpus = 0\n" }] }),
      "/c.toml:1: vm_cpus: expected a value >= 1, got 0",
    ],
    [
      input({ files: [{ kind: "global", file: "/c.toml", text: "vm_cpus = \n" }] }),
      "/c.toml:1:",
    ],
    [
      input({ files: [{ kind: "global", file: "/c.toml", text: "incus = 3\n" }] }),
      "/c.toml:1: incus: expected table",
    ],
    [
      input({ env: [{ key: "vm_cpus", variable: "TACHIKOMA_VM_CPUS", raw: "four" }] }),
      'TACHIKOMA_VM_CPUS: expected integer, got "four"',
    ],
    [
      input({ env: [{ key: "claude_flags", variable: "TACHIKOMA_CLAUDE_FLAGS", raw: "[1, 2]" }] }),
      "TACHIKOMA_CLAUDE_FLAGS[0]",
    ],
    [
      input({ env: [{ key: "claude_flags", variable: "TACHIKOMA_CLAUDE_FLAGS", raw: "[oops" }] }),
      "TACHIKOMA_CLAUDE_FLAGS: expected a TOML array",
    ],
    [input({ flags: { backend: "vbox" } }), "--backend: expected one of"],
  ];
  for (const [c, message] of bad) {
    assertEquals(await fastBuildConfig(c), null);
    if (message === null) {
      // Unknown keys: zod's path warns (with the line), the fast one does not try.
      assert(buildConfig(c).warnings.length > 0);
    } else {
      const error = assertThrows(() => buildConfig(c), ConfigError);
      assert(error.message.startsWith(message), error.message);
    }
  }
});
