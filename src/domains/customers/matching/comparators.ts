// String and date comparators used by the matching engine, written by hand so their behaviour is
// ours to explain: Jaro, Jaro-Winkler, bounded Levenshtein, Soundex and date closeness.

let bufferA = new Uint8Array(64);
let bufferB = new Uint8Array(64);

/** Jaro similarity in [0, 1]; 1 for equal strings, 0 when either is empty. */
export function jaro(a: string, b: string): number {
  if (a === b) return a.length === 0 ? 0 : 1;
  const la = a.length;
  const lb = b.length;
  if (la === 0 || lb === 0) return 0;
  const window = Math.max(0, Math.floor(Math.max(la, lb) / 2) - 1);
  // Reused flag buffers: comparisons run by the hundred thousand and should not allocate.
  if (la > bufferA.length) bufferA = new Uint8Array(la * 2);
  if (lb > bufferB.length) bufferB = new Uint8Array(lb * 2);
  const matchedA = bufferA;
  const matchedB = bufferB;
  matchedA.fill(0, 0, la);
  matchedB.fill(0, 0, lb);
  let matches = 0;
  for (let i = 0; i < la; i++) {
    const lo = Math.max(0, i - window);
    const hi = Math.min(lb - 1, i + window);
    const ca = a.charCodeAt(i);
    for (let j = lo; j <= hi; j++) {
      if (matchedB[j] === 0 && b.charCodeAt(j) === ca) {
        matchedB[j] = 1;
        matchedA[i] = 1;
        matches++;
        break;
      }
    }
  }
  if (matches === 0) return 0;
  let transpositions = 0;
  let k = 0;
  for (let i = 0; i < la; i++) {
    if (matchedA[i] === 0) continue;
    while (matchedB[k] === 0) k++;
    if (a.charCodeAt(i) !== b.charCodeAt(k)) transpositions++;
    k++;
  }
  const t = transpositions / 2;
  return (matches / la + matches / lb + (matches - t) / matches) / 3;
}

/**
 * Jaro-Winkler similarity: Jaro boosted by the common prefix (up to 4 characters, scaling factor
 * `p`, 0.1 by default as in Winkler's paper).
 */
export function jaroWinkler(a: string, b: string, p = 0.1): number {
  const j = jaro(a, b);
  if (j === 0 || j === 1) return j;
  let prefix = 0;
  const max = Math.min(4, a.length, b.length);
  while (prefix < max && a.charCodeAt(prefix) === b.charCodeAt(prefix)) prefix++;
  return j + prefix * p * (1 - j);
}

/**
 * Levenshtein edit distance (insert, delete, substitute cost 1). With `max`, stops early and
 * returns `max + 1` as soon as the distance is known to exceed it.
 */
export function levenshtein(a: string, b: string, max = Number.POSITIVE_INFINITY): number {
  if (a === b) return 0;
  let la = a.length;
  let lb = b.length;
  if (Math.abs(la - lb) > max) return max + 1;
  if (la === 0) return lb;
  if (lb === 0) return la;
  // Keep the shorter string in `b` so the row is small.
  if (lb > la) {
    [a, b] = [b, a];
    [la, lb] = [lb, la];
  }
  let prev = new Array<number>(lb + 1);
  let curr = new Array<number>(lb + 1);
  for (let j = 0; j <= lb; j++) prev[j] = j;
  for (let i = 1; i <= la; i++) {
    curr[0] = i;
    let rowMin = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= lb; j++) {
      const cost = ca === b.charCodeAt(j - 1) ? 0 : 1;
      const v = Math.min(prev[j]! + 1, curr[j - 1]! + 1, prev[j - 1]! + cost);
      curr[j] = v;
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
    [prev, curr] = [curr, prev];
  }
  return prev[lb]!;
}

const SOUNDEX_CODES: Record<string, string> = {
  b: '1',
  f: '1',
  p: '1',
  v: '1',
  c: '2',
  g: '2',
  j: '2',
  k: '2',
  q: '2',
  s: '2',
  x: '2',
  z: '2',
  d: '3',
  t: '3',
  l: '4',
  m: '5',
  n: '5',
  r: '6',
};

/** American Soundex (letter + three digits) of a lower-case ASCII word; '' when no letter. */
export function soundex(word: string): string {
  const letters = word.replace(/[^a-z]/g, '');
  if (letters.length === 0) return '';
  const first = letters[0]!;
  let out = first.toUpperCase();
  let last = SOUNDEX_CODES[first] ?? '';
  for (let i = 1; i < letters.length && out.length < 4; i++) {
    const c = letters[i]!;
    const code = SOUNDEX_CODES[c];
    if (code === undefined) {
      // Vowels separate equal codes; h and w do not.
      if (c !== 'h' && c !== 'w') last = '';
      continue;
    }
    if (code !== last) out += code;
    last = code;
  }
  return out.padEnd(4, '0');
}

/** Days since the epoch of a `YYYY-MM-DD` date, or undefined. */
export function daysOf(isoDate: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(isoDate);
  if (!m) return undefined;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return Number.isFinite(t) ? Math.round(t / 86_400_000) : undefined;
}

/** True when `a` and `b` (`YYYY-MM-DD`) differ only by day and month swapped. */
export function dayMonthTransposed(a: string, b: string): boolean {
  if (a.length !== 10 || b.length !== 10 || a === b) return false;
  return (
    a.slice(0, 4) === b.slice(0, 4) &&
    a.slice(5, 7) === b.slice(8, 10) &&
    a.slice(8, 10) === b.slice(5, 7)
  );
}
