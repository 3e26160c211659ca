/**
 * Base tools: list_bases and build_base, on the same core as `tachikoma image list|build`
 * (`src/core/bases.ts`, `src/core/base_build.ts`). A build holds the bases lock the CLI holds
 * too, so builds from MCP and from the CLI never overlap. `spawn_sandbox.from` clones from a
 * base.
 *
 * @module
 */
import { z } from "zod";
import { repoArg } from "./schemas.ts";
import { changes, READ_ONLY, type ToolSpec } from "./tooling.ts";

const baseShape = {
  name: z.string(),
  description: z.string().nullable(),
  image: z.string().nullable().describe("the image it starts from (null when it has a parent)"),
  from: z.string().nullable().describe("its parent base"),
  status: z.enum(["ready", "stale", "missing"]).describe(
    "ready: built from the current recipe; stale: built from an older recipe or parent; " +
      "missing: not built",
  ),
  sandbox: z.string().nullable().describe("the engine sandbox holding the build"),
  recipe: z.string(),
  size_bytes: z.number().nullable(),
  built_at: z.string().nullable(),
};

const listInput = { repo: repoArg };
const listOutput = { backend: z.string(), bases: z.array(z.object(baseShape)) };

/** list_bases */
export const listBasesTool: ToolSpec<typeof listInput, typeof listOutput> = {
  name: "list_bases",
  title: "List the bases",
  description: "The configured bases ([bases.NAME]; with none, the stock image as `default`) " +
    "with their status, size and build time. spawn_sandbox.from takes a base's name.",
  input: listInput,
  output: listOutput,
  annotations: READ_ONLY,
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    const backend = await service.backend();
    const { baseViews } = await import("../core/bases.ts");
    return {
      data: {
        backend: backend.name,
        bases: await baseViews(service.deps.config, backend, service.deps.stateDir),
      },
    };
  },
};

const buildInput = {
  base: z.string().min(1).optional().describe("the base to build (default: every base)"),
  force: z.boolean().optional().describe("build again even when it is ready"),
  repo: repoArg,
};
const buildOutput = {
  backend: z.string(),
  bases: z.array(z.object({
    ...baseShape,
    action: z.enum(["built", "ready"]),
    elapsed_ms: z.number(),
  })),
};

/** build_base */
export const buildBaseTool: ToolSpec<typeof buildInput, typeof buildOutput> = {
  name: "build_base",
  title: "Build a base",
  description: "Build a base (its missing ancestors first): provisioning plus its setup " +
    "script as root, then stop and checkpoint. A ready base is left as it is unless force. " +
    "Takes minutes for a stock image; a failed build leaves nothing behind.",
  input: buildInput,
  output: buildOutput,
  annotations: changes(false, true, true),
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    const { buildBases } = await import("../core/base_build.ts");
    return {
      data: await buildBases(service.deps, { name: args.base, force: args.force ?? false }),
    };
  },
};
