/**
 * The README's quick start verbatim on the lab, through a real pseudo-terminal (util-linux
 * `script`): in a fresh repo's main checkout, bare `tachikoma` asks for a branch, the answer
 * gets its own worktree and a real Incus sandbox, and the user lands in the sandbox's shell —
 * which sees the repo's code and whose exit status becomes tachikoma's.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { IncusClient } from "../../src/backends/incus/client.ts";
import { quoteArgv } from "../../src/lib/shell.ts";
import { LAB_EGRESS_ALLOW, labEnv, labIgnored } from "./lab.ts";
import { freePort, workspace } from "./stock_lab.ts";
import { ok } from "../testing/run.ts";
import { removeInstancesOf } from "./stock_incus.ts";

const lab = labEnv();
const ROOT = new URL("../../", import.meta.url).pathname;
const hasScript = await new Deno.Command("script", { args: ["--version"], stdout: "null" })
  .output().then((o) => o.success, () => false);

Deno.test({
  name:
    "quick start on the lab through a PTY: bare tachikoma in the main checkout → new branch → " +
    "a shell in a real sandbox that sees the code",
  ignore: labIgnored() || !hasScript,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const ws = await workspace({
      prefix: "qs",
      env: {
        TACHIKOMA_BACKEND: "incus",
        TACHIKOMA_INCUS_SOCKET: lab!.socket,
        TACHIKOMA_BASE_IMAGE: lab!.image,
        TACHIKOMA_CREDENTIAL_PROXY: "false",
        // Its own proxy port: another configuration's proxy may hold the default one.
        TACHIKOMA_CREDENTIAL_PROXY_PORT: String(freePort()),
        TACHIKOMA_CLAUDE_INSTALL: "skip",
        TACHIKOMA_EGRESS_ALLOW: LAB_EGRESS_ALLOW,
        TACHIKOMA_VM_CPUS: "1",
        TACHIKOMA_VM_MEMORY: "1024",
        TERM: "dumb",
      },
    });
    const client = await IncusClient.open({ socket: lab!.socket });
    try {
      const command = quoteArgv([
        Deno.execPath(),
        "run",
        "-A",
        "--frozen",
        "--config",
        `${ROOT}deno.json`,
        `${ROOT}main.ts`,
      ]);
      const child = new Deno.Command("script", {
        args: ["-q", "-e", "-f", "-c", command, "/dev/null"],
        cwd: ws.repo,
        clearEnv: true,
        env: ws.env,
        stdin: "piped",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const steps = [
        { waitFor: "New branch name [work-1]: ", type: "qs/first\n" },
        // In the guest's shell: the code is there; the exit status comes back.
        { waitFor: "ready at", type: 'cat README.md; echo "QS-$((6*7))"; exit 3\n' },
      ];
      const writer = child.stdin.getWriter();
      let output = "";
      const reading = (async () => {
        const decoder = new TextDecoder();
        for await (const chunk of child.stdout) {
          output += decoder.decode(chunk, { stream: true });
          while (steps.length > 0 && output.includes(steps[0].waitFor)) {
            await writer.write(new TextEncoder().encode(steps.shift()!.type));
          }
        }
      })();
      const deadline = setTimeout(() => child.kill("SIGKILL"), 180_000);
      const status = await child.status;
      clearTimeout(deadline);
      await reading;
      await writer.close().catch(() => {});
      assertEquals(steps, [], `unanswered; output:\n${output}`);
      assertEquals(status.code, 3, output);
      assertStringIncludes(output, "'main' is checked out in the main checkout");
      assert(/Created tachikoma-\S+-qs-first, ready at 10\./.test(output), output);
      assertStringIncludes(output, "hello");
      assertStringIncludes(output, "QS-42");

      const base = ws.repo.slice(ws.repo.lastIndexOf("/") + 1);
      const branch = ok(
        await ws.run("git", ["branch", "--show-current"], { cwd: `${ws.top}/${base}-qs-first` }),
        "git branch",
      ).stdout.trim();
      assertEquals(branch, "qs/first");
      const list = JSON.parse(ok(await ws.cli(["list", "--json"]), "list").stdout);
      assertEquals(list.sandboxes.map((s: { branch: string }) => s.branch), ["qs/first"]);
      ok(await ws.cli(["destroy", "qs/first", "--force"]), "destroy");
    } finally {
      await ws.cli(["proxy", "stop"]).catch(() => {});
      await removeInstancesOf(client, ws.repo);
      client.close();
      await ws.remove();
    }
  },
});
