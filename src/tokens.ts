import { countTokens as count, decode, encode } from 'gpt-tokenizer/encoding/cl100k_base';

/**
 * The project tokenizer: OpenAI's `cl100k_base` BPE (via `gpt-tokenizer`), a real tokenizer rather than
 * characters/4. Model servers use their own tokenizers, so counts are comparable across a trace and its replays,
 * not identical to any one server's `usage`.
 */
export const TOKENIZER_NAME = 'cl100k_base';

/** Number of tokens in `text`. */
export function countTokens(text: string): number {
  return text.length === 0 ? 0 : count(text);
}

/** Token ids of `text`. */
export function encodeTokens(text: string): number[] {
  return encode(text);
}

/** Text of token ids. */
export function decodeTokens(ids: number[]): string {
  return decode(ids);
}

let wordTokens: number[] | null = null;
let wordTexts: string[] | null = null;

/**
 * Token ids whose text is a space followed by 3–9 lowercase ASCII letters (about 20,000 in cl100k_base). A sequence
 * of such tokens decodes to text that re-encodes to exactly the same number of tokens, because the tokenizer's
 * pre-split puts each ` word` in its own piece and each piece is one token. Computed once (~60 ms).
 */
export function wordTokenIds(): number[] {
  if (wordTokens) return wordTokens;
  const ids: number[] = [];
  for (let i = 0; i < 100_256; i++) {
    let s: string;
    try {
      s = decode([i]);
    } catch {
      continue;
    }
    if (/^ [a-z]{3,9}$/.test(s)) ids.push(i);
  }
  wordTokens = ids;
  wordTexts = ids.map((id) => decode([id]));
  return ids;
}

/**
 * The text of each {@link wordTokenIds} entry, at the same index. Byte-level BPE decodes a sequence of these tokens to
 * the concatenation of their texts, so text can be built by joining them without running the decoder.
 */
export function wordTokenTexts(): string[] {
  if (!wordTexts) wordTokenIds();
  return wordTexts!;
}
