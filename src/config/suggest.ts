/**
 * "Did you mean …?" suggestions by edit distance, for unknown config keys and variables.
 *
 * @module
 */

/** Levenshtein distance between two strings (insert, delete, substitute each cost 1). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * The candidate closest to `input`, or undefined when none is close enough. A candidate is
 * close when its edit distance is at most a third of the input's length (minimum 2), or when
 * its last dotted/underscored component equals the input (`socket` → `incus.socket`).
 */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  const needle = input.toLowerCase();
  const limit = Math.max(2, Math.floor(needle.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const c = candidate.toLowerCase();
    const leaf = c.slice(c.lastIndexOf(".") + 1);
    let d = Math.min(editDistance(needle, c), editDistance(needle, leaf));
    if (d > limit && (c.endsWith(`.${needle}`) || c.endsWith(`_${needle}`))) d = limit;
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

/** ` (did you mean X?)` or the empty string. */
export function suggestionSuffix(input: string, candidates: readonly string[]): string {
  const s = didYouMean(input, candidates);
  return s === undefined ? "" : ` (did you mean ${s}?)`;
}
