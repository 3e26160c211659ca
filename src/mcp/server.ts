/**
 * The MCP server: `tachikoma` with its tools (sandbox lifecycle, exec, files, checkpoints),
 * built on the SDK's {@link McpServer}, which negotiates the protocol version (the newest it supports;
 * older clients get the version they ask for when it is supported).
 *
 * @module
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { VERSION } from "../lib/version.ts";
import type { McpContext } from "./context.ts";
import { SandboxActivity } from "./activity.ts";
import { CallTracker, registerTool, type ToolHost, type ToolShared } from "./tooling.ts";
import {
  destroyTool,
  haltTool,
  listTool,
  pullTool,
  spawnTool,
  statusTool,
} from "./tools_sandbox.ts";
import { execTool } from "./tools_exec.ts";
import { buildBaseTool, listBasesTool } from "./tools_bases.ts";
import { jobKillTool, jobOutputTool, jobStatusTool } from "./tools_jobs.ts";
import { forwardPortTool, listPortsTool, removePortTool } from "./tools_ports.ts";
import { deleteFileTool, editTool, listFilesTool, readTool, writeTool } from "./tools_files.ts";
import {
  createCheckpointTool,
  deleteCheckpointTool,
  listCheckpointsTool,
  restoreCheckpointTool,
} from "./tools_checkpoint.ts";
import {
  networkAllowTool,
  networkDenyTool,
  networkLogTool,
  networkSetTool,
  networkShowTool,
} from "./tools_network.ts";

/** What the server tells clients about using it (shown to agents by many clients). */
export const INSTRUCTIONS =
  "tachikoma gives every git branch its own disposable, isolated Linux sandbox. Typical flow: " +
  "spawn_sandbox (repo path + branch) → exec_in_sandbox / read_file / write_file / edit_file / " +
  "list_files / delete_file with the returned sandbox name → halt_sandbox or destroy_sandbox when done. " +
  "create_checkpoint before a risky change, restore_checkpoint to undo it (the sandbox's disk " +
  "only; the worktree is never rolled back). " +
  "The branch's worktree is shared with the host at /mnt/tachikoma/code, which is also where " +
  "commands run and relative paths start. Errors come back as tool results with a hint.";

/** What the servers of one process share (every HTTP session, or the one stdio server). */
export interface ServerShared {
  /** Running calls (cancelled and awaited when the process stops). */
  tracker?: CallTracker;
  /** Sandboxes in use by running calls (the reaper leaves them alone). */
  activity?: SandboxActivity;
}

/** Builds the server with every tool registered. */
export function createMcpServer(ctx: McpContext, shared: ServerShared = {}): McpServer {
  const tools: ToolShared = {
    tracker: shared.tracker ?? new CallTracker(),
    activity: shared.activity ?? new SandboxActivity(),
  };
  const server = new McpServer(
    { name: "tachikoma", title: "tachikoma", version: VERSION },
    { instructions: INSTRUCTIONS },
  );
  const host: ToolHost = { ctx, shared: tools };
  registerTool(server, host, spawnTool);
  registerTool(server, host, listTool);
  registerTool(server, host, statusTool);
  registerTool(server, host, execTool);
  registerTool(server, host, haltTool);
  registerTool(server, host, destroyTool);
  registerTool(server, host, pullTool);
  registerTool(server, host, readTool);
  registerTool(server, host, writeTool);
  registerTool(server, host, editTool);
  registerTool(server, host, listFilesTool);
  registerTool(server, host, deleteFileTool);
  registerTool(server, host, createCheckpointTool);
  registerTool(server, host, listCheckpointsTool);
  registerTool(server, host, restoreCheckpointTool);
  registerTool(server, host, deleteCheckpointTool);
  registerTool(server, host, forwardPortTool);
  registerTool(server, host, listPortsTool);
  registerTool(server, host, removePortTool);
  registerTool(server, host, jobOutputTool);
  registerTool(server, host, jobStatusTool);
  registerTool(server, host, jobKillTool);
  registerTool(server, host, networkShowTool);
  registerTool(server, host, networkSetTool);
  registerTool(server, host, networkAllowTool);
  registerTool(server, host, networkDenyTool);
  registerTool(server, host, networkLogTool);
  registerTool(server, host, listBasesTool);
  registerTool(server, host, buildBaseTool);
  return server;
}
