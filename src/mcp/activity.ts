/**
 * Which sandboxes MCP tool calls are using right now (a command running, a file being
 * written). The reaper never stops or deletes a sandbox that is in use, whatever its
 * `last_used` says: a command that runs for two hours is not an idle sandbox.
 *
 * @module
 */

/** Sandboxes in use by running tool calls (reference counted). */
export class SandboxActivity {
  #using = new Map<string, number>();

  /** Marks `name` in use; call the returned function (once) when done. */
  begin(name: string): () => void {
    this.#using.set(name, (this.#using.get(name) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const left = (this.#using.get(name) ?? 1) - 1;
      if (left <= 0) this.#using.delete(name);
      else this.#using.set(name, left);
    };
  }

  /** True while some call uses `name`. */
  busy(name: string): boolean {
    return this.#using.has(name);
  }

  /** The sandboxes in use. */
  get names(): string[] {
    return [...this.#using.keys()];
  }
}
