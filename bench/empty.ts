// Intentionally empty: the startup baseline for bench/startup_bench.ts.
