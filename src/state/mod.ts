/**
 * The state store: the schema of `state.json`, the locked atomic store and the lock helpers.
 *
 * @module
 */
export * from "./schema.ts";
export * from "./store.ts";
export * from "./lock.ts";
