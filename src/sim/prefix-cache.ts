/**
 * sim's prefix (KV) cache: blocks of {@link PREFIX_BLOCK_TOKENS} prompt tokens, each keyed by a chained hash of every
 * token up to its end (so a block hits only when the whole prefix before it is the same), kept up to a capacity in
 * tokens with least-recently-used eviction, as vLLM's automatic prefix caching does (16-token blocks, vLLM's default
 * block size). A request's prefill then costs only its tokens past the longest cached prefix. Hits and queries are
 * counted in tokens, as vLLM's `vllm:prefix_cache_hits` and `vllm:prefix_cache_queries` counters count them.
 */

/** Tokens per cached block (vLLM's default `--block-size`). */
export const PREFIX_BLOCK_TOKENS = 16;

/** Default capacity, tokens (the size sim's KV cache is figured against when it has none set). */
export const DEFAULT_PREFIX_CACHE_TOKENS = 262_144;

/** Chained hashes of each complete block of `ids` (53-bit, cyrb53-style mixing of the previous hash and the block). */
export function blockHashes(ids: readonly number[], blockTokens = PREFIX_BLOCK_TOKENS): number[] {
  const out: number[] = [];
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let end = blockTokens; end <= ids.length; end += blockTokens) {
    for (let i = end - blockTokens; i < end; i++) {
      const v = ids[i]!;
      h1 = Math.imul(h1 ^ v, 2654435761);
      h2 = Math.imul(h2 ^ v, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    out.push(4294967296 * (2097151 & h2) + (h1 >>> 0));
  }
  return out;
}

/** The cache. `capacityTokens` 0 turns it off (every lookup misses, nothing is kept). */
export class PrefixCache {
  private readonly blocks = new Map<number, true>();
  /** Tokens looked up and tokens found cached, since start. */
  queries = 0;
  hits = 0;

  constructor(private readonly capacityTokens: number, private readonly blockTokens = PREFIX_BLOCK_TOKENS) {}

  /**
   * Looks a prompt up (`promptTokens` tokens, `hashes` of its complete blocks): returns the tokens of its longest
   * cached prefix, counts the query, and caches its blocks (they are the most recently used now).
   */
  lookup(promptTokens: number, hashes: readonly number[]): number {
    let hit = 0;
    while (hit < hashes.length && this.blocks.has(hashes[hit]!)) hit++;
    const cached = hit * this.blockTokens;
    this.queries += promptTokens;
    this.hits += cached;
    if (this.capacityTokens >= this.blockTokens) for (const h of hashes) this.touch(h);
    return cached;
  }

  private touch(h: number): void {
    this.blocks.delete(h);
    this.blocks.set(h, true);
    const max = Math.floor(this.capacityTokens / this.blockTokens);
    while (this.blocks.size > max) this.blocks.delete(this.blocks.keys().next().value!);
  }
}
