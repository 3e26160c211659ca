/**
 * Tokens through the sandbox lifecycle (spawn, destroy, prune over the memory backend, the real
 * proxy link and token store): a new sandbox is provisioned with its own token; one that has
 * none (provisioned before tokens existed, or lost) gets one at the next spawn, re-running only
 * the step whose inputs carry it; a sandbox made again under the same name gets a new token;
 * destroy and prune revoke it.
 */
import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { proxyLink } from "../../../src/core/proxy_link.ts";
import type { ProvisionContext, ProvisionRunOptions } from "../../../src/provision/contract.ts";
import { hasToken, readToken, revokeToken } from "../../../src/proxy/tokens.ts";
import { FakeProvisioner, type Harness, harness } from "../core/helpers.ts";

/**
 * A provisioner whose `env` step writes the proxy guest environment as the real profile step
 * does (only with `credential_proxy` on): its fingerprint covers that environment, and each run
 * records what it wrote.
 */
class EnvProvisioner extends FakeProvisioner {
  /** Sandbox → the environment its last `env` step wrote. */
  readonly written = new Map<string, Record<string, string>>();
  constructor(readonly link: (ctx: ProvisionContext) => Promise<Record<string, string>>) {
    super();
  }
  guestEnv(ctx: ProvisionContext): Promise<Record<string, string>> {
    return ctx.config.credential_proxy ? this.link(ctx) : Promise.resolve({});
  }
  override async fingerprint(ctx: ProvisionContext): Promise<Record<string, string>> {
    return { ...this.inputs, env: JSON.stringify(await this.guestEnv(ctx)) };
  }
  override async run(ctx: ProvisionContext, options: ProvisionRunOptions): Promise<void> {
    await super.run(ctx, {
      ...options,
      onStepDone: async (step) => {
        if (step === "env") this.written.set(ctx.sandbox, await this.guestEnv(ctx));
        await options.onStepDone(step);
      },
    });
  }
}

async function withLink(
  config: { credential_proxy?: boolean } = {},
): Promise<Harness & { provisioner2: EnvProvisioner }> {
  const h = await harness({ config });
  const link = proxyLink(h.deps.config, h.stateDir);
  const provisioner2 = new EnvProvisioner((ctx) => link.guestEnv(ctx));
  h.deps.proxy = link;
  h.deps.provisioner = () => Promise.resolve(provisioner2);
  h.service.deps.proxy = link;
  h.service.deps.provisioner = h.deps.provisioner;
  return Object.assign(h, { provisioner2 });
}

Deno.test("spawn: a new sandbox is provisioned with its own token; destroy revokes it", async () => {
  await using h = await withLink();
  const a = await h.service.spawn({ branch: "feature/a" });
  const b = await h.service.spawn({ branch: "feature/b" });
  const tokenA = await readToken(h.stateDir, a.name);
  const tokenB = await readToken(h.stateDir, b.name);
  if (!tokenA || !tokenB) throw new Error("no token made");
  assertNotEquals(tokenA, tokenB);
  assertEquals(h.provisioner2.written.get(a.name)?.ANTHROPIC_AUTH_TOKEN, tokenA);
  assertEquals(
    h.provisioner2.written.get(b.name)?.HTTPS_PROXY,
    `http://tachikoma:${tokenB}@127.0.0.1:19280`,
  );
  assert(!JSON.stringify(h.provisioner2.written.get(a.name)).includes(tokenB));
  // Reconnecting changes nothing.
  await h.service.spawn({ branch: "feature/a" });
  assertEquals(h.provisioner2.runs.length, 2);
  assertEquals(await readToken(h.stateDir, a.name), tokenA);

  await h.service.destroy((await h.store.get(a.name))!);
  assertEquals(await hasToken(h.stateDir, a.name), false);
  assertEquals(await readToken(h.stateDir, b.name), tokenB, "another sandbox's token was revoked");
});

Deno.test("spawn: a sandbox without a token gets one; only the step carrying it re-runs", async () => {
  await using h = await withLink();
  const { name } = await h.service.spawn({ branch: "old" });
  const before = await readToken(h.stateDir, name);
  // As if provisioned by a tachikoma without tokens (or the token was lost).
  await revokeToken(h.stateDir, name);
  const again = await h.service.spawn({ branch: "old" });
  assertEquals(again.action, "reconnected");
  assertEquals(again.provisioning.reason, "reprovision");
  assertEquals(again.provisioning.steps, ["env"]);
  const after = await readToken(h.stateDir, name);
  assert(after && after !== before);
  assertEquals(h.provisioner2.written.get(name)?.ANTHROPIC_AUTH_TOKEN, after);
  assert(h.reporter.events.some((e) => e.includes(`${name} has no proxy token yet`)));
  // And then it is current again.
  const third = await h.service.spawn({ branch: "old" });
  assertEquals(third.provisioning.ran, false);
});

Deno.test("spawn: a sandbox made again under the same name gets a new token; prune revokes", async () => {
  await using h = await withLink();
  const { name } = await h.service.spawn({ branch: "again" });
  const first = await readToken(h.stateDir, name);
  await h.backend.delete(name); // gone from the engine behind tachikoma's back
  const recreated = await h.service.spawn({ branch: "again" });
  assertEquals(recreated.action, "created");
  const second = await readToken(h.stateDir, name);
  assert(second && second !== first, "the old sandbox's token was reused");
  assertEquals(h.provisioner2.written.get(name)?.ANTHROPIC_AUTH_TOKEN, second);

  await h.backend.delete(name);
  const pruned = await h.service.prune({ days: 30 });
  assertEquals(pruned.pruned.map((p) => [p.name, p.reason]), [[name, "missing"]]);
  assertEquals(await hasToken(h.stateDir, name), false);
});

Deno.test("spawn: with credential_proxy off, no token is made or asked for", async () => {
  await using h = await withLink({ credential_proxy: false });
  const { name } = await h.service.spawn({ branch: "direct" });
  await h.service.spawn({ branch: "direct" });
  assertEquals(h.provisioner2.runs.length, 1);
  assertEquals(await hasToken(h.stateDir, name), false);
});
