import { countTokens as count, decode, encode } from 'gpt-tokenizer/encoding/cl100k_base';

/**
 * The project tokenizer: OpenAI's `cl100k_base` BPE (via `gpt-tokenizer`), a real tokenizer rather than
 * characters/4. Model servers use their own tokenizers, so counts are comparable across a trace and its replays,
 * not identical to any one server's `usage`.
 */
export const TOKENIZER_NAME = 'cl100k_base';

/**
 * Longest run of non-space characters given to the BPE at once. Byte-pair merging of one pre-tokenizer piece is
 * quadratic in its length (40,000 letters in a row took 1.3 s, 3 MB about two hours), and one such run in a prompt or
 * a stream (a protein or DNA sequence, a model repeating a character) would stall the recorder for everyone. A longer
 * run is tokenized in pieces of this many characters: its count can differ from the whole run's by about one token per
 * piece (a token never spans more than a few characters of such a run), exact everywhere else.
 */
export const MAX_BPE_RUN_CHARS = 256;
const LONG_RUNS = new RegExp(`\\S{${MAX_BPE_RUN_CHARS + 1},}`, 'g');

/**
 * `text` as pieces the BPE takes in linear time: itself, or with each very long run cut into pieces of
 * {@link MAX_BPE_RUN_CHARS} characters (the text around the runs stays whole).
 */
function pieces(text: string): string[] {
  LONG_RUNS.lastIndex = 0;
  if (!LONG_RUNS.test(text)) return [text];
  const out: string[] = [];
  let from = 0;
  LONG_RUNS.lastIndex = 0;
  for (let m = LONG_RUNS.exec(text); m; m = LONG_RUNS.exec(text)) {
    if (m.index > from) out.push(text.slice(from, m.index));
    for (let i = 0; i < m[0].length; i += MAX_BPE_RUN_CHARS) out.push(m[0].slice(i, i + MAX_BPE_RUN_CHARS));
    from = m.index + m[0].length;
  }
  if (from < text.length) out.push(text.slice(from));
  return out;
}

/** Number of tokens in `text` (linear in its length, see {@link MAX_BPE_RUN_CHARS}). */
export function countTokens(text: string): number {
  if (text.length === 0) return 0;
  let n = 0;
  for (const p of pieces(text)) n += count(p);
  return n;
}

/** Token ids of `text` (linear in its length, see {@link MAX_BPE_RUN_CHARS}). */
export function encodeTokens(text: string): number[] {
  const parts = pieces(text);
  if (parts.length === 1) return encode(text);
  const ids: number[] = [];
  for (const p of parts) for (const id of encode(p)) ids.push(id);
  return ids;
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
