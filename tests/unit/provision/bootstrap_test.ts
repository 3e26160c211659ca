/**
 * The bootstrap step from the host side: nothing on engines whose exec needs SSH; elsewhere one
 * exec as root of the constant script with the user and the packages as arguments, apt's proxy
 * environment (and nothing of the credential proxy's, no NO_PROXY) when egress is restricted,
 * and a failure that is one line, marks the guest unusable and says what to do. The tmux step
 * downloads with the same environment. (The script
 * itself runs against real stock images in tests/integration/stock_image*_test.ts.)
 */
import { assert, assertEquals } from "@std/assert";
import { registerSecret } from "../../../src/lib/redact.ts";
import { MemoryBackend } from "../../../src/backends/memory/backend.ts";
import type { ExecRequest, ExecResult } from "../../../src/backends/backend.ts";
import { createProvisioner } from "../../../src/provision/mod.ts";
import { ProvisionError } from "../../../src/provision/errors.ts";
import { isUnusableGuest, type ProvisionContext } from "../../../src/provision/contract.ts";
import {
  BOOTSTRAP_PACKAGES,
  bootstrapRecipe,
  explainedFailure,
  parseDid,
} from "../../../src/provision/bootstrap.ts";
import { BOOTSTRAP_SCRIPT } from "../../../src/provision/bootstrap_script.ts";
import { defaultConfig } from "../../../src/config/default_config.ts";
import type { Config } from "../../../src/config/schema.ts";
import { RecordingReporter } from "../../testing/recording_reporter.ts";
import type { SandboxRecord } from "../../../src/state/schema.ts";

const enc = new TextEncoder();
const PROXY = "http://tachikoma:tok_secret@10.213.0.1:19280";

async function bootstrapOnce(options: {
  execOverSsh: boolean;
  config?: Partial<Config>;
  answer?: (request: ExecRequest) => ExecResult;
  /** The step to run (default: bootstrap). */
  step?: string;
}): Promise<{ requests: ExecRequest[]; error: unknown }> {
  const requests: ExecRequest[] = [];
  const backend = new MemoryBackend({
    capabilities: { execOverSsh: options.execOverSsh },
    exec: (_name, request) => {
      requests.push(request);
      return Promise.resolve(
        options.answer?.(request) ??
          {
            code: 0,
            stdout: enc.encode("tachikoma-bootstrap-did: user sudo\n"),
            stderr: enc.encode(""),
          },
      );
    },
  });
  await backend.seed("sb", { state: "running" });
  const config: Config = { ...defaultConfig("linux"), ssh_user: "dev", ...options.config };
  const ctx: ProvisionContext = {
    backend,
    sandbox: "sb",
    record: { name: "sb", branch: "main", worktree_path: "/nonexistent" } as SandboxRecord,
    config,
    stateDir: "/nonexistent",
    reporter: new RecordingReporter(),
  };
  const provisioner = createProvisioner({
    proxyEnv: () => ({
      ANTHROPIC_BASE_URL: "http://10.213.0.1:19280",
      ANTHROPIC_AUTH_TOKEN: "tok_secret",
      HTTP_PROXY: PROXY,
      HTTPS_PROXY: PROXY,
      http_proxy: PROXY,
      https_proxy: PROXY,
      NO_PROXY: "localhost,127.0.0.1,::1,10.213.0.1",
      no_proxy: "localhost,127.0.0.1,::1,10.213.0.1",
    }),
  });
  let error: unknown = null;
  try {
    await provisioner.run(ctx, {
      after: null,
      only: [options.step ?? "bootstrap"],
      onStepDone: () => Promise.resolve(),
    });
  } catch (e) {
    error = e;
  }
  return { requests, error };
}

Deno.test("bootstrap: nothing to do where exec goes through SSH (tart's images are ready)", async () => {
  const { requests, error } = await bootstrapOnce({ execOverSsh: true });
  assertEquals(error, null);
  assertEquals(requests, []);
});

Deno.test("bootstrap: one exec as root, user and packages as arguments, apt's proxy only", async () => {
  const { requests, error } = await bootstrapOnce({ execOverSsh: false });
  assertEquals(error, null);
  assertEquals(requests.length, 1);
  const r = requests[0];
  assertEquals(r.user, "root");
  assertEquals(r.argv, [
    "sh",
    "-c",
    BOOTSTRAP_SCRIPT,
    "tachikoma",
    "dev",
    BOOTSTRAP_PACKAGES.join(" "),
  ]);
  assertEquals(r.env, {
    HTTP_PROXY: PROXY,
    HTTPS_PROXY: PROXY,
    http_proxy: PROXY,
    https_proxy: PROXY,
  });
  // unrestricted egress: apt goes direct
  const direct = await bootstrapOnce({ execOverSsh: false, config: { egress: "unrestricted" } });
  assertEquals(direct.requests[0].env, {});
  // hostile user names never become shell text: validated before anything runs
  const hostile = await bootstrapOnce({ execOverSsh: false, config: { ssh_user: "a$(id)" } });
  assertEquals(hostile.requests, []);
  assert(hostile.error instanceof Error && /ssh_user/.test(hostile.error.message));
});

function provisionError(error: unknown): ProvisionError {
  if (!(error instanceof ProvisionError)) throw new Error(`not a ProvisionError: ${error}`);
  return error;
}

Deno.test("bootstrap: a failure is one line, the guest unusable, with a hint", async () => {
  const fail = (stderr: string, code = 90) => () => ({
    code,
    stdout: new Uint8Array(),
    stderr: enc.encode(stderr),
  });
  let error = provisionError(
    (await bootstrapOnce({
      execOverSsh: false,
      answer: fail(
        "Reading package lists...\ntachikoma-bootstrap-error: the image (Alpine Linux v3.20) has no " +
          "apt-get/dpkg: cannot install openssh-server sudo\n",
      ),
    })).error,
  );
  assertEquals(
    error.message,
    "provisioning step 'bootstrap' failed: the image (Alpine Linux v3.20) has no apt-get/dpkg: " +
      "cannot install openssh-server sudo",
  );
  assert(isUnusableGuest(error));
  assert(error.hint?.includes("Debian or Ubuntu"), error.hint);
  error = provisionError(
    (await bootstrapOnce({
      execOverSsh: false,
      answer: fail(
        "tachikoma-bootstrap-error: apt-get update failed: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease 403 Forbidden\n",
      ),
    })).error,
  );
  assert(error.hint?.includes("egress_allow"), error.hint);
  error = provisionError(
    (await bootstrapOnce({
      execOverSsh: false,
      answer: fail("sh: 1: oops\nline two\n", 2),
    })).error,
  );
  assertEquals(
    error.message,
    "provisioning step 'bootstrap' failed: the bootstrap script exited 2: line two",
  );
  assert(isUnusableGuest(error));
  // the proxy token (a registered secret) in the guest's output never reaches the message
  registerSecret("tok_secret");
  error = provisionError(
    (await bootstrapOnce({
      execOverSsh: false,
      answer: fail(`tachikoma-bootstrap-error: apt-get update failed: proxy ${PROXY} refused\n`),
    })).error,
  );
  assert(!error.message.includes("tok_secret"), error.message);
});

Deno.test("bootstrap: the script's report lines; the recipe changes with the user", async () => {
  assertEquals(parseDid("x\ntachikoma-bootstrap-did: packages:sudo,git user sudo\n"), [
    "packages:sudo,git",
    "user",
    "sudo",
  ]);
  assertEquals(parseDid("tachikoma-bootstrap-did:\n"), []);
  assertEquals(explainedFailure("a\ntachikoma-bootstrap-error: why  \n"), "why");
  assertEquals(explainedFailure("nothing"), null);
  const admin = await bootstrapRecipe("admin");
  assertEquals(admin, await bootstrapRecipe("admin"));
  assert(/^[0-9a-f]{12}$/.test(admin));
  assert(admin !== await bootstrapRecipe("dev"));
});

Deno.test("sessions step: tmux is downloaded with apt's proxy only when egress is restricted", async () => {
  const answer = (request: ExecRequest): ExecResult => ({
    code: 0,
    stdout: enc.encode(
      request.argv[0] === "getent" ? "dev:x:1000:1000::/home/dev:/bin/bash\n" : "installed\n",
    ),
    stderr: new Uint8Array(),
  });
  const install = (requests: ExecRequest[]) =>
    requests.filter((r) => r.argv[0] === "sh" && r.argv[2]?.includes("install tmux"));
  const restricted = await bootstrapOnce({ execOverSsh: false, step: "sessions", answer });
  assertEquals(restricted.error, null);
  const [inRestricted] = install(restricted.requests);
  assertEquals(inRestricted.user, "root");
  assertEquals(inRestricted.env, {
    HTTP_PROXY: PROXY,
    HTTPS_PROXY: PROXY,
    http_proxy: PROXY,
    https_proxy: PROXY,
  });
  const direct = await bootstrapOnce({
    execOverSsh: false,
    step: "sessions",
    answer,
    config: { egress: "unrestricted" },
  });
  assertEquals(direct.error, null);
  assertEquals(install(direct.requests)[0].env ?? {}, {});
});
