/**
 * Background job tools: job_output, job_status, job_kill, for jobs started by
 * `exec_in_sandbox` with `background: true` (`src/core/jobs.ts`). A job lives in the guest, so
 * these work from any MCP client or server process, after restarts too.
 *
 * @module
 */
import { z } from "zod";
import { JOB_OUTPUT_DEFAULT, JOB_OUTPUT_MAX, jobOutput, jobStatus, killJob } from "../core/jobs.ts";
import { repoArg, sandboxArg } from "./schemas.ts";
import { changes, READ_ONLY, type ToolSpec } from "./tooling.ts";

const jobArg = z.string().describe("the job_id exec_in_sandbox returned (12 hex digits)");

const statusShape = {
  sandbox: z.string(),
  job_id: z.string(),
  status: z.enum(["running", "exited", "lost"]).describe(
    "lost: the job's process is gone without an exit status (e.g. the sandbox restarted)",
  ),
  exit_code: z.number().int().nullable().describe("when exited"),
  stdout_bytes: z.number().int().describe("bytes written to stdout so far"),
  stderr_bytes: z.number().int().describe("bytes written to stderr so far"),
};

const statusInput = { sandbox: sandboxArg, repo: repoArg, job_id: jobArg };

/** job_status */
export const jobStatusTool: ToolSpec<typeof statusInput, typeof statusShape> = {
  name: "job_status",
  title: "State of a background job",
  description: "Whether a background job (exec_in_sandbox with background: true) is running, " +
    "exited (with its exit code) or lost, and how much output it has written.",
  input: statusInput,
  output: statusShape,
  annotations: READ_ONLY,
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    return { data: await jobStatus(service, args.sandbox, args.job_id) };
  },
};

const outputInput = {
  sandbox: sandboxArg,
  repo: repoArg,
  job_id: jobArg,
  stdout_offset: z.number().int().min(0).optional().describe(
    "byte offset to read stdout from (default 0): pass the stdout_offset the last call returned",
  ),
  stderr_offset: z.number().int().min(0).optional().describe(
    "byte offset to read stderr from (default 0): pass the stderr_offset the last call returned",
  ),
  max_bytes: z.number().int().min(1).max(JOB_OUTPUT_MAX).optional().describe(
    `bytes of each stream returned at most (default ${JOB_OUTPUT_DEFAULT}, at most ` +
      `${JOB_OUTPUT_MAX})`,
  ),
};

const outputShape = {
  ...statusShape,
  stdout: z.string(),
  stderr: z.string(),
  stdout_offset: z.number().int().describe("where the next call continues reading stdout"),
  stderr_offset: z.number().int().describe("where the next call continues reading stderr"),
  more: z.boolean().describe("output already written beyond what this call returned"),
};

/** job_output */
export const jobOutputTool: ToolSpec<typeof outputInput, typeof outputShape> = {
  name: "job_output",
  title: "Output of a background job",
  description: "Read a background job's output incrementally: from the given byte offsets, at " +
    "most max_bytes per stream; pass the returned offsets to the next call to get only what is " +
    "new. Also returns the job's state.",
  input: outputInput,
  output: outputShape,
  annotations: READ_ONLY,
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    const data = await jobOutput(service, { name: args.sandbox, id: args.job_id }, {
      stdoutOffset: args.stdout_offset,
      stderrOffset: args.stderr_offset,
      maxBytes: args.max_bytes,
    });
    return { data };
  },
};

const killShape = {
  sandbox: z.string(),
  job_id: z.string(),
  killed: z.boolean().describe("false when the job had already ended"),
};

/** job_kill */
export const jobKillTool: ToolSpec<typeof statusInput, typeof killShape> = {
  name: "job_kill",
  title: "Stop a background job",
  description: "Send SIGTERM to a running background job and everything it started (its " +
    "process group). Its output stays readable with job_output.",
  input: statusInput,
  output: killShape,
  annotations: changes(true, true),
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    return { data: await killJob(service, args.sandbox, args.job_id) };
  },
};
