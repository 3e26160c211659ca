/**
 * Checkpoint tools: create_checkpoint, list_checkpoints, restore_checkpoint,
 * delete_checkpoint. They call the same core as `tachikoma checkpoint …`
 * (`src/core/checkpoints.ts`): a checkpoint is a snapshot of the sandbox's own disk, never of
 * the worktree, which stays on the host.
 *
 * @module
 */
import { z } from "zod";
import {
  createCheckpoint,
  deleteCheckpoint,
  listCheckpoints,
  restoreCheckpoint,
} from "../core/checkpoints.ts";
import { repoArg, sandboxArg } from "./schemas.ts";
import { changes, READ_ONLY, type ToolSpec } from "./tooling.ts";

const WHAT_IS_KEPT = "A checkpoint holds the sandbox's own disk (installed packages, home " +
  "directory, caches), not the worktree at /mnt/tachikoma/code: that is on the host and git " +
  "keeps its history.";

// Checked by the core (one clear message naming the value), not by the schema.
const labelArg = z.string().describe(
  "Checkpoint label: letters, digits, '.', '_' and '-', starting with a letter or digit, at " +
    "most 63 characters.",
);

const checkpointSchema = z.object({
  label: z.string(),
  created_at: z.string().describe("RFC 3339 UTC"),
  size_bytes: z.number().nullable().describe("bytes the engine reports; null when it reports none"),
});

const createInput = {
  sandbox: sandboxArg,
  repo: repoArg,
  label: labelArg.optional().describe(
    "Checkpoint label (letters, digits, '.', '_', '-'; at most 63). Default: " +
      "tk-YYYYMMDD-HHMMSS (UTC), made unique.",
  ),
};

const createOutput = { name: z.string().describe("the sandbox"), ...checkpointSchema.shape };

/** create_checkpoint */
export const createCheckpointTool: ToolSpec<typeof createInput, typeof createOutput> = {
  name: "create_checkpoint",
  title: "Checkpoint a sandbox",
  description: "Take a checkpoint of a sandbox (running or stopped) to come back to with " +
    `restore_checkpoint, e.g. before a risky install. ${WHAT_IS_KEPT} Not every engine has ` +
    "checkpoints: tart does not (the error says so).",
  input: createInput,
  output: createOutput,
  annotations: changes(false, false),
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    return { data: await createCheckpoint(service, { name: args.sandbox, label: args.label }) };
  },
};

const listInput = { sandbox: sandboxArg, repo: repoArg };

const listOutput = {
  name: z.string().describe("the sandbox"),
  backend: z.string(),
  checkpoints: z.array(checkpointSchema).describe("oldest first"),
};

/** list_checkpoints */
export const listCheckpointsTool: ToolSpec<typeof listInput, typeof listOutput> = {
  name: "list_checkpoints",
  title: "List a sandbox's checkpoints",
  description: "List the checkpoints of a sandbox, oldest first, with when each was taken and " +
    "its size when the engine reports one.",
  input: listInput,
  output: listOutput,
  annotations: READ_ONLY,
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    return { data: await listCheckpoints(service, { name: args.sandbox }) };
  },
};

const labelInput = { sandbox: sandboxArg, label: labelArg, repo: repoArg };

const restoreOutput = {
  name: z.string().describe("the sandbox"),
  label: z.string(),
  previous: z.string().describe("live state before the restore"),
  status: z.literal("running"),
  ip: z.string().describe("the sandbox's address after the restore"),
  elapsed_ms: z.number().describe("wall time of the whole restore (stop → boot)"),
};

/** restore_checkpoint */
export const restoreCheckpointTool: ToolSpec<typeof labelInput, typeof restoreOutput> = {
  name: "restore_checkpoint",
  title: "Restore a sandbox to a checkpoint",
  description: "Put a sandbox's disk back to a checkpoint: it is stopped (running commands are " +
    "killed), restored, started and waited for until it is reachable again. Everything written " +
    `to the sandbox's disk since the checkpoint is lost. ${WHAT_IS_KEPT} Sends progress ` +
    "notifications when the request has a progressToken.",
  input: labelInput,
  output: restoreOutput,
  annotations: changes(true, true),
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    return { data: await restoreCheckpoint(service, { name: args.sandbox, label: args.label }) };
  },
};

const deleteOutput = {
  name: z.string().describe("the sandbox"),
  label: z.string(),
  deleted: z.literal(true),
};

/** delete_checkpoint */
export const deleteCheckpointTool: ToolSpec<typeof labelInput, typeof deleteOutput> = {
  name: "delete_checkpoint",
  title: "Delete a checkpoint",
  description: "Delete one checkpoint of a sandbox for good. The sandbox itself is untouched.",
  input: labelInput,
  output: deleteOutput,
  annotations: changes(true, false),
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    return { data: await deleteCheckpoint(service, { name: args.sandbox, label: args.label }) };
  },
};
