/**
 * Clients we did not write, pointed at the proxy: curl (as a client of the API, and using the
 * proxy as its HTTP proxy, plain and with CONNECT) and the official @anthropic-ai/sdk
 * streaming a message.
 */
import Anthropic from "@anthropic-ai/sdk";
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { EgressPolicy } from "../../../src/proxy/egress.ts";
import { PROXY_AUTH_PLACEHOLDER } from "../../../src/proxy/guest_env.ts";
import { API_KEY, startHarness } from "./helpers.ts";

const hasCurl = (() => {
  try {
    return new Deno.Command("curl", { args: ["--version"], stdout: "null" }).outputSync().success;
  } catch {
    return false;
  }
})();
if (!hasCurl) console.error("real_clients_test: curl is not installed; curl tests are skipped");

async function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "10", ...args],
    env: { http_proxy: "", https_proxy: "", HTTP_PROXY: "", HTTPS_PROXY: "", ALL_PROXY: "" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test({
  name: "curl: streams a message through the proxy; its own key is replaced by the host's",
  ignore: !hasCurl,
  async fn() {
    const h = await startHarness({ upstreamOptions: { eventIntervalMs: 5 } });
    try {
      const r = await curl([
        "-N",
        "-X",
        "POST",
        `${h.proxy.url}/v1/messages`,
        "-H",
        "content-type: application/json",
        "-H",
        `x-api-key: ${PROXY_AUTH_PLACEHOLDER}`,
        "-d",
        JSON.stringify({ model: "claude-test", max_tokens: 8, stream: true, messages: [] }),
      ]);
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(r.stdout, "event: message_start");
      assertStringIncludes(r.stdout, "event: message_stop");
      assertEquals(h.upstream.requests.at(-1)!.headers["x-api-key"], API_KEY);
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "curl: as a forward proxy, off-list hosts are refused (plain and CONNECT)",
  ignore: !hasCurl,
  async fn() {
    const h = await startHarness({ policy: new EgressPolicy("allowlist", ["github.com"]) });
    try {
      const plain = await curl([
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-x",
        h.proxy.url,
        "http://blocked.example/v1/messages",
      ]);
      assertEquals(plain.stdout, "403");
      const tunnel = await curl(["-x", h.proxy.url, "https://blocked.example/"]);
      assertEquals(tunnel.code, 56, tunnel.stderr); // CONNECT tunnel failed
      assertStringIncludes(tunnel.stderr, "403");
      assertEquals(h.upstream.requests.length, 0);
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "curl: CONNECT tunnel (--proxytunnel) to an allowed target works, without credentials",
  ignore: !hasCurl,
  async fn() {
    const h = await startHarness({ policy: new EgressPolicy("allowlist", ["127.0.0.1"]) });
    try {
      const r = await curl(["-p", "-x", h.proxy.url, `${h.upstream.url}/v1/models`]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(JSON.parse(r.stdout).data[0].id, "claude-test");
      assertEquals(h.upstream.requests.at(-1)!.headers["x-api-key"], undefined);
    } finally {
      await h.close();
    }
  },
});

Deno.test("@anthropic-ai/sdk: streams a message with baseURL = the proxy", async () => {
  const h = await startHarness({ upstreamOptions: { eventIntervalMs: 2, deltas: 4 } });
  try {
    const client = new Anthropic({
      baseURL: h.proxy.url,
      apiKey: null,
      authToken: PROXY_AUTH_PLACEHOLDER,
      maxRetries: 0,
    });
    const stream = client.messages.stream({
      model: "claude-test",
      max_tokens: 16,
      messages: [{ role: "user", content: "hi" }],
    });
    let text = "";
    stream.on("text", (t: string) => text += t);
    const final = await stream.finalMessage();
    assertEquals(text, "Hello w1 w2 w3");
    assertEquals(final.stop_reason, "end_turn");
    const seen = h.upstream.requests.at(-1)!;
    assertEquals(seen.headers["x-api-key"], API_KEY);
    assertEquals(
      seen.headers["authorization"],
      undefined,
      "the placeholder must not reach the API",
    );
    assert(seen.headers["anthropic-version"], "SDK headers pass through");
  } finally {
    await h.close();
  }
});
