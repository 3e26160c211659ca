/**
 * Builds the production {@link SandboxService} (see `open_deps.ts` for its dependencies).
 *
 * @module
 */
import { type OpenDepsOptions, openLifecycleDeps } from "./open_deps.ts";
import { SandboxService } from "../core/sandbox_service.ts";

/** Inputs of {@link openSandboxService}. */
export interface OpenServiceOptions extends OpenDepsOptions {
  cwd: string;
}

/** The service the CLI commands use. */
export function openSandboxService(options: OpenServiceOptions): SandboxService {
  return new SandboxService(openLifecycleDeps(options), options.cwd);
}
