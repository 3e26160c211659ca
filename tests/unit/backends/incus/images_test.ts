/**
 * Image references, the local alias that caches a pulled image, and how Incus' download
 * failures become one line naming the server and the alias (messages as Incus 6.0 words them).
 */
import { assert, assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import {
  cacheAlias,
  type ImageServer,
  parseImageRef,
} from "../../../../src/backends/incus/image_ref.ts";
import { progressText, pullError } from "../../../../src/backends/incus/images.ts";
import { preparedAlias } from "../../../../src/backends/incus/prepared.ts";
import {
  ConfigError,
  NotFoundError,
  RuntimeError,
  UnreachableError,
} from "../../../../src/lib/errors.ts";

const SERVERS: Record<string, ImageServer> = {
  images: { name: "images", url: "https://images.linuxcontainers.org", protocol: "simplestreams" },
  lab: {
    name: "lab",
    url: "https://127.0.0.1:18443/",
    protocol: "simplestreams",
    certificate: "/x/cert.pem",
  },
  mirror: { name: "mirror", url: "https://mirror.example/incus/", protocol: "incus" },
};

Deno.test("image refs: server:alias, local:alias, bare alias, fingerprint", () => {
  assertEquals(parseImageRef("images:debian/12", SERVERS), {
    kind: "remote",
    text: "images:debian/12",
    server: SERVERS.images,
    alias: "debian/12",
  });
  assertEquals(parseImageRef("lab:debian/12/noapt", SERVERS).kind, "remote");
  assertEquals(parseImageRef("local:tachikoma-test", SERVERS), {
    kind: "alias",
    text: "local:tachikoma-test",
    alias: "tachikoma-test",
  });
  assertEquals(parseImageRef("tachikoma-test", SERVERS), {
    kind: "alias",
    text: "tachikoma-test",
    alias: "tachikoma-test",
  });
  assertEquals(parseImageRef("49254caad511", SERVERS), {
    kind: "fingerprint",
    text: "49254caad511",
    fingerprint: "49254caad511",
  });
  // ubuntu (the tart default) is a local alias on Incus, not a server
  assertEquals(parseImageRef("ubuntu", SERVERS).kind, "alias");
});

Deno.test("image refs: an unknown server or a bad alias is one ConfigError naming the key", () => {
  const e = assertThrows(
    () => parseImageRef("nope:debian/12", SERVERS, "incus.image"),
    ConfigError,
  );
  assertEquals(
    e.message,
    'incus.image = "nope:debian/12": no image server named "nope" (configured: images, lab, mirror)',
  );
  assert(e.hint?.includes("[incus.image_servers.nope]"));
  for (const bad of ["lab:", "lab:debian 12", "lab:a\nb", "has space", "", "x\u0007y"]) {
    const error = assertThrows(() => parseImageRef(bad, SERVERS), ConfigError, undefined, bad);
    assert(!error.message.includes("\n"), JSON.stringify(error.message));
  }
  // hostile server names never reach a hint as they are
  const h = assertThrows(() => parseImageRef("$(rm -rf ~):x", SERVERS), ConfigError);
  assert(h.hint?.includes("[incus.image_servers.NAME]"), h.hint);
  // a URL is never a reference: servers come only from the configuration
  assertThrows(() => parseImageRef("https://evil.example/debian", SERVERS), ConfigError);
});

Deno.test("cache aliases: per server host and path, so two servers never share one", () => {
  const ref = (text: string) => parseImageRef(text, SERVERS) as Parameters<typeof cacheAlias>[0];
  assertEquals(
    cacheAlias(ref("images:debian/12")),
    "tachikoma/images.linuxcontainers.org/debian/12",
  );
  assertEquals(cacheAlias(ref("lab:debian/12")), "tachikoma/127.0.0.1:18443/debian/12");
  assertEquals(cacheAlias(ref("mirror:debian/12")), "tachikoma/mirror.example/incus/debian/12");
  assertEquals(
    preparedAlias(
      "49254caad5119f4ab89bb9a69ba6162f73ea1cf74a521cade136a1945f0854dc",
      "e70f05f29f01",
    ),
    "tachikoma/prepared/49254caad511/e70f05f29f01",
  );
});

Deno.test("pull failures: one line naming server and alias, typed by cause", () => {
  const ref = parseImageRef("lab:debian/99", SERVERS) as Extract<
    ReturnType<typeof parseImageRef>,
    { kind: "remote" }
  >;
  const missing = pullError(
    ref,
    "Failed getting remote image info: Failed getting image: The requested image couldn't be found",
  );
  assertInstanceOf(missing, NotFoundError);
  assertEquals(
    missing.message,
    "image lab:debian/99 (https://127.0.0.1:18443/): no such image on the server",
  );
  const refused = pullError(
    ref,
    'Failed getting remote image info: Failed getting image: Failed parsing stream: Get "https://127.0.0.1:18444/streams/v1/index.json": Unable to connect to: 127.0.0.1:18444 ([dial tcp 127.0.0.1:18444: connect: connection refused])',
  );
  assertInstanceOf(refused, UnreachableError);
  assert(
    refused.message.startsWith(
      "image lab:debian/99 (https://127.0.0.1:18443/): the image server is unreachable (",
    ),
  );
  assert(refused.message.includes("connection refused"), refused.message);
  const tls = pullError(
    ref,
    'Get "https://127.0.0.1:18443/images/6512.incus.tar.xz": tls: failed to verify certificate: x509: certificate signed by unknown authority',
  );
  assertInstanceOf(tls, UnreachableError);
  assert(tls.message.includes("the server's certificate is not trusted"), tls.message);
  assert(tls.hint?.includes("[incus.image_servers.lab]"));
  const other = pullError(ref, "Failed to create image: disk\nfull");
  assertInstanceOf(other, RuntimeError);
  for (const e of [missing, refused, tls, other]) assert(!e.message.includes("\n"), e.message);
});

Deno.test("pull progress: Incus' download_progress text", () => {
  assertEquals(
    progressText({ download_progress: "rootfs: 45% (12.30MB/s)" }),
    "rootfs: 45% (12.30MB/s)",
  );
  assertEquals(progressText({ fingerprint: "x" }), null);
  assertEquals(progressText({ download_progress: "  " }), null);
});
