import type { Rng } from '../rng.ts';
import { decodeTokens, wordTokenIds } from '../tokens.ts';

/**
 * Seeded text of exactly `tokens` tokens (project tokenizer): random ` word` tokens, so its token count is exact by
 * construction. Same rng state → same text.
 */
export function textOfTokens(tokens: number, rng: Rng): string {
  if (tokens <= 0) return '';
  const vocab = wordTokenIds();
  const ids = new Array<number>(tokens);
  for (let i = 0; i < tokens; i++) ids[i] = vocab[rng.int(vocab.length)]!;
  return decodeTokens(ids);
}

/** Seeded ASCII text of exactly `chars` UTF-16 code units (for JSON strings described only by length). */
export function textOfChars(chars: number, rng: Rng): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz      ';
  let s = '';
  for (let i = 0; i < chars; i++) s += alphabet[rng.int(alphabet.length)];
  return s;
}

/**
 * Prompt text of `tokens` tokens whose leading blocks are shared with every other prompt that names the same block
 * ids (prefix/KV-cache sharing, e.g. Mooncake `hash_ids`). Block `b` is always the same text for one seed; tokens past
 * the blocks are drawn from `rng`.
 */
export function textWithPrefixBlocks(tokens: number, blocks: number[], blockTokens: number, blockRng: Rng, rng: Rng): string {
  const parts: string[] = [];
  let left = tokens;
  for (const b of blocks) {
    if (left <= 0) break;
    const n = Math.min(blockTokens, left);
    parts.push(textOfTokens(n, blockRng.child(`block:${b}`)));
    left -= n;
  }
  if (left > 0) parts.push(textOfTokens(left, rng));
  return parts.join('');
}
