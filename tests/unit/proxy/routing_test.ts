import { assertEquals } from "@std/assert";
import { routeRequest, selfAuthorities } from "../../../src/proxy/routing.ts";

const self = selfAuthorities("10.213.0.1", 19280);

Deno.test("routing: /health only as a plain path on the proxy itself", () => {
  assertEquals(routeRequest("GET", "http://10.213.0.1:19280/health", self), { kind: "health" });
  assertEquals(routeRequest("HEAD", "http://10.213.0.1:19280/health", self), { kind: "health" });
  assertEquals(routeRequest("GET", "http://example.com/health", self).kind, "forward");
  assertEquals(routeRequest("POST", "http://10.213.0.1:19280/health", self).kind, "reject");
  assertEquals(routeRequest("GET", "http://10.213.0.1:19280/health/x", self).kind, "reject");
});

Deno.test("routing: /v1/* to the proxy is an API call; to any other host it is egress", () => {
  assertEquals(routeRequest("POST", "http://10.213.0.1:19280/v1/messages?beta=true", self), {
    kind: "api",
    path: "/v1/messages",
    query: "beta=true",
  });
  assertEquals(routeRequest("POST", "http://anyhost/v1/messages", self), {
    kind: "forward",
    host: "anyhost",
    port: 80,
    pathAndQuery: "/v1/messages",
  });
  // Same address, other port: not the proxy.
  assertEquals(routeRequest("POST", "http://10.213.0.1:8080/v1/messages", self).kind, "forward");
  assertEquals(routeRequest("GET", "http://[::1]:19280/v1/models", self).kind, "forward");
});

Deno.test("routing: non-/v1 paths to the proxy are 403", () => {
  for (const p of ["/", "/admin", "/v1/../admin", "/v1/%2e%2e/x", "//v1", "/v2/x"]) {
    const r = routeRequest("GET", `http://10.213.0.1:19280${p}`, self);
    assertEquals(r.kind === "reject" && r.status, 403, p);
  }
});

Deno.test("routing: loopback binds answer to localhost names; IPv6 binds are bracketed", () => {
  const lo = selfAuthorities("127.0.0.1", 19280);
  assertEquals(routeRequest("GET", "http://localhost:19280/health", lo), { kind: "health" });
  const v6 = selfAuthorities("fd42::1", 19280);
  assertEquals(routeRequest("GET", "http://[fd42::1]:19280/health", v6), { kind: "health" });
});

Deno.test("routing: CONNECT after another request and bad targets", () => {
  assertEquals(routeRequest("CONNECT", "http://x:443", self).kind, "reject");
  assertEquals(routeRequest("GET", "https://example.com/", self).kind, "reject");
  assertEquals(routeRequest("GET", "http://exa mple.com/", self).kind, "reject");
});

Deno.test("routing: a refusal says whose authentication applies (401 API, 407 proxying)", () => {
  const audience = (method: string, url: string) => {
    const r = routeRequest(method, url, self);
    return r.kind === "reject" ? r.audience : r.kind;
  };
  assertEquals(audience("GET", "http://10.213.0.1:19280/admin"), "api");
  assertEquals(audience("GET", "http://10.213.0.1:19280/v1/../x"), "api");
  assertEquals(audience("CONNECT", "http://x:443"), "proxy");
  assertEquals(audience("GET", "https://example.com/"), "proxy");
  assertEquals(audience("GET", "http://exa mple.com/"), "proxy");
});
