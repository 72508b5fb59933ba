import type { Params, SkeletonNode } from '../types.ts';
import type { Rng } from '../rng.ts';
import { KEY_TOKEN, keyOfToken } from '../anonymize/keys.ts';
import { textOfChars } from './text.ts';

/**
 * Rebuilds a JSON value from a skeleton, its depth-first `sizes` and kept `params`: strings of the recorded length
 * (seeded text), arrays of the recorded length, numbers drawn from the rng, kept parameters verbatim.
 * `stringAt(path)` may supply a string for a path (e.g. chat message text of an exact token count).
 * @throws Error when `sizes` is shorter than the skeleton needs (a damaged record).
 */
export function synthesizeJson(
  skeleton: SkeletonNode,
  sizes: readonly number[],
  params: Params,
  rng: Rng,
  stringAt?: (path: string, length: number) => string | undefined,
): unknown {
  let at = 0;
  const take = (): number => {
    if (at >= sizes.length) throw new Error('shape sizes exhausted: record is damaged');
    return sizes[at++]!;
  };
  const build = (n: SkeletonNode, path: string): unknown => {
    switch (n.t) {
      case 'z': return null;
      case 'b': return n.v ?? false; // a boolean whose value the trace does not keep
      case 'i': return rng.int(1000);
      case 'f': return Math.round(rng.next() * 1e6) / 1e6;
      case 'l': return n.v;
      case 'p': return params[n.name] ?? null;
      case 's': {
        const len = take();
        return stringAt?.(path, len) ?? textOfChars(len, rng);
      }
      case 'o': {
        const o: Record<string, unknown> = {};
        // Keys the trace kept are taken first: a token's key never lands on one of them (it would overwrite it).
        const used = new Set<string>(n.k.filter(([k]) => !KEY_TOKEN.test(k)).map(([k]) => k));
        for (const [k, child] of n.k) {
          // A key the trace kept as a token is sent as a key of its recorded length; paths go by the token.
          const sent = k.charCodeAt(0) === 0x7b ? keyOfToken(k, used) : k;
          used.add(sent);
          o[sent] = build(child, path ? `${path}.${k}` : k);
        }
        return o;
      }
      case 'a': return n.e.map((child, i) => build(child, `${path}[${i}]`));
      case 'u': {
        const len = take();
        if (!n.of) return [];
        if ((n.of.t === 'i' || n.of.t === 'f') && n.of.c !== undefined) return numbersOfChars(len, n.of.t === 'i', n.of.c, rng);
        const start = at;
        const out = new Array<unknown>(len);
        for (let i = 0; i < len; i++) {
          at = start; // every element reuses the same sizes
          out[i] = build(n.of, `${path}[${i}]`);
        }
        return out;
      }
    }
  };
  return build(skeleton, '');
}

/**
 * `count` seeded numbers whose JSON text is `meanChars` characters long on average (element k gets the length that
 * keeps the running total at k × mean, so the whole array has the recorded text length within a character).
 * Integers of that many digits; floats as whole numbers (1–2 characters), `0.ddd` (up to 17), `-0.ddd` (18), then `-d.ddde-1n` and `-d.ddde-1nn` (22: longer is not reachable with 15 digits), all with
 * at most 15 significant digits so `JSON.stringify` prints exactly them.
 */
export function numbersOfChars(count: number, integer: boolean, meanChars: number, rng: Rng): number[] {
  const out = new Array<number>(count);
  let total = 0;
  for (let k = 0; k < count; k++) {
    const chars = Math.max(1, Math.round(meanChars * (k + 1)) - total);
    total += chars;
    out[k] = integer ? intOfChars(chars, rng) : floatOfChars(chars, rng);
  }
  return out;
}

function digits(n: number, rng: Rng, nonZeroLast = true): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String(i === n - 1 && nonZeroLast ? 1 + rng.int(9) : rng.int(10));
  return s;
}

function intOfChars(chars: number, rng: Rng): number {
  const d = Math.min(15, chars);
  if (d === 1) return rng.int(10);
  return Number(String(1 + rng.int(9)) + digits(d - 1, rng, false));
}

function floatOfChars(chars: number, rng: Rng): number {
  // One or two characters: a whole number, as JSON prints `6.0` (`6`) in a row of floats.
  if (chars <= 2) return intOfChars(chars, rng);
  if (chars <= 17) return Number(`0.${digits(Math.max(1, chars - 2), rng)}`);
  if (chars === 18) return Number(`-0.${digits(15, rng)}`);
  // -d.ddd…e-1n (7 characters besides the fraction digits) up to 21 characters, then -d.ddd…e-1nn (at most 22).
  const long = chars >= 22;
  const fraction = Math.min(14, chars - (long ? 8 : 7));
  return Number(`-${1 + rng.int(9)}.${digits(fraction, rng)}e-1${rng.int(10)}${long ? rng.int(10) : ''}`);
}
