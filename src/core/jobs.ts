/**
 * Background jobs (MCP `exec_in_sandbox` with `background: true`): the command runs detached in
 * the guest (its own session, `setsid`), in the login environment, with its output and exit
 * status in files under `~/.cache/tachikoma/jobs/<id>/` in the guest — so a job outlives the
 * call, the MCP client and the MCP server. `job_output` reads the output from byte offsets
 * (incremental, capped), `job_status` tells running / exited (with the code) / lost, `job_kill`
 * signals the job's process group. Job ids are 12 hex digits, checked before use; the guest's
 * answers are parsed strictly.
 *
 * @module
 */
import { NotFoundError, RuntimeError, UsageError } from "../lib/errors.ts";

/** The part of the sandbox service jobs use. */
export interface JobHost {
  resolve(name?: string): Promise<{ name: string }>;
  exec(
    name: string,
    options: { argv: string[]; raw?: boolean; workdir?: string; env?: Record<string, string> },
  ): Promise<{ code: number; stdout: Uint8Array; stderr: Uint8Array }>;
}

/** Job ids: 12 lower-case hex digits. */
export const JOB_ID_RE = /^[0-9a-f]{12}$/;

/** Default and largest bytes of each stream one `job_output` returns. */
export const JOB_OUTPUT_DEFAULT = 64 * 1024;
export const JOB_OUTPUT_MAX = 1024 * 1024;

const DIR = '"$HOME/.cache/tachikoma/jobs/$1"';

/**
 * `$1` id, then the argv. The job's own shell (its session and process group leader, whether
 * or not setsid had to fork) records its pid; the starter waits (5 s at most) for it and prints
 * it.
 */
const START = [
  `d=${DIR}; shift`,
  'mkdir -p -- "$d" || exit 90',
  ': > "$d/out"; : > "$d/err"',
  'setsid sh -c \'echo $$ > "$0/pid.tmp" && mv "$0/pid.tmp" "$0/pid"; ' +
  '"$@" > "$0/out" 2> "$0/err" < /dev/null; ' +
  'echo $? > "$0/status.tmp" && mv "$0/status.tmp" "$0/status"\' "$d" "$@" ' +
  "< /dev/null > /dev/null 2>&1 &",
  "i=0",
  'while [ ! -s "$d/pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done',
  'cat "$d/pid"',
].join("\n");

/** `$1` id. Prints `running|exited CODE|lost`, then the two output sizes; exit 3: no such job. */
const STATUS = [
  `d=${DIR}`,
  '[ -f "$d/pid" ] || exit 3',
  'if [ -f "$d/status" ]; then echo "exited $(cat "$d/status")";',
  'elif kill -0 "$(cat "$d/pid")" 2>/dev/null; then echo running; else echo lost; fi',
  'wc -c < "$d/out"; wc -c < "$d/err"',
].join("\n");

/** `$1` id, `$2` stream, `$3` offset, `$4` max bytes: the bytes. Exit 3: no such job. */
const READ = [
  `d=${DIR}`,
  '[ -f "$d/pid" ] || exit 3',
  'tail -c +"$(($3 + 1))" "$d/$2" | head -c "$4"',
].join("\n");

/** `$1` id: SIGTERM to the job's process group; prints `killed` or `not-running`. */
const KILL = [
  `d=${DIR}`,
  '[ -f "$d/pid" ] || exit 3',
  'p=$(cat "$d/pid")',
  'if [ ! -f "$d/status" ] && kill -TERM "-$p" 2>/dev/null; then',
  "  echo killed",
  "else echo not-running; fi",
].join("\n");

/** A job's state. */
export interface JobStatus {
  sandbox: string;
  job_id: string;
  status: "running" | "exited" | "lost";
  /** When exited. */
  exit_code: number | null;
  stdout_bytes: number;
  stderr_bytes: number;
}

function checkId(id: string): string {
  if (!JOB_ID_RE.test(id)) {
    throw new UsageError(`invalid job id ${JSON.stringify(id)}: 12 hex digits, as returned`);
  }
  return id;
}

function unknownJob(sandbox: string, id: string): NotFoundError {
  return new NotFoundError(`no job ${id} in sandbox ${sandbox}`, {
    hint: "job ids come from exec_in_sandbox with background: true",
  });
}

const dec = new TextDecoder();

function run(host: JobHost, sandbox: string, [script, ...args]: string[]) {
  return host.exec(sandbox, { argv: ["sh", "-c", script, "job", ...args], raw: true });
}

/** Starts `argv` as a background job; returns its id. */
export async function startJob(
  host: JobHost,
  options: {
    name?: string;
    argv: string[];
    workdir?: string;
    env?: Record<string, string>;
    /** Without the login environment (the job inherits the starter's). */
    raw?: boolean;
  },
): Promise<{ sandbox: string; job_id: string }> {
  const record = await host.resolve(options.name);
  const id = [...crypto.getRandomValues(new Uint8Array(6))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  // In the login environment (not raw): the job inherits it.
  const r = await host.exec(record.name, {
    argv: ["sh", "-c", START, "job", id, ...options.argv],
    workdir: options.workdir,
    env: options.env,
    raw: options.raw,
  });
  if (r.code !== 0 || !/^\d+\n?$/.test(dec.decode(r.stdout))) {
    throw new RuntimeError(
      "guest_output",
      `starting a background job in ${record.name} failed (exit ${r.code})`,
    );
  }
  return { sandbox: record.name, job_id: id };
}

/** The state of a job. */
export async function jobStatus(
  host: JobHost,
  name: string | undefined,
  id: string,
): Promise<JobStatus> {
  checkId(id);
  const record = await host.resolve(name);
  const r = await run(host, record.name, [STATUS, id]);
  if (r.code === 3) throw unknownJob(record.name, id);
  const m = /^(running|lost|exited (\d{1,3}))\n\s*(\d+)\n\s*(\d+)\n?$/.exec(dec.decode(r.stdout));
  if (r.code !== 0 || !m) {
    throw new RuntimeError(
      "guest_output",
      `the state of job ${id} in ${record.name} is unreadable`,
    );
  }
  return {
    sandbox: record.name,
    job_id: id,
    status: m[1].startsWith("exited") ? "exited" : m[1] as "running" | "lost",
    exit_code: m[2] === undefined ? null : Number(m[2]),
    stdout_bytes: Number(m[3]),
    stderr_bytes: Number(m[4]),
  };
}

/** What {@link jobOutput} returns. */
export interface JobOutput extends JobStatus {
  stdout: string;
  stderr: string;
  /** Where the next call continues. */
  stdout_offset: number;
  stderr_offset: number;
  /** More output is already there past what was returned. */
  more: boolean;
}

/** Output from byte offsets, at most `maxBytes` per stream. */
export async function jobOutput(
  host: JobHost,
  job: { name: string | undefined; id: string },
  options: { stdoutOffset?: number; stderrOffset?: number; maxBytes?: number } = {},
): Promise<JobOutput> {
  const { name, id } = job;
  const max = options.maxBytes ?? JOB_OUTPUT_DEFAULT;
  for (
    const [k, v] of [["stdout_offset", options.stdoutOffset], [
      "stderr_offset",
      options.stderrOffset,
    ]] as const
  ) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) {
      throw new UsageError(`${k} must be a whole number of bytes (got ${v})`);
    }
  }
  const status = await jobStatus(host, name, id);
  const read = async (stream: "out" | "err", offset: number) => {
    const r = await run(host, status.sandbox, [READ, id, stream, String(offset), String(max)]);
    if (r.code === 3) throw unknownJob(status.sandbox, id);
    return r.stdout.slice(0, max);
  };
  const outOff = options.stdoutOffset ?? 0;
  const errOff = options.stderrOffset ?? 0;
  const [out, err] = await Promise.all([read("out", outOff), read("err", errOff)]);
  const next = { out: outOff + out.length, err: errOff + err.length };
  return {
    ...status,
    stdout: dec.decode(out),
    stderr: dec.decode(err),
    stdout_offset: next.out,
    stderr_offset: next.err,
    more: next.out < status.stdout_bytes || next.err < status.stderr_bytes,
  };
}

/** Signals a running job's process group (SIGTERM). */
export async function killJob(
  host: JobHost,
  name: string | undefined,
  id: string,
): Promise<{ sandbox: string; job_id: string; killed: boolean }> {
  checkId(id);
  const record = await host.resolve(name);
  const r = await run(host, record.name, [KILL, id]);
  if (r.code === 3) throw unknownJob(record.name, id);
  return { sandbox: record.name, job_id: id, killed: dec.decode(r.stdout).trim() === "killed" };
}
