/**
 * Durations as users write them in configuration: Go's duration syntax (what pixels' `[mcp]`
 * keys took), restricted to whole or decimal numbers with the units `h`, `m`, `s` and `ms`,
 * combined largest first (`1h30m`, `90s`, `1.5h`, `250ms`); `0` alone is zero. No sign, no
 * spaces, no days (write `48h`).
 *
 * @module
 */

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
const PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;
/** One duration, whole string. */
export const DURATION_RE = /^(?:0|(?:\d+(?:\.\d+)?(?:ms|h|m|s))+)$/;

/** Milliseconds of `text`, or null when it is not a duration (see the module doc). */
export function parseDuration(text: string): number | null {
  if (!DURATION_RE.test(text)) return null;
  if (text === "0") return 0;
  let total = 0;
  let last = Infinity;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const m = PART.exec(text);
    if (!m) return null;
    const unit = UNIT_MS[m[2]];
    if (unit >= last) return null; // units largest first, each once
    last = unit;
    total += Number(m[1]) * unit;
  }
  return Number.isFinite(total) ? Math.round(total) : null;
}

/** A short human form of `ms`: `1h`, `1h30m`, `45s`, `250ms`, `0s`. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return "0s";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let rest = Math.round(ms / 1000);
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  return `${h ? `${h}h` : ""}${m ? `${m}m` : ""}${s || (!h && !m) ? `${s}s` : ""}`;
}
