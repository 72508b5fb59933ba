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

/** The ` word` vocabulary's token texts as one byte array: token k is `bytes[offsets[k]] … bytes[offsets[k + 1] − 1]`. */
let vocab: { bytes: Uint8Array; offsets: Uint32Array } | null = null;

function vocabBytes(): { bytes: Uint8Array; offsets: Uint32Array } {
  if (vocab) return vocab;
  const texts = wordTokenTexts();
  const offsets = new Uint32Array(texts.length + 1);
  for (let k = 0; k < texts.length; k++) offsets[k + 1] = offsets[k]! + texts[k]!.length;
  const bytes = new Uint8Array(offsets[texts.length]!);
  // The word tokens are ASCII (a space and 3–9 lowercase letters): one byte per character.
  for (let k = 0; k < texts.length; k++) for (let j = 0; j < texts[k]!.length; j++) bytes[offsets[k]! + j] = texts[k]!.charCodeAt(j);
  vocab = { bytes, offsets };
  return vocab;
}

/**
 * A run of synthesized prompt text as UTF-8 bytes (ASCII: it needs no JSON escaping) and the byte offset at which each
 * of its tokens ends.
 */
export interface TextSegment {
  readonly bytes: Uint8Array;
  readonly ends: Uint32Array;
}

/**
 * The bytes of `tokens` seeded ` word` tokens: the same draws as {@link wordTokens} (so the same tokens, and the same
 * bytes the decoder would give), copied from the vocabulary's bytes instead of built as strings.
 */
export function wordSegment(tokens: number, rng: Rng): TextSegment {
  const { bytes: src, offsets } = vocabBytes();
  const n = offsets.length - 1;
  const ends = new Uint32Array(Math.max(0, tokens));
  let out = new Uint8Array(Math.max(16, ends.length * 8));
  let at = 0;
  for (let i = 0; i < ends.length; i++) {
    const k = rng.int(n);
    const from = offsets[k]!;
    const len = offsets[k + 1]! - from;
    if (at + len > out.length) {
      const bigger = new Uint8Array(out.length * 2);
      bigger.set(out.subarray(0, at));
      out = bigger;
    }
    for (let j = 0; j < len; j++) out[at + j] = src[from + j]!;
    at += len;
    ends[i] = at;
  }
  return { bytes: out.subarray(0, at), ends };
}

/**
 * Least-recently-used cache of prefix-block texts, keyed by the block's seed stream and size, so a trace whose
 * prompts share prefixes (chained prefix fingerprints, Mooncake `hash_ids`) synthesizes each shared block once.
 * Bounded by bytes held. Counts hits and misses in tokens (for the synthesis benchmark and health).
 */
export class BlockTextCache {
  private readonly map = new Map<string, TextSegment>();
  private bytes = 0;
  hitTokens = 0;
  missTokens = 0;

  constructor(private readonly maxBytes: number) {}

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
    if (seg.bytes.length > this.maxBytes) return seg;
    this.map.set(key, seg);
    this.bytes += seg.bytes.length;
    while (this.bytes > this.maxBytes) {
      const [oldKey, old] = this.map.entries().next().value as [string, TextSegment];
      this.map.delete(oldKey);
      this.bytes -= old.bytes.length;
    }
    return seg;
  }
}

/** Prompt text read by token range as byte slices (views, nothing copied). */
export interface TokenText {
  /** Tokens it holds. */
  readonly tokens: number;
  /** The bytes of tokens `[from, to)`. */
  slice(from: number, to: number): Uint8Array[];
}

/** A segment's tokens `[a, b)` as a byte view. */
export function segmentSlice(seg: TextSegment, a: number, b: number): Uint8Array {
  return seg.bytes.subarray(a === 0 ? 0 : seg.ends[a - 1]!, seg.ends[b - 1]!);
}

/** Texts one after the other, read as one (a follow-up turn: what its session said so far, then its own part). */
export class ConcatText implements TokenText {
  readonly tokens: number;

  constructor(private readonly parts: readonly TokenText[]) {
    this.tokens = parts.reduce((n, p) => n + p.tokens, 0);
  }

  slice(from: number, to: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let start = 0;
    for (const p of this.parts) {
      const a = Math.max(from, start);
      const b = Math.min(to, start + p.tokens);
      if (a < b) out.push(...p.slice(a - start, b - start));
      start += p.tokens;
      if (start >= to) break;
    }
    return out;
  }
}

/** A segment as a {@link TokenText}, its first `tokens` tokens. */
export function segmentText(seg: TextSegment, tokens = seg.ends.length): TokenText {
  return { tokens, slice: (a, b) => (a < b ? [segmentSlice(seg, a, Math.min(b, tokens))] : []) };
}

/**
 * The text of a prompt of `total` tokens laid out as {@link promptTokenIds} lays out its tokens (the same tokens, so
 * the same bytes), read by token range as byte slices. Blocks come from `cache` when given; the tail too when
 * `cacheTail` (a tail keyed by a prompt fingerprint repeats; a per-request tail does not).
 */
export class PromptText implements TokenText {
  private readonly segments: Array<{ seg: TextSegment; tokens: number }> = [];
  readonly tokens: number;

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
    this.tokens = Math.max(0, total);
  }

  /** The bytes of tokens `[from, to)`, as views of the segments (nothing copied). */
  slice(from: number, to: number): Uint8Array[] {
    const parts: Uint8Array[] = [];
    let start = 0;
    for (const { seg, tokens } of this.segments) {
      const a = Math.max(from, start);
      const b = Math.min(to, start + tokens);
      if (a < b) parts.push(seg.bytes.subarray(a === start ? 0 : seg.ends[a - start - 1]!, seg.ends[b - start - 1]!));
      start += tokens;
      if (start >= to) break;
    }
    return parts;
  }
}

/**
 * Strings of a JSON body given as bytes (synthesized prompt text): each gets a placeholder string that the JSON
 * synthesizer places like any string, and {@link RawStrings.encode} puts the bytes in its place when the body is
 * serialized, so a 100k-token prompt is copied once instead of being built, escaped and encoded as a JS string. The
 * bytes must need no JSON escaping (the synthesized text is ASCII letters and spaces). Placeholders begin with U+E000,
 * a private-use character no kept value can hold (model ids, tensor and schema names, literals all have grammars
 * without it; every other string is synthesized text), so nothing else in a body is taken for one.
 */
export class RawStrings {
  private readonly parts: Uint8Array[][] = [];

  /** A placeholder for `bytes` (their concatenation). */
  add(bytes: Uint8Array[]): string {
    this.parts.push(bytes);
    return `\uE000tw:${this.parts.length - 1}\uE000`;
  }

  /** `JSON.stringify(value)` as UTF-8 bytes, each placeholder replaced by its bytes. */
  encode(value: unknown): Buffer {
    const json = JSON.stringify(value);
    if (this.parts.length === 0) return Buffer.from(json);
    const out: Uint8Array[] = [];
    let from = 0;
    const marker = '"\uE000tw:';
    for (let at = json.indexOf(marker); at >= 0; at = json.indexOf(marker, from)) {
      const close = json.indexOf('\uE000"', at + marker.length);
      const i = Number(json.slice(at + marker.length, close));
      out.push(Buffer.from(json.slice(from, at + 1)), ...this.parts[i]!);
      from = close + 1;
    }
    out.push(Buffer.from(json.slice(from)));
    return Buffer.concat(out);
  }
}
