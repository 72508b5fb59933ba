import type { Params, SkeletonNode } from '../types.ts';
import type { Rng } from '../rng.ts';
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
      case 'b': return n.v;
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
        for (const [k, child] of n.k) o[k] = build(child, path ? `${path}.${k}` : k);
        return o;
      }
      case 'a': return n.e.map((child, i) => build(child, `${path}[${i}]`));
      case 'u': {
        const len = take();
        if (!n.of) return [];
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
