import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TracewarpError } from '../errors.ts';

/** Tokens per prefix block fingerprinted by default (recorded in the trace's `meta.prefix_block_tokens`). */
export const DEFAULT_PREFIX_BLOCK_TOKENS = 64;

/** Names whose fingerprints a {@link Fingerprinter} keeps at hand (a few MB at most). */
const NAME_CACHE = 16_384;

/** Environment variable that may hold the fingerprint key (any string; hashed to 32 bytes). */
export const FINGERPRINT_KEY_ENV = 'TRACEWARP_FINGERPRINT_KEY';

/**
 * Keyed fingerprints of prompts (HMAC-SHA256, truncated to 64 bits, hex): equal prompts and equal prompt prefixes
 * give equal fingerprints within a trace (so replays keep duplicate requests and prefix/KV-cache sharing), but
 * without the key nothing links a fingerprint to a text, and two traces with different keys cannot be linked.
 * The key is never written to the trace.
 */
export class Fingerprinter {
  private readonly key: Buffer;
  constructor(key: Buffer, readonly blockTokens: number = DEFAULT_PREFIX_BLOCK_TOKENS) {
    if (key.length < 16) throw new TracewarpError('TW_USAGE', 'fingerprint key must be at least 16 bytes');
    this.key = key;
  }

  private mac(...parts: Uint8Array[]): string {
    const h = createHmac('sha256', this.key);
    for (const p of parts) h.update(p);
    return h.digest('hex').slice(0, 16);
  }

  /** Names fingerprinted lately (a trace repeats its keys and paths): in memory only, at most {@link NAME_CACHE} of them, each at most 128 characters. */
  private readonly names = new Map<string, string>();

  /** Fingerprint of a name that is data (a key, a path word, a metric): the same name gives the same fingerprint within a trace. */
  name(text: string): string {
    let f = this.names.get(text);
    if (f === undefined) {
      f = this.mac(Buffer.from('name:'), Buffer.from(text)).slice(0, 8);
      if (text.length > 128) return f;
      if (this.names.size >= NAME_CACHE) this.names.clear();
      this.names.set(text, f);
    }
    return f;
  }

  /** Fingerprint of a whole prompt, given as its token ids. */
  prompt(tokenIds: readonly number[]): string {
    return this.mac(Buffer.from('prompt:'), Buffer.from(Uint32Array.from(tokenIds).buffer));
  }

  /**
   * Chained fingerprints at the end of each message of a prompt (`messageTokens[i]` tokens each, in `tokenIds` order):
   * entry i covers messages 0…i, so a request continues another's whole conversation exactly when the other's last
   * entry is one of its entries (`sessions/infer.ts`). Kept in memory by the recorder, never written to a trace.
   */
  messagePrefixes(tokenIds: readonly number[], messageTokens: readonly number[]): string[] {
    // One keyed SHA-256 over the whole prompt, read out at each message's end (a copy of the running state): one pass
    // over the tokens however many messages. Never stored, so a keyed prefix (not an HMAC) is enough.
    const h = createHash('sha256').update(this.key).update('msg:');
    const ids = Uint32Array.from(tokenIds);
    const out: string[] = [];
    let at = 0;
    for (const n of messageTokens) {
      h.update(new Uint8Array(ids.buffer, at * 4, n * 4));
      at += n;
      // A boundary marker after each message, so [ab][c] and [a][bc] differ.
      h.update('|');
      out.push(h.copy().digest('hex').slice(0, 16));
    }
    return out;
  }

  /** Fingerprint of a session key's value (`record --session-key`): equal values give equal fingerprints, never stored. */
  sessionKey(source: string, value: string): string {
    return this.mac(Buffer.from(`session:${source}:`), Buffer.from(value));
  }

  /**
   * Chained fingerprints of each complete block of `blockTokens` tokens: block i's fingerprint covers tokens
   * `[0, (i+1)·blockTokens)`, so two prompts share block i's fingerprint exactly when they share that whole prefix.
   */
  prefixBlocks(tokenIds: readonly number[]): string[] {
    const out: string[] = [];
    let prev = '';
    for (let end = this.blockTokens; end <= tokenIds.length; end += this.blockTokens) {
      prev = this.mac(Buffer.from(`block:${prev}:`), Buffer.from(Uint32Array.from(tokenIds.slice(end - this.blockTokens, end)).buffer));
      out.push(prev);
    }
    return out;
  }
}

/**
 * The fingerprint key: from a key file (its bytes), else the `TRACEWARP_FINGERPRINT_KEY` environment variable, else a
 * fresh random key for this trace only (fingerprints then link requests within the trace and nothing else).
 * @throws TracewarpError `TW_USAGE` when the key file cannot be read.
 */
export function loadFingerprintKey(keyFile?: string): { key: Buffer; origin: 'file' | 'env' | 'random' } {
  if (keyFile) {
    try {
      return { key: createHmac('sha256', 'tracewarp-key').update(readFileSync(keyFile)).digest(), origin: 'file' };
    } catch (err) {
      throw new TracewarpError('TW_USAGE', `cannot read fingerprint key file ${keyFile}: ${(err as Error).message}`);
    }
  }
  const env = process.env[FINGERPRINT_KEY_ENV];
  if (env) return { key: createHmac('sha256', 'tracewarp-key').update(env).digest(), origin: 'env' };
  return { key: randomBytes(32), origin: 'random' };
}
