import { assertEquals, assertThrows } from "@std/assert";
import { ConfigError } from "../../../src/lib/errors.ts";
import {
  PROXY_AUTH_PLACEHOLDER,
  proxyGuestEnv,
  rememberProxyAddress,
} from "../../../src/proxy/guest_env.ts";

const base = { credential_proxy: true, credential_proxy_port: 19280 };

Deno.test("guest env: base URL and the public placeholder only, without egress restriction", () => {
  rememberProxyAddress(null);
  const env = proxyGuestEnv(base, "tart", { egressRestricted: false });
  assertEquals(env, {
    ANTHROPIC_BASE_URL: "http://192.168.64.1:19280",
    ANTHROPIC_AUTH_TOKEN: PROXY_AUTH_PLACEHOLDER,
  });
  assertEquals(PROXY_AUTH_PLACEHOLDER, "tachikoma-proxy");
});

Deno.test("guest env: restricted egress adds both-case proxy variables and NO_PROXY", () => {
  rememberProxyAddress(null);
  const env = proxyGuestEnv({ ...base, credential_proxy_bind: "10.213.0.1" }, "incus", {
    egressRestricted: true,
  });
  const url = "http://10.213.0.1:19280";
  assertEquals(env.HTTP_PROXY, url);
  assertEquals(env.HTTPS_PROXY, url);
  assertEquals(env.http_proxy, url);
  assertEquals(env.https_proxy, url);
  assertEquals(env.NO_PROXY, "localhost,127.0.0.1,::1,10.213.0.1");
  assertEquals(env.no_proxy, env.NO_PROXY);
  assertEquals(Object.keys(env).some((k) => /API_KEY|OAUTH/.test(k)), false);
});

Deno.test("guest env: IPv6 addresses are bracketed in URLs", () => {
  const env = proxyGuestEnv({ ...base, credential_proxy_bind: "fd42::1" }, "incus", {
    egressRestricted: true,
  });
  assertEquals(env.ANTHROPIC_BASE_URL, "http://[fd42::1]:19280");
  assertEquals(env.NO_PROXY, "localhost,127.0.0.1,::1,fd42::1");
});

Deno.test("guest env: egress only (credential_proxy = false) sets no Anthropic variables", () => {
  const env = proxyGuestEnv(
    { credential_proxy: false, credential_proxy_port: 19280 },
    "memory",
    { egressRestricted: true },
  );
  assertEquals(env.ANTHROPIC_BASE_URL, undefined);
  assertEquals(env.ANTHROPIC_AUTH_TOKEN, undefined);
  assertEquals(env.HTTPS_PROXY, "http://127.0.0.1:19280");
  assertEquals(
    proxyGuestEnv({ credential_proxy: false, credential_proxy_port: 1 }, "tart", {
      egressRestricted: false,
    }),
    {},
  );
});

Deno.test("guest env: Incus needs the address ensureProxy() found (or an explicit one)", () => {
  rememberProxyAddress(null);
  assertThrows(() => proxyGuestEnv(base, "incus", { egressRestricted: false }), ConfigError);
  rememberProxyAddress({ bind: "10.213.0.1", port: 19280 });
  assertEquals(
    proxyGuestEnv(base, "incus", { egressRestricted: false }).ANTHROPIC_BASE_URL,
    "http://10.213.0.1:19280",
  );
  assertEquals(
    proxyGuestEnv(base, "incus", {
      egressRestricted: false,
      address: { bind: "10.0.0.9", port: 1234 },
    }).ANTHROPIC_BASE_URL,
    "http://10.0.0.9:1234",
  );
  rememberProxyAddress(null);
});
