/**
 * What `spawn --from` clones: a base (its build's `base` checkpoint; a stale build is used with
 * a note, a missing one is built first), a stopped sandbox, or a sandbox's checkpoint (`sandbox:label`). A running sandbox
 * without a checkpoint is refused (its disk is changing): checkpoint it, or halt it first. The
 * new sandbox then runs only the provisioning steps its source did not: after a base, everything
 * but the base's steps; after a sandbox or checkpoint, only the per-branch ones.
 *
 * @module
 */
import type { Backend, CloneSource } from "../backends/backend.ts";
import { BASE_STEPS, PER_BRANCH_STEPS } from "../provision/contract.ts";
import { ConflictError, NotFoundError, UnsupportedError, UsageError } from "../lib/errors.ts";
import { BASE_CHECKPOINT, baseViews, configuredBases } from "./bases.ts";
import { type RepoView, resolveRecord } from "./resolve.ts";
import type { LifecycleDeps } from "./lifecycle.ts";

/** Where a forked sandbox comes from. */
export interface ForkSource {
  kind: "base" | "sandbox" | "checkpoint";
  /** The base's or the sandbox's name. */
  name: string;
  checkpoint: string | null;
  /** What the engine clones. */
  clone: CloneSource;
  /** The steps the new sandbox has from its source, out of the recipe's. */
  skip: (steps: readonly string[]) => readonly string[];
}

/** The `--json` form of a fork source. */
export function forkDocument(
  source: ForkSource | null,
): { kind: ForkSource["kind"]; name: string; checkpoint: string | null } | null {
  return source ? { kind: source.kind, name: source.name, checkpoint: source.checkpoint } : null;
}

/**
 * Resolves `from`: `sandbox:checkpoint`, else a base of the config, else a sandbox (name,
 * branch of the current repo, or unique prefix).
 */
export async function resolveFork(
  deps: LifecycleDeps,
  backend: Backend,
  request: { from: string; repo: RepoView | null },
): Promise<ForkSource> {
  const { from, repo } = request;
  if (from === "" || from.startsWith("-")) {
    throw new UsageError(`--from ${JSON.stringify(from)}: name a base, a sandbox or sandbox:label`);
  }
  if (!backend.capabilities.clone) {
    throw new UnsupportedError(`the ${backend.name} backend cannot clone sandboxes (--from)`);
  }
  const records = (await deps.store.read()).vms;
  const colon = from.lastIndexOf(":");
  if (colon > 0) {
    const record = resolveRecord(records, from.slice(0, colon), repo);
    const label = from.slice(colon + 1);
    const checkpoints = await backend.listCheckpoints(record.name);
    if (!checkpoints.some((c) => c.name === label)) {
      throw new NotFoundError(`${record.name} has no checkpoint ${JSON.stringify(label)}`, {
        hint: `see \`tachikoma checkpoint list ${record.name}\``,
      });
    }
    return {
      kind: "checkpoint",
      name: record.name,
      checkpoint: label,
      clone: { sandbox: record.name, checkpoint: label },
      skip: sandboxSkips,
    };
  }
  const bases = configuredBases(deps.config, backend.name);
  if (Object.hasOwn(bases, from)) {
    let view = (await baseViews(deps.config, backend, deps.stateDir)).find((v) => v.name === from)!;
    if (!view.sandbox) {
      // Built on first use, under the builds' lock (the CLI and the MCP daemon share it).
      deps.reporter.note(`base ${from} is not built yet: building it first`);
      const { buildBases } = await import("./base_build.ts");
      view = (await buildBases(deps, { name: from })).bases.find((b) => b.name === from)!;
    }
    if (view.status === "stale") {
      deps.reporter.note(
        `base ${from} is stale (its recipe or parent changed): using its last build; ` +
          `\`tachikoma image build ${from}\` rebuilds it`,
      );
    }
    return {
      kind: "base",
      name: from,
      checkpoint: null,
      clone: { sandbox: view.sandbox!, checkpoint: BASE_CHECKPOINT },
      skip: (steps) => steps.filter((s) => BASE_STEPS.includes(s)),
    };
  }
  let record;
  try {
    record = resolveRecord(records, from, repo);
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    throw new NotFoundError(`--from ${JSON.stringify(from)}: no base or sandbox of that name`, {
      hint: `bases: ${Object.keys(bases).sort().join(", ")}; sandboxes: \`tachikoma list\``,
    });
  }
  const state = (await backend.get(record.name)).state;
  if (state !== "stopped") {
    throw new ConflictError(
      `${record.name} is ${state}: a fork needs it stopped, or one of its checkpoints`,
      {
        hint: `tachikoma checkpoint create ${record.name} --label L, then --from ` +
          `${record.name}:L (or halt it first)`,
      },
    );
  }
  return {
    kind: "sandbox",
    name: record.name,
    checkpoint: null,
    clone: { sandbox: record.name },
    skip: sandboxSkips,
  };
}

function sandboxSkips(steps: readonly string[]): readonly string[] {
  return steps.filter((s) => !PER_BRANCH_STEPS.includes(s));
}
