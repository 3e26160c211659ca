import { assertEquals } from "@std/assert";
import { normaliseApiPath } from "../../../src/proxy/path.ts";

Deno.test("path: traversal variants never escape /v1/", () => {
  for (
    const raw of [
      "/v1/../admin",
      "/v1/%2e%2e/x",
      "/v1/%2E%2E/x",
      "/v1/.%2e/x",
      "/v1/..%2fx",
      "/v1%2f..",
      "/v1%2F../admin",
      "//v1",
      "/v1",
      "/v1/",
      "/v1/..",
      "/v1/./..",
      "/",
      "/admin",
      "/v2/messages",
      "/v1x/messages",
      "/v1/%252e%252e/admin",
      "/v1/%5c../x",
      "/v1\\..\\admin",
      "/v1/mess\u0000ages",
      "/v1/a#frag",
      "v1/messages",
    ]
  ) {
    assertEquals(normaliseApiPath(raw).ok, false, raw);
  }
});

Deno.test("path: API paths are kept; harmless forms are normalised", () => {
  const ok = (raw: string) => {
    const r = normaliseApiPath(raw);
    return r.ok ? r.path : `refused: ${r.reason}`;
  };
  assertEquals(ok("/v1/messages"), "/v1/messages");
  assertEquals(ok("/v1/messages/count_tokens"), "/v1/messages/count_tokens");
  assertEquals(ok("//v1//messages"), "/v1/messages");
  assertEquals(ok("/v1/./messages"), "/v1/messages");
  assertEquals(ok("/v1/x/../messages"), "/v1/messages");
  assertEquals(ok("/v1/models/"), "/v1/models/");
  assertEquals(ok("/v1/files/file%20id"), "/v1/files/file%20id");
});
