import type { Rng } from '../rng.ts';
import { decodeTokens, wordTokenIds } from '../tokens.ts';

/**
 * Seeded text of exactly `tokens` tokens (project tokenizer): random ` word` tokens, so its token count is exact by
 * construction. Same rng state → same text.
 */
export function textOfTokens(tokens: number, rng: Rng): string {
  return tokens <= 0 ? '' : decodeTokens(wordTokens(tokens, rng));
}

/** Seeded ASCII text of exactly `chars` UTF-16 code units (for JSON strings described only by length). */
export function textOfChars(chars: number, rng: Rng): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz      ';
  let s = '';
  for (let i = 0; i < chars; i++) s += alphabet[rng.int(alphabet.length)];
  return s;
}

/** Seeded token ids of ` word` tokens (see {@link textOfTokens}). */
export function wordTokens(tokens: number, rng: Rng): number[] {
  const vocab = wordTokenIds();
  const ids = new Array<number>(Math.max(0, tokens));
  for (let i = 0; i < ids.length; i++) ids[i] = vocab[rng.int(vocab.length)]!;
  return ids;
}

/**
 * Token ids of a prompt of `total` tokens whose leading blocks are shared with every other prompt that names the
 * same block keys (prefix/KV-cache sharing: chained prefix fingerprints, or Mooncake `hash_ids`). Block `k` is always
 * the same tokens for one seed (`blockRng.child('block:' + k)`); tokens past the blocks come from `tailRng`.
 */
export function promptTokenIds(total: number, blockKeys: readonly (string | number)[], blockTokens: number, blockRng: Rng, tailRng: Rng): number[] {
  const ids: number[] = [];
  for (const k of blockKeys) {
    const left = total - ids.length;
    if (left <= 0) break;
    const block = wordTokens(blockTokens, blockRng.child(`block:${k}`));
    for (let i = 0; i < Math.min(blockTokens, left); i++) ids.push(block[i]!);
  }
  if (ids.length < total) ids.push(...wordTokens(total - ids.length, tailRng));
  return ids;
}
