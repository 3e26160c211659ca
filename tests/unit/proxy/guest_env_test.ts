import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { ConfigError, RuntimeError } from "../../../src/lib/errors.ts";
import { PROXY_USER, proxyGuestEnv, rememberProxyAddress } from "../../../src/proxy/guest_env.ts";
import { proxyToken } from "../../../src/proxy/auth.ts";
import { newToken } from "../../../src/proxy/tokens.ts";

const base = { credential_proxy: true, credential_proxy_port: 19280 };
const token = newToken();

Deno.test("guest env: base URL and the sandbox's own token, without egress restriction", () => {
  rememberProxyAddress(null);
  const env = proxyGuestEnv(base, "tart", { egressRestricted: false, token });
  assertEquals(env, {
    ANTHROPIC_BASE_URL: "http://192.168.64.1:19280",
    ANTHROPIC_AUTH_TOKEN: token,
  });
  assertEquals(token.length, 43);
  assertNotEquals(newToken(), token, "every token is random");
});

Deno.test("guest env: restricted egress: both-case proxy URLs carry the token; NO_PROXY", () => {
  rememberProxyAddress(null);
  const env = proxyGuestEnv({ ...base, credential_proxy_bind: "10.213.0.1" }, "incus", {
    egressRestricted: true,
    token,
  });
  const url = `http://${PROXY_USER}:${token}@10.213.0.1:19280`;
  assertEquals(env.HTTP_PROXY, url);
  assertEquals(env.HTTPS_PROXY, url);
  assertEquals(env.http_proxy, url);
  assertEquals(env.https_proxy, url);
  assertEquals(env.NO_PROXY, "localhost,127.0.0.1,::1,10.213.0.1");
  assertEquals(env.no_proxy, env.NO_PROXY);
  assertEquals(Object.keys(env).some((k) => /API_KEY|OAUTH/.test(k)), false);
  // What a client derives from the URL is what the proxy reads back.
  const parsed = new URL(url);
  assertEquals([parsed.username, parsed.password, parsed.host], [
    PROXY_USER,
    token,
    "10.213.0.1:19280",
  ]);
  const basic = `Basic ${btoa(`${parsed.username}:${parsed.password}`)}`;
  assertEquals(proxyToken(basic), token);
});

Deno.test("guest env: IPv6 addresses are bracketed in URLs", () => {
  const env = proxyGuestEnv({ ...base, credential_proxy_bind: "fd42::1" }, "incus", {
    egressRestricted: true,
    token,
  });
  assertEquals(env.ANTHROPIC_BASE_URL, "http://[fd42::1]:19280");
  assertEquals(env.HTTPS_PROXY, `http://${PROXY_USER}:${token}@[fd42::1]:19280`);
  assertEquals(env.NO_PROXY, "localhost,127.0.0.1,::1,fd42::1");
});

Deno.test("guest env: egress only (credential_proxy = false) sets no Anthropic variables", () => {
  const env = proxyGuestEnv(
    { credential_proxy: false, credential_proxy_port: 19280 },
    "memory",
    { egressRestricted: true, token },
  );
  assertEquals(env.ANTHROPIC_BASE_URL, undefined);
  assertEquals(env.ANTHROPIC_AUTH_TOKEN, undefined);
  assertEquals(env.HTTPS_PROXY, `http://${PROXY_USER}:${token}@127.0.0.1:19280`);
  assertEquals(
    proxyGuestEnv({ credential_proxy: false, credential_proxy_port: 1 }, "tart", {
      egressRestricted: false,
      token,
    }),
    {},
  );
});

Deno.test("guest env: a malformed token is refused, never written into a URL", () => {
  for (
    const bad of ["", "short", `${token.slice(0, 42)}@`, `${token.slice(0, 42)}/`, "a".repeat(44)]
  ) {
    const e = assertThrows(
      () => proxyGuestEnv(base, "tart", { egressRestricted: true, token: bad }),
      RuntimeError,
    );
    assert(bad === "" || !e.message.includes(bad));
  }
});

Deno.test("guest env: Incus needs the address ensureProxy() found (or an explicit one)", () => {
  rememberProxyAddress(null);
  assertThrows(() => proxyGuestEnv(base, "incus", { egressRestricted: false, token }), ConfigError);
  rememberProxyAddress({ bind: "10.213.0.1", port: 19280 });
  assertEquals(
    proxyGuestEnv(base, "incus", { egressRestricted: false, token }).ANTHROPIC_BASE_URL,
    "http://10.213.0.1:19280",
  );
  assertEquals(
    proxyGuestEnv(base, "incus", {
      egressRestricted: false,
      address: { bind: "10.0.0.9", port: 1234 },
      token,
    }).ANTHROPIC_BASE_URL,
    "http://10.0.0.9:1234",
  );
  rememberProxyAddress(null);
});
