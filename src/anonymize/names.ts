/**
 * Heuristics for the few strings kept verbatim (JSON keys, path segments, tensor names): keep what reads like a schema
 * name, template what reads like data. Erring towards templating is the safe side of the privacy promise.
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

/**
 * A JSON object key kept as schema: identifier-like (letters, digits, `_`, `-`, and `.` between words, as feature
 * names such as TorchRec's `id_list_features.lengths` are) and not {@link looksLikeData}.
 */
export function isSchemaKey(k: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*$/.test(k) && k.length <= 64 && !looksLikeData(k);
}

/** A tensor or field name kept verbatim: identifier-like (dots, colons and slashes allowed) and not {@link looksLikeData}. */
export function isSchemaName(v: unknown): v is string {
  return typeof v === 'string' && /^[A-Za-z_][A-Za-z0-9_.:/-]{0,63}$/.test(v) && !looksLikeData(v);
}

/**
 * A model name kept verbatim (the `model` parameter): an identifier such as `gpt-4o-2024-08-06`,
 * `meta-llama/Llama-3.1-8B-Instruct` or `ft:gpt-4o-mini:org::id` — no spaces, at most 128 characters. Anything else
 * (free text in the field) is treated as data.
 */
export function isModelName(v: unknown): v is string {
  return typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$/.test(v);
}
