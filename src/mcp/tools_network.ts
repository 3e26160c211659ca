/**
 * Egress tools: network_show, network_set, network_allow, network_deny, network_log. They
 * call the same core as `tachikoma network …` (`src/core/network.ts`): the policy is the
 * sandbox's own, enforced on the host by the proxy and, where the engine can, by the engine.
 *
 * @module
 */
import { z } from "zod";
import { allowHost, denyHost, networkLog, setNetworkMode, showNetwork } from "../core/network.ts";
import { repoArg, sandboxArg } from "./schemas.ts";
import { changes, READ_ONLY, type ToolSpec } from "./tooling.ts";

const MODES = ["unrestricted", "agent", "allowlist", "none"] as const;

const MODE_DOC = "Egress modes: unrestricted (direct access, no engine restriction), agent " +
  "(a preset of package registries, model APIs and forges, plus the allow list), allowlist " +
  "(the allow list only), none (nothing). In every mode but unrestricted the sandbox reaches " +
  "only the host proxy (HTTP_PROXY/HTTPS_PROXY in the sandbox), which refuses other hosts " +
  "with 403.";

// Checked by the core (one clear message naming the value), not by the schema.
const hostArg = z.string().describe(
  "host (exact), *.host (subdomains), .host (host and subdomains), an IP or a CIDR, " +
    "optionally with :port",
);

const viewOutput = {
  name: z.string().describe("the sandbox"),
  backend: z.string(),
  mode: z.enum(MODES),
  allow: z.array(z.string()),
  source: z.enum(["sandbox", "config"]).describe(
    "sandbox: its own policy; config: none recorded yet, the configuration's",
  ),
  proxy: z.object({ enforced: z.boolean() }),
  engine: z.object({
    mechanism: z.string().nullable().describe("nftables (incus), softnet (tart) or null"),
    restricted: z.boolean().describe("the engine keeps the sandbox to the proxy"),
    error: z.string().nullable().describe("why the engine could not apply the policy"),
  }),
};

const changeOutput = { ...viewOutput, changed: z.boolean() };

const showInput = { sandbox: sandboxArg, repo: repoArg };

/** network_show */
export const networkShowTool: ToolSpec<typeof showInput, typeof viewOutput> = {
  name: "network_show",
  title: "Show a sandbox's egress policy",
  description: `Show a sandbox's egress mode, allow list and where they are enforced. ${MODE_DOC}`,
  input: showInput,
  output: viewOutput,
  annotations: READ_ONLY,
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    return { data: await showNetwork(service, { name: args.sandbox }) };
  },
};

const setInput = {
  sandbox: sandboxArg,
  mode: z.string().describe("unrestricted, agent, allowlist or none"),
  repo: repoArg,
};

/** network_set */
export const networkSetTool: ToolSpec<typeof setInput, typeof changeOutput> = {
  name: "network_set",
  title: "Set a sandbox's egress mode",
  description: `Set a sandbox's egress mode; a running sandbox gets it at once. ${MODE_DOC}`,
  input: setInput,
  output: changeOutput,
  annotations: changes(false, true),
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    return { data: await setNetworkMode(service, { name: args.sandbox, mode: args.mode }) };
  },
};

const hostInput = { sandbox: sandboxArg, host: hostArg, repo: repoArg };

/** network_allow */
export const networkAllowTool: ToolSpec<typeof hostInput, typeof changeOutput> = {
  name: "network_allow",
  title: "Allow a host for a sandbox",
  description: "Add a host to a sandbox's egress allow list (applies to its next request " +
    "through the proxy).",
  input: hostInput,
  output: changeOutput,
  annotations: changes(false, true),
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    return { data: await allowHost(service, { name: args.sandbox, host: args.host }) };
  },
};

/** network_deny */
export const networkDenyTool: ToolSpec<typeof hostInput, typeof changeOutput> = {
  name: "network_deny",
  title: "Remove a host from a sandbox's allow list",
  description: "Remove a host from a sandbox's egress allow list (applies to its next request " +
    "through the proxy).",
  input: hostInput,
  output: changeOutput,
  annotations: changes(false, true),
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    return { data: await denyHost(service, { name: args.sandbox, host: args.host }) };
  },
};

const logInput = {
  sandbox: sandboxArg,
  repo: repoArg,
  last: z.number().int().min(1).max(10_000).optional().describe(
    "only the last N entries (default 200)",
  ),
};

const logOutput = {
  name: z.string().describe("the sandbox"),
  entries: z.array(z.object({
    time: z.string().describe("RFC 3339 UTC"),
    sandbox: z.string(),
    method: z.string().describe("CONNECT, or the plain-HTTP method"),
    host: z.string(),
    port: z.number().int(),
    verdict: z.enum(["allowed", "refused"]),
    reason: z.string().optional(),
  })).describe("oldest first"),
};

/** network_log */
export const networkLogTool: ToolSpec<typeof logInput, typeof logOutput> = {
  name: "network_log",
  title: "A sandbox's egress log",
  description: "The connections a sandbox asked the proxy for, allowed and refused: time, " +
    "host, port, verdict and why it was refused. Use it to see what to allow.",
  input: logInput,
  output: logOutput,
  annotations: READ_ONLY,
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    const result = await networkLog(service, { name: args.sandbox });
    return { data: { name: result.name, entries: result.entries.slice(-(args.last ?? 200)) } };
  },
};
