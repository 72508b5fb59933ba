/**
 * Heuristics for telling a name from a value where a protocol puts a name (tensor names, `signature_name`), and ids from
 * words in paths and header values. Which keys, path words, model ids and field names a trace keeps is not decided
 * here but enumerated (`keys.ts`, `route.ts`, `model-id.ts`, `field-names.ts`). Erring towards templating is the safe
 * side of the privacy promise.
 */

/** Letter↔digit switches, ignoring separators (`resnet50` 1, `llama-3-8b` 2, `a1b2c3` 5). */
function letterDigitSwitches(s: string): number {
  let n = 0;
  let prev: 'l' | 'd' | null = null;
  for (const c of s) {
    const k = /[0-9]/.test(c) ? 'd' : /[A-Za-z]/.test(c) ? 'l' : null;
    if (k === null) continue;
    if (prev !== null && k !== prev) n++;
    prev = k;
  }
  return n;
}

/**
 * True when a short identifier-like string looks like data rather than a name: too long, a run of 4+ digits, a long
 * hex run, a credential prefix, or a word (between `-_.:/` separators) with many letter/digit switches (`a1b2c3`) or
 * upper- and lower-case letters mixed with digits (`ZQXa1b2`, random tokens). Names such as `sigmoid_0.tmp_0`,
 * `conv2d_1/BiasAdd:0`, `llama-3-8b` pass.
 */
export function looksLikeData(s: string): boolean {
  if (s.length > 40) return true;
  if (/\d{4,}/.test(s) || /[0-9a-f]{12,}/i.test(s)) return true;
  if (/^(sk|pk|rk|ak|key|tok|token|secret|bearer|ghp|gho|xox[abp])[-_]/i.test(s)) return true;
  return s.split(/[-_.:/ ]+/).some((w) => letterDigitSwitches(w) >= 3 || (/[A-Z]/.test(w) && /[a-z]/.test(w) && /[0-9]/.test(w)));
}


/** A tensor or field name kept verbatim: identifier-like (dots, colons and slashes allowed) and not {@link looksLikeData}. */
export function isSchemaName(v: unknown): v is string {
  return typeof v === 'string' && /^[A-Za-z_][A-Za-z0-9_.:/-]{0,63}$/.test(v) && !looksLikeData(v);
}
