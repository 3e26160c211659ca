/**
 * `[incus.image_servers]`: a table of named servers that layers merge by name (the built-in
 * `images` stays unless a layer redefines it), set from files or a TACHIKOMA_ variable holding a
 * TOML inline table; certificates are paths resolved like other path keys; bad entries are one
 * error naming file, line and key. And `base_image`'s default depends on the backend.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { ConfigError } from "../../../src/lib/errors.ts";
import { defaultImage, PUBLIC_IMAGE_SERVER } from "../../../src/config/defaults.ts";
import { formatValue } from "../../../src/config/display.ts";
import { tomlValue } from "../../../src/config/toml_edit.ts";
import { parseToml } from "../../../src/config/validate.ts";
import { imageFor } from "../../../src/core/lifecycle.ts";
import { load, makeWorld, trust } from "./helpers.ts";

Deno.test("image servers: the built-in images server; base_image's default per backend", async () => {
  const w = makeWorld();
  try {
    const { config } = await load(w);
    assertEquals(config.incus.image_servers, {
      images: { url: PUBLIC_IMAGE_SERVER, protocol: "simplestreams" },
    });
    assertEquals(config.base_image, undefined);
    assertEquals(imageFor(config, "incus"), "images:debian/12");
    assertEquals(imageFor(config, "tart"), "ubuntu");
    assertEquals(defaultImage("truenas"), "images:debian/12");
    const set = await load(w, { TACHIKOMA_BASE_IMAGE: "lab:debian/12" });
    assertEquals(imageFor(set.config, "tart"), "lab:debian/12");
    const incus = await load(w, { TACHIKOMA_INCUS_IMAGE: "mine", TACHIKOMA_BASE_IMAGE: "x" });
    assertEquals(imageFor(incus.config, "incus"), "mine");
  } finally {
    w.cleanup();
  }
});

Deno.test("image servers: layers merge by name; certificates resolve against their file", async () => {
  const w = makeWorld();
  try {
    w.write(
      "home/.config/tachikoma/config.toml",
      '[incus.image_servers.mirror]\nurl = "https://mirror.example/"\ncertificate = "certs/m.pem"\n',
    );
    w.write(
      "repo/.tachikoma.toml",
      '[incus.image_servers.lab]\nurl = "https://127.0.0.1:18443"\nprotocol = "simplestreams"\n' +
        'certificate = "~/lab.pem"\n',
    );
    await trust(w, ".tachikoma.toml");
    const { config, sources } = await load(w);
    assertEquals(config.incus.image_servers, {
      images: { url: PUBLIC_IMAGE_SERVER, protocol: "simplestreams" },
      mirror: {
        url: "https://mirror.example/",
        protocol: "simplestreams",
        certificate: `${w.configDir}/certs/m.pem`,
      },
      lab: {
        url: "https://127.0.0.1:18443",
        protocol: "simplestreams",
        certificate: `${w.home}/lab.pem`,
      },
    });
    assertEquals(sources["incus.image_servers"], {
      kind: "repo",
      file: `${w.repo}/.tachikoma.toml`,
    });
    // the environment: a TOML inline table, merged the same way
    const env = await load(w, {
      TACHIKOMA_INCUS_IMAGE_SERVERS:
        '{images = {url = "https://images.example", protocol = "incus"}}',
    });
    assertEquals(env.config.incus.image_servers.images, {
      url: "https://images.example",
      protocol: "incus",
    });
    assert(env.config.incus.image_servers.lab);
  } finally {
    w.cleanup();
  }
});

Deno.test("image servers: from an untrusted repo file they are ignored (they choose the system)", async () => {
  const w = makeWorld();
  try {
    w.write(
      "repo/.tachikoma.toml",
      '[incus.image_servers.images]\nurl = "https://evil.example"\n',
    );
    const loaded = await load(w);
    assertEquals(loaded.config.incus.image_servers.images.url, PUBLIC_IMAGE_SERVER);
    assertEquals(loaded.ignored.map((i) => i.key), ["incus.image_servers"]);
  } finally {
    w.cleanup();
  }
});

Deno.test("image servers: bad entries are one error naming file, line and key", async () => {
  const w = makeWorld();
  try {
    const file = w.write(
      "home/.config/tachikoma/config.toml",
      '# servers\n[incus.image_servers.lab]\nurl = "http://127.0.0.1:8080"\n',
    );
    let e = await assertRejects(() => load(w), ConfigError);
    assertEquals(
      e.message,
      `${file.replace(w.home, "~")}:3: incus.image_servers.lab.url: expected an https:// URL, ` +
        'got "http://127.0.0.1:8080"',
    );
    w.write(
      "home/.config/tachikoma/config.toml",
      '[incus.image_servers."Bad Name"]\nurl = "https://x"\n',
    );
    e = await assertRejects(() => load(w), ConfigError);
    assertStringIncludes(e.message, ':1: incus.image_servers.Bad Name: invalid name "Bad Name"');
    w.write(
      "home/.config/tachikoma/config.toml",
      '[incus.image_servers.lab]\nurl = "https://x"\nextra = 1\n',
    );
    e = await assertRejects(() => load(w), ConfigError);
    assertStringIncludes(e.message, ':1: incus.image_servers.lab: unknown field "extra"');
    w.write("home/.config/tachikoma/config.toml", "");
    e = await assertRejects(
      () => load(w, { TACHIKOMA_INCUS_IMAGE_SERVERS: "lab=https://x" }),
      ConfigError,
    );
    assertStringIncludes(e.message, "TACHIKOMA_INCUS_IMAGE_SERVERS: expected a TOML inline table");
  } finally {
    w.cleanup();
  }
});

Deno.test("image servers: shown on one line, written back as an inline table", () => {
  const servers = {
    lab: { url: "https://127.0.0.1:18443", protocol: "simplestreams", certificate: '/a b/c"d.pem' },
  };
  assertEquals(
    formatValue(servers),
    '{"lab":{"url":"https://127.0.0.1:18443","protocol":"simplestreams","certificate":"/a b/c\\"d.pem"}}',
  );
  const literal = tomlValue(servers);
  assertEquals(parseToml(`v = ${literal}`, "x").v, servers);
  assertEquals(
    tomlValue({ "with space": { url: "https://x" } }),
    '{ "with space" = { url = "https://x" } }',
  );
});
