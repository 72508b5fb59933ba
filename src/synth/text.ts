import type { Rng } from '../rng.ts';
import { decodeTokens, wordTokenIds, wordTokenTexts } from '../tokens.ts';

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

/** A run of synthesized text: the text and the character offset at which each of its tokens ends. */
export interface TextSegment {
  readonly text: string;
  readonly ends: Uint32Array;
}

/**
 * The text of `tokens` seeded ` word` tokens: the same draws as {@link wordTokens} (so the same tokens), built by
 * joining the tokens' texts instead of running the decoder (byte-level BPE decodes such a sequence to exactly that).
 */
export function wordSegment(tokens: number, rng: Rng): TextSegment {
  const texts = wordTokenTexts();
  const parts = new Array<string>(Math.max(0, tokens));
  const ends = new Uint32Array(parts.length);
  let at = 0;
  for (let i = 0; i < parts.length; i++) {
    const t = texts[rng.int(texts.length)]!;
    parts[i] = t;
    at += t.length;
    ends[i] = at;
  }
  return { text: parts.join(''), ends };
}

/** Default size of a {@link BlockTextCache}: 64 Mi characters (about 18,000 blocks of 512 tokens). */
export const DEFAULT_BLOCK_CACHE_CHARS = 64 * 1024 * 1024;

/**
 * Least-recently-used cache of prefix-block texts, keyed by the block's seed stream and size, so a trace whose
 * prompts share prefixes (chained prefix fingerprints, Mooncake `hash_ids`) synthesizes each shared block once.
 * Bounded by characters held. Counts hits and misses in tokens (for the synthesis benchmark and health).
 */
export class BlockTextCache {
  private readonly map = new Map<string, TextSegment>();
  private chars = 0;
  hitTokens = 0;
  missTokens = 0;

  constructor(private readonly maxChars = DEFAULT_BLOCK_CACHE_CHARS) {}

  /** The cached segment for `key`, or `make()`'s, stored. */
  get(key: string, make: () => TextSegment): TextSegment {
    const hit = this.map.get(key);
    if (hit) {
      this.map.delete(key);
      this.map.set(key, hit);
      this.hitTokens += hit.ends.length;
      return hit;
    }
    const seg = make();
    this.missTokens += seg.ends.length;
    if (seg.text.length > this.maxChars) return seg;
    this.map.set(key, seg);
    this.chars += seg.text.length;
    while (this.chars > this.maxChars) {
      const [oldKey, old] = this.map.entries().next().value as [string, TextSegment];
      this.map.delete(oldKey);
      this.chars -= old.text.length;
    }
    return seg;
  }
}

/**
 * The text of a prompt of `total` tokens laid out as {@link promptTokenIds} lays out its tokens (the same tokens, so
 * the same bytes), read by token range. Blocks come from `cache` when given; the tail too when `cacheTail` (a tail
 * keyed by a prompt fingerprint repeats; a per-request tail does not).
 */
export class PromptText {
  private readonly segments: Array<{ seg: TextSegment; tokens: number }> = [];

  constructor(total: number, blockKeys: readonly (string | number)[], blockTokens: number, blockRng: Rng, tailRng: Rng, cache?: BlockTextCache, cacheTail = false) {
    let have = 0;
    for (const k of blockKeys) {
      const left = total - have;
      if (left <= 0) break;
      const make = () => wordSegment(blockTokens, blockRng.child(`block:${k}`));
      const seg = cache ? cache.get(`${blockRng.seed}/block:${k}|${blockTokens}`, make) : make();
      const n = Math.min(blockTokens, left);
      this.segments.push({ seg, tokens: n });
      have += n;
    }
    if (have < total) {
      const n = total - have;
      const make = () => wordSegment(n, tailRng);
      this.segments.push({ seg: cache && cacheTail ? cache.get(`${tailRng.seed}|${n}`, make) : make(), tokens: n });
    }
  }

  /** The text of tokens `[from, to)`. */
  slice(from: number, to: number): string {
    const parts: string[] = [];
    let start = 0;
    for (const { seg, tokens } of this.segments) {
      const a = Math.max(from, start);
      const b = Math.min(to, start + tokens);
      if (a < b) parts.push(seg.text.substring(a === start ? 0 : seg.ends[a - start - 1]!, seg.ends[b - start - 1]!));
      start += tokens;
      if (start >= to) break;
    }
    return parts.length === 1 ? parts[0]! : parts.join('');
  }
}
