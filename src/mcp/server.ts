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
import { CallTracker, registerTool } from "./tooling.ts";
import { destroyTool, haltTool, listTool, spawnTool, statusTool } from "./tools_sandbox.ts";
import { execTool } from "./tools_exec.ts";
import { editTool, listFilesTool, readTool, writeTool } from "./tools_files.ts";
import {
  createCheckpointTool,
  deleteCheckpointTool,
  listCheckpointsTool,
  restoreCheckpointTool,
} from "./tools_checkpoint.ts";

/** What the server tells clients about using it (shown to agents by many clients). */
export const INSTRUCTIONS =
  "tachikoma gives every git branch its own disposable, isolated Linux sandbox. Typical flow: " +
  "spawn_sandbox (repo path + branch) → exec_in_sandbox / read_file / write_file / edit_file / " +
  "list_files with the returned sandbox name → halt_sandbox or destroy_sandbox when done. " +
  "create_checkpoint before a risky change, restore_checkpoint to undo it (the sandbox's disk " +
  "only; the worktree is never rolled back). " +
  "The branch's worktree is shared with the host at /mnt/tachikoma/code, which is also where " +
  "commands run and relative paths start. Errors come back as tool results with a hint.";

/** Builds the server with every tool registered. */
export function createMcpServer(
  ctx: McpContext,
  tracker: CallTracker = new CallTracker(),
): McpServer {
  const server = new McpServer(
    { name: "tachikoma", title: "tachikoma", version: VERSION },
    { instructions: INSTRUCTIONS },
  );
  registerTool(server, ctx, tracker, spawnTool);
  registerTool(server, ctx, tracker, listTool);
  registerTool(server, ctx, tracker, statusTool);
  registerTool(server, ctx, tracker, execTool);
  registerTool(server, ctx, tracker, haltTool);
  registerTool(server, ctx, tracker, destroyTool);
  registerTool(server, ctx, tracker, readTool);
  registerTool(server, ctx, tracker, writeTool);
  registerTool(server, ctx, tracker, editTool);
  registerTool(server, ctx, tracker, listFilesTool);
  registerTool(server, ctx, tracker, createCheckpointTool);
  registerTool(server, ctx, tracker, listCheckpointsTool);
  registerTool(server, ctx, tracker, restoreCheckpointTool);
  registerTool(server, ctx, tracker, deleteCheckpointTool);
  return server;
}
